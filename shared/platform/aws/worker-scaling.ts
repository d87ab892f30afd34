import type { LambdaClient } from '@aws-sdk/client-lambda';
import { EVENT_SOURCE_CONCURRENCY, workerInvocationsFor } from '../infra.js';
import type { WorkerScaling } from '../ports.js';
import { lazy } from './util.js';

/**
 * `WorkerScaling` on AWS: the task queue's event source mapping decides how many worker invocations run
 * at once, so the worker's concurrency is its `ScalingConfig.MaximumConcurrency` (2–1000). One
 * UpdateEventSourceMapping on the one mapping the stack names (`WORKER_EVENT_SOURCE_MAPPING_ID`), never
 * above the worker's reserved concurrency (the mapping would only be throttled by it).
 */
export class EventSourceMappingScaling implements WorkerScaling {
  private readonly sdk = lazy(async () => {
    const mod = await import('@aws-sdk/client-lambda');
    return { mod, client: new mod.LambdaClient({}) as LambdaClient };
  });

  constructor(
    readonly mappingId: string,
    readonly reservedConcurrency?: number,
  ) {}

  /** The invocations for `tasks` runs at once, within the mapping's range and the reservation. */
  invocationsFor(tasks: number): number {
    const cap = Math.max(EVENT_SOURCE_CONCURRENCY.min, this.reservedConcurrency ?? EVENT_SOURCE_CONCURRENCY.max);
    return Math.min(cap, workerInvocationsFor(tasks));
  }

  async setMaxConcurrency(tasks: number): Promise<number> {
    const { mod, client } = await this.sdk();
    const wanted = this.invocationsFor(tasks);
    const out = await client.send(new mod.UpdateEventSourceMappingCommand({ UUID: this.mappingId, ScalingConfig: { MaximumConcurrency: wanted } }));
    return out.ScalingConfig?.MaximumConcurrency ?? wanted;
  }
}
