import { LambdaClient, UpdateEventSourceMappingCommand } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalQueue, queueWorkerScaling } from '../../local/queue.js';
import { EventSourceMappingScaling } from '../../shared/platform/aws/worker-scaling.js';
import { createAwsDeps, UndeclaredPortError } from '../../shared/platform/aws/index.js';
import { EVENT_SOURCE_CONCURRENCY, workerInvocationsFor } from '../../shared/platform/infra.js';
import { parseConfig } from '../../shared/platform/config.js';
import { systemClock, type WorkerScaling } from '../../shared/platform/ports.js';
import type { Store } from '../../shared/platform/store/client.js';

const lambda = mockClient(LambdaClient);
const MAPPING = '6f1c1c3e-1b2a-4c5d-9e8f-0a1b2c3d4e5f';

interface Subject {
  scaling: WorkerScaling;
  /** The concurrency the worker now runs with, read from the adapter's peer (the queue, or the mapping update sent). */
  applied(): number | undefined;
}

const implementations: Array<[string, () => Subject]> = [
  [
    'local (the in-process worker queue)',
    () => {
      const queue = new LocalQueue({ name: 'scaling', visibilityTimeoutSeconds: 1, maxReceiveCount: 5, batchSize: 5, maxConcurrency: 20 });
      return { scaling: queueWorkerScaling(queue), applied: () => (queue as unknown as { options: { maxConcurrency: number } }).options.maxConcurrency };
    },
  ],
  [
    'aws (UpdateEventSourceMapping, mocked client)',
    () => {
      lambda.reset();
      lambda.on(UpdateEventSourceMappingCommand).callsFake((input: { ScalingConfig?: { MaximumConcurrency?: number } }) => ({ UUID: MAPPING, ScalingConfig: input.ScalingConfig }));
      return {
        scaling: new EventSourceMappingScaling(MAPPING),
        applied: () => lambda.commandCalls(UpdateEventSourceMappingCommand).at(-1)?.args[0].input.ScalingConfig?.MaximumConcurrency,
      };
    },
  ],
];

afterEach(() => lambda.reset());

describe.each(implementations)('WorkerScaling contract: %s', (_name, make) => {
  it('runs enough concurrent batches for the tasks, within the event source range (2–1000)', async () => {
    const s = make();
    for (const [tasks, expected] of [
      [100, 20],
      [7, 2],
      [1, EVENT_SOURCE_CONCURRENCY.min],
      [12, 3],
      [5000, EVENT_SOURCE_CONCURRENCY.max],
    ] as const) {
      expect(workerInvocationsFor(tasks)).toBe(expected);
      expect(await s.scaling.setMaxConcurrency(tasks), `${tasks} tasks`).toBe(expected);
      expect(s.applied(), `${tasks} tasks`).toBe(expected);
    }
  });
});

describe('WorkerScaling on AWS', () => {
  it('updates only the named mapping, and only its maximum concurrency', async () => {
    lambda.on(UpdateEventSourceMappingCommand).resolves({ UUID: MAPPING, ScalingConfig: { MaximumConcurrency: 8 } });
    expect(await new EventSourceMappingScaling(MAPPING).setMaxConcurrency(40)).toBe(8);
    const calls = lambda.commandCalls(UpdateEventSourceMappingCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0].args[0].input).toEqual({ UUID: MAPPING, ScalingConfig: { MaximumConcurrency: 8 } });
  });

  it('never sets the mapping above the worker reservation', async () => {
    lambda.on(UpdateEventSourceMappingCommand).callsFake((input: { ScalingConfig?: { MaximumConcurrency?: number } }) => ({ ScalingConfig: input.ScalingConfig }));
    expect(await new EventSourceMappingScaling(MAPPING, 20).setMaxConcurrency(500)).toBe(20);
    expect(lambda.commandCalls(UpdateEventSourceMappingCommand)[0].args[0].input.ScalingConfig).toEqual({ MaximumConcurrency: 20 });
  });

  it('is built from WORKER_EVENT_SOURCE_MAPPING_ID and denied to functions that do not declare it', async () => {
    lambda.on(UpdateEventSourceMappingCommand).callsFake((input: { ScalingConfig?: { MaximumConcurrency?: number } }) => ({ ScalingConfig: input.ScalingConfig }));
    const store = {} as Store;
    const env = { WORKER_EVENT_SOURCE_MAPPING_ID: MAPPING, WORKER_RESERVED_CONCURRENCY: '10' };
    const resources = createAwsDeps(parseConfig({ ...env, SUPERVISOR_FUNCTION: 'resources' }), store, systemClock);
    expect(await resources.workerScaling!.setMaxConcurrency(100)).toBe(10);
    expect(lambda.commandCalls(UpdateEventSourceMappingCommand)[0].args[0].input.UUID).toBe(MAPPING);
    const tasks = createAwsDeps(parseConfig({ ...env, SUPERVISOR_FUNCTION: 'tasks' }), store, systemClock);
    await expect(tasks.workerScaling!.setMaxConcurrency(100)).rejects.toBeInstanceOf(UndeclaredPortError);
    expect(lambda.commandCalls(UpdateEventSourceMappingCommand)).toHaveLength(1);
  });
});
