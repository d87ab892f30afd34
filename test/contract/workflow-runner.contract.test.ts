import {
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
  type DescribeExecutionCommandOutput,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalStateMachineRunner } from '../../local/state-machine.js';
import { StepFunctionsRunner } from '../../shared/platform/aws/workflows.js';
import { buildWorkflowDefinition } from '../../shared/workflows/asl.js';
import type { WorkflowRunner } from '../../shared/platform/ports.js';
import { serviceError, sleep } from './support.js';

interface RunnerSubject {
  runner: WorkflowRunner;
  /** The execution ARN prefix (`…:execution:<state machine>:`). */
  arnPrefix: string;
  /** Lets run `runId` finish successfully and waits until it has. */
  finish(runId: string): Promise<void>;
  breakIt(): Promise<void>;
}

const sfn = mockClient(SFNClient);
const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:supervisor-workflows';

interface FakeExecution {
  executionArn: string;
  input: string;
  status: DescribeExecutionCommandOutput['status'];
  output?: string;
  error?: string;
  cause?: string;
}

/** An in-memory Step Functions behind the mocked client, with StartExecution's idempotency rules. */
function fakeStepFunctions() {
  const executions = new Map<string, FakeExecution>();
  sfn.reset();
  sfn.on(StartExecutionCommand).callsFake((input: { stateMachineArn: string; name: string; input: string }) => {
    const executionArn = `${input.stateMachineArn.replace(':stateMachine:', ':execution:')}:${input.name}`;
    const existing = executions.get(executionArn);
    if (existing) {
      // Same name and input while running: same answer. Closed, or another input: ExecutionAlreadyExists.
      if (existing.status === 'RUNNING' && existing.input === input.input) return { executionArn, startDate: new Date() };
      throw serviceError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }
    executions.set(executionArn, { executionArn, input: input.input, status: 'RUNNING' });
    return { executionArn, startDate: new Date() };
  });
  sfn.on(DescribeExecutionCommand).callsFake((input: { executionArn: string }) => {
    const e = executions.get(input.executionArn);
    if (!e) throw serviceError('ExecutionDoesNotExist', `Execution Does Not Exist: '${input.executionArn}'`);
    return { ...e, stateMachineArn: STATE_MACHINE_ARN, startDate: new Date() };
  });
  sfn.on(StopExecutionCommand).callsFake((input: { executionArn: string; cause?: string }) => {
    const e = executions.get(input.executionArn);
    if (!e) throw serviceError('ExecutionDoesNotExist', 'Execution Does Not Exist');
    if (e.status === 'RUNNING') Object.assign(e, { status: 'ABORTED', cause: input.cause });
    return { stopDate: new Date() };
  });
  sfn.on(DescribeStateMachineCommand).resolves({ stateMachineArn: STATE_MACHINE_ARN, name: 'supervisor-workflows' });
  return executions;
}

const implementations: Array<[string, () => RunnerSubject]> = [
  [
    'local (aws-local-stepfunctions running the real ASL)',
    () => {
      // A tiny engine: the run goes round the Advance → Wait loop until its gate is opened.
      const gates = new Map<string, { open: boolean }>();
      const runner: LocalStateMachineRunner = new LocalStateMachineRunner({
        waitScale: 0.01,
        engine: answering(() => runner, async (state) => {
          const gate = gates.get(state.execution_id) ?? { open: false };
          gates.set(state.execution_id, gate);
          return { ...state, done: gate.open, status: gate.open ? 'completed' : 'running', wait_seconds: 1 };
        }),
      });
      return {
        runner,
        arnPrefix: 'arn:aws:states:local:000000000000:execution:supervisor-workflows:',
        finish: async (runId) => {
          gates.set(runId.split(':').at(-1)!, { open: true }); // the execution name is the execution id
          await runner.waitFor(runId);
        },
        breakIt: async () => runner.close(),
      };
    },
  ],
  [
    'aws (Step Functions, mocked client)',
    () => {
      const executions = fakeStepFunctions();
      return {
        runner: new StepFunctionsRunner(STATE_MACHINE_ARN),
        arnPrefix: 'arn:aws:states:eu-west-1:123456789012:execution:supervisor-workflows:',
        finish: async (runId) => {
          const e = executions.get(runId)!;
          Object.assign(e, { status: 'SUCCEEDED', output: JSON.stringify({ ...JSON.parse(e.input), done: true, status: 'completed' }) });
        },
        breakIt: async () => {
          sfn.on(DescribeStateMachineCommand).rejects(serviceError('StateMachineDoesNotExist'));
        },
      };
    },
  ],
];

afterEach(() => sfn.reset());

interface EnginePayload {
  execution_id: string;
  workflow_id: string;
  callback_seconds?: number;
  task_token?: string;
  failure?: { Error: string; Cause: string };
}

/** An engine in callback mode: its answer for the Advance goes back through SendTaskSuccess, as the real one does. */
function answering(runner: () => WorkflowRunner, answer: (payload: EnginePayload) => Promise<Record<string, unknown> | undefined>) {
  return async (payload: unknown) => {
    const p = payload as EnginePayload;
    const output = await answer(p);
    if (p.task_token && output) await runner().sendTaskSuccess(p.task_token, { callback_seconds: 600, ...output });
    return null;
  };
}

const ids = { execution_id: 'e', workflow_id: 'w' };

/** Execution names are the execution ids, so the engine's state carries the same id. */
const input = (id: string) => ({ execution_id: id, workflow_id: 'wf-1' });

describe.each(implementations)('WorkflowRunner contract: %s', (_name, make) => {
  it('start answers the execution ARN; the run is RUNNING until it finishes, then SUCCEEDED with its output', async () => {
    const s = make();
    const runId = await s.runner.start('exec-a', input('exec-a'));
    expect(runId).toBe(`${s.arnPrefix}exec-a`);
    expect((await s.runner.describe(runId)).status).toBe('RUNNING');
    await s.finish(runId);
    const d = await s.runner.describe(runId);
    expect(d).toMatchObject({ runId, status: 'SUCCEEDED', output: { execution_id: 'exec-a', workflow_id: 'wf-1', done: true, status: 'completed' } });
    expect(d.error).toBeUndefined();
  });

  it('start is idempotent for the same name and input, running or finished', async () => {
    const s = make();
    const runId = await s.runner.start('exec-b', input('exec-b'));
    expect(await s.runner.start('exec-b', { workflow_id: 'wf-1', execution_id: 'exec-b' })).toBe(runId);
    await s.finish(runId);
    expect(await s.runner.start('exec-b', input('exec-b'))).toBe(runId);
  });

  it('the same name with another input is refused', async () => {
    const s = make();
    await s.runner.start('exec-c', input('exec-c'));
    await expect(s.runner.start('exec-c', { ...input('exec-c'), workflow_id: 'other' })).rejects.toThrow(/already exists/i);
  });

  it('stop aborts a running execution with the cause; stopping a finished one is fine', async () => {
    const s = make();
    const runId = await s.runner.start('exec-d', input('exec-d'));
    await s.runner.stop(runId, 'cancelled by alice');
    expect(await s.runner.describe(runId)).toMatchObject({ status: 'ABORTED', error: expect.stringContaining('cancelled by alice') });
    await expect(s.runner.stop(runId, 'again')).resolves.toBeUndefined();
    expect((await s.runner.describe(runId)).status).toBe('ABORTED');
  });

  it('describe of an unknown execution is an error', async () => {
    const s = make();
    await expect(s.runner.describe(`${s.arnPrefix}nope`)).rejects.toThrow(/does not exist/i);
  });

  it.each(['has space', 'a/b', '', 'x'.repeat(81)])('refuses the execution name %j', async (name) => {
    const s = make();
    await expect(s.runner.start(name, input('x'))).rejects.toThrow(/invalid execution name/);
  });

  it('check passes when reachable and throws when not', async () => {
    const s = make();
    await expect(s.runner.check()).resolves.toBeUndefined();
    await s.breakIt();
    await expect(s.runner.check()).rejects.toThrow();
  });
});

describe('StepFunctionsRunner commands', () => {
  it('StartExecution, StopExecution and DescribeExecution carry the ARNs, name, input and cause', async () => {
    fakeStepFunctions();
    const runner = new StepFunctionsRunner(STATE_MACHINE_ARN);
    const runId = await runner.start('exec-1', { execution_id: 'exec-1', workflow_id: 'wf' });
    await runner.stop(runId, 'user cancelled');
    await runner.describe(runId);
    await runner.check();
    expect(sfn.commandCalls(StartExecutionCommand)[0].args[0].input).toEqual({
      stateMachineArn: STATE_MACHINE_ARN,
      name: 'exec-1',
      input: '{"execution_id":"exec-1","workflow_id":"wf"}',
    });
    expect(sfn.commandCalls(StopExecutionCommand)[0].args[0].input).toEqual({ executionArn: runId, cause: 'user cancelled' });
    expect(sfn.commandCalls(DescribeExecutionCommand).at(-1)!.args[0].input).toEqual({ executionArn: runId });
    expect(sfn.commandCalls(DescribeStateMachineCommand)[0].args[0].input).toEqual({ stateMachineArn: STATE_MACHINE_ARN });
  });

  it('ExecutionAlreadyExists for a closed execution with the same input is success (its ARN)', async () => {
    const executions = fakeStepFunctions();
    const arn = `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:exec-2`;
    executions.set(arn, { executionArn: arn, input: '{"workflow_id":"wf","execution_id":"exec-2"}', status: 'SUCCEEDED' });
    expect(await new StepFunctionsRunner(STATE_MACHINE_ARN).start('exec-2', { execution_id: 'exec-2', workflow_id: 'wf' })).toBe(arn);
  });

  it('ExecutionAlreadyExists without permission to compare inputs still answers the ARN', async () => {
    sfn.on(StartExecutionCommand).rejects(serviceError('ExecutionAlreadyExists'));
    sfn.on(DescribeExecutionCommand).rejects(serviceError('AccessDeniedException'));
    expect(await new StepFunctionsRunner(STATE_MACHINE_ARN).start('exec-3', {})).toBe(
      'arn:aws:states:eu-west-1:123456789012:execution:supervisor-workflows:exec-3',
    );
  });

  it('maps DescribeExecution: FAILED with error and cause, TIMED_OUT, PENDING_REDRIVE as RUNNING, text output', async () => {
    const runner = new StepFunctionsRunner(STATE_MACHINE_ARN);
    sfn.on(DescribeExecutionCommand).resolves({ executionArn: 'a', status: 'FAILED', error: 'Lambda.Unknown', cause: 'boom' });
    expect(await runner.describe('a')).toEqual({ runId: 'a', status: 'FAILED', error: 'Lambda.Unknown: boom' });
    sfn.on(DescribeExecutionCommand).resolves({ executionArn: 'a', status: 'TIMED_OUT' });
    expect(await runner.describe('a')).toEqual({ runId: 'a', status: 'TIMED_OUT' });
    sfn.on(DescribeExecutionCommand).resolves({ executionArn: 'a', status: 'PENDING_REDRIVE' });
    expect((await runner.describe('a')).status).toBe('RUNNING');
    sfn.on(DescribeExecutionCommand).resolves({ executionArn: 'a', status: 'SUCCEEDED', output: 'not json' });
    expect(await runner.describe('a')).toEqual({ runId: 'a', status: 'SUCCEEDED', output: 'not json' });
  });

  it('SendTaskSuccess/Failure carry the token; a token that no longer waits answers false, other errors throw', async () => {
    const runner = new StepFunctionsRunner(STATE_MACHINE_ARN);
    sfn.on(SendTaskSuccessCommand).resolves({});
    sfn.on(SendTaskFailureCommand).resolves({});
    expect(await runner.sendTaskSuccess('tok', { done: false })).toBe(true);
    expect(await runner.sendTaskFailure('tok', 'Engine.Error', 'boom')).toBe(true);
    expect(sfn.commandCalls(SendTaskSuccessCommand)[0].args[0].input).toEqual({ taskToken: 'tok', output: '{"done":false}' });
    expect(sfn.commandCalls(SendTaskFailureCommand)[0].args[0].input).toEqual({ taskToken: 'tok', error: 'Engine.Error', cause: 'boom' });
    for (const name of ['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']) {
      sfn.on(SendTaskSuccessCommand).rejects(serviceError(name));
      expect(await runner.sendTaskSuccess('tok', {})).toBe(false);
    }
    sfn.on(SendTaskSuccessCommand).rejects(serviceError('ThrottlingException'));
    await expect(runner.sendTaskSuccess('tok', {})).rejects.toThrow('ThrottlingException');
  });

  it('a failed StopExecution on a still-running execution propagates', async () => {
    sfn.on(StopExecutionCommand).rejects(serviceError('ThrottlingException'));
    sfn.on(DescribeExecutionCommand).resolves({ executionArn: 'a', status: 'RUNNING' });
    await expect(new StepFunctionsRunner(STATE_MACHINE_ARN).stop('a', 'x')).rejects.toThrow('ThrottlingException');
  });
});

describe('LocalStateMachineRunner runs the deployed ASL', () => {
  it('binds Advance as lambda:invoke.waitForTaskToken: the engine gets the ids and a fresh token, the state gets what SendTaskSuccess sent', async () => {
    const payloads: EnginePayload[] = [];
    const runner: LocalStateMachineRunner = new LocalStateMachineRunner({
      waitScale: 0.01,
      engine: async (payload) => {
        payloads.push(payload as EnginePayload);
        const n = payloads.length;
        // The function's own result is ignored, as on AWS.
        setTimeout(() => void runner.sendTaskSuccess((payload as EnginePayload).task_token!, { execution_id: 'e1', workflow_id: 'w1', done: n === 3, status: n === 3 ? 'completed' : 'running', wait_seconds: n === 1 ? 2 : 0, callback_seconds: 30, ignored: 'x' }), 5);
        return { done: true };
      },
    });
    const runId = await runner.start('e1', { execution_id: 'e1', workflow_id: 'w1' });
    const d = await runner.waitFor(runId);
    expect(d.status).toBe('SUCCEEDED');
    // ResultSelector keeps only its fields.
    expect(d.output).toEqual({ execution_id: 'e1', workflow_id: 'w1', done: true, status: 'completed', wait_seconds: 0, callback_seconds: 30 });
    expect(payloads[0]).toEqual({ execution_id: 'e1', workflow_id: 'w1', callback_seconds: 600, task_token: expect.any(String) });
    expect(payloads[1]).toEqual({ execution_id: 'e1', workflow_id: 'w1', callback_seconds: 30, task_token: expect.any(String) });
    expect(new Set(payloads.map((p) => p.task_token)).size).toBe(3);
    // A token answers once.
    expect(await runner.sendTaskSuccess(payloads[0].task_token!, {})).toBe(false);
    expect(runner.waitingTokens()).toEqual([]);
  });

  it('a callback that never comes times out after callback_seconds and Advance runs again', async () => {
    const payloads: EnginePayload[] = [];
    const runner: LocalStateMachineRunner = new LocalStateMachineRunner({
      waitScale: 0.001, // 600 s → 600 ms
      engine: async (payload) => {
        payloads.push(payload as EnginePayload);
        if (payloads.length === 2) await runner.sendTaskSuccess((payload as EnginePayload).task_token!, { ...ids, done: true, status: 'completed', wait_seconds: 0, callback_seconds: 600 });
        return null;
      },
    });
    const started = Date.now();
    const d = await runner.waitFor(await runner.start('lost-callback', ids));
    expect(d.status).toBe('SUCCEEDED');
    expect(payloads).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
  });

  it('SendTaskFailure with the engine error is retried like a Lambda error', async () => {
    let n = 0;
    const runner: LocalStateMachineRunner = new LocalStateMachineRunner({
      waitScale: 0.001,
      engine: async (payload) => {
        const token = (payload as EnginePayload).task_token!;
        if (++n < 3) await runner.sendTaskFailure(token, 'Engine.Error', 'table busy');
        else await runner.sendTaskSuccess(token, { ...ids, done: true, status: 'completed', wait_seconds: 0, callback_seconds: 600 });
        return null;
      },
    });
    expect((await runner.waitFor(await runner.start('flaky', ids))).status).toBe('SUCCEEDED');
    expect(n).toBe(3);
  });

  it('waitScale shortens the Wait state (2 s × 0.05 = 100 ms)', async () => {
    let n = 0;
    const runner: LocalStateMachineRunner = new LocalStateMachineRunner({
      waitScale: 0.05,
      engine: answering(() => runner, async () => ({ ...ids, done: ++n === 2, status: 'x', wait_seconds: 2 })),
    });
    const started = Date.now();
    const d = await runner.waitFor(await runner.start('timed', ids));
    expect(d.status).toBe('SUCCEEDED');
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(90);
    expect(took).toBeLessThan(1500);
  });

  it('an engine that keeps failing: after the ASL retries, RecordFailure gets the cause and the run fails', async () => {
    let calls = 0;
    const failures: EnginePayload[] = [];
    const runner = new LocalStateMachineRunner({
      waitScale: 0.001,
      engine: async (payload) => {
        const p = payload as EnginePayload;
        if (p.failure) {
          failures.push(p);
          return { ...ids, done: true, status: 'failed', wait_seconds: 0 };
        }
        calls++;
        throw new Error('table unreachable');
      },
    });
    const d = await runner.waitFor(await runner.start('failing', ids));
    expect(d.status).toBe('FAILED');
    expect(d.error).toContain('EngineFailed');
    expect(calls).toBe(6); // first attempt + MaxAttempts 5
    expect(failures).toEqual([{ ...ids, failure: { Error: 'Error', Cause: expect.stringContaining('table unreachable') } }]);
    expect(runner.waitingTokens()).toEqual([]);
  });

  it('a wait_seconds the Wait state cannot take fails the run, as on AWS', async () => {
    const runner: LocalStateMachineRunner = new LocalStateMachineRunner({
      waitScale: 0.01,
      engine: answering(() => runner, async () => ({ ...ids, done: false, status: 'x', wait_seconds: 1.5 })),
    });
    const d = await runner.waitFor(await runner.start('bad-wait', ids));
    expect(d.status).toBe('FAILED');
  });

  it('stop interrupts a long Wait at once', async () => {
    const runner: LocalStateMachineRunner = new LocalStateMachineRunner({
      engine: answering(() => runner, async () => ({ ...ids, done: false, status: 'x', wait_seconds: 3600 })),
    });
    const runId = await runner.start('long', ids);
    await sleep(50);
    const started = Date.now();
    await runner.stop(runId, 'shutdown');
    expect(Date.now() - started).toBeLessThan(500);
    expect(await runner.describe(runId)).toEqual({ runId, status: 'ABORTED', error: 'shutdown' });
  });

  it('stop ends a run waiting for a callback, and its token stops waiting', async () => {
    const runner = new LocalStateMachineRunner({ engine: async () => null });
    const runId = await runner.start('waiting', ids);
    await sleep(50);
    expect(runner.waitingTokens()).toHaveLength(1);
    const [token] = runner.waitingTokens();
    await runner.stop(runId, 'cancelled');
    expect(runner.waitingTokens()).toEqual([]);
    expect(await runner.sendTaskSuccess(token, {})).toBe(false);
  });

  it('validates the document it is given', () => {
    const definition = buildWorkflowDefinition({ engineFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:engine' });
    expect(() => new LocalStateMachineRunner({ engine: async () => ({}), definition })).not.toThrow();
    expect(() => new LocalStateMachineRunner({ engine: async () => ({}), definition: { StartAt: 'Missing', States: {} } })).toThrow();
  });
});
