import type { SFNClient } from '@aws-sdk/client-sfn';
import type { RunDescription, RunnerStatus, WorkflowRunner } from '../ports.js';
import { assertExecutionName, executionArnOf } from '../service-rules.js';
import { errorName, jsonEqual, lazy } from './util.js';

/** `WorkflowRunner` on Step Functions (standard workflow): one execution per run, named by the caller. */
export class StepFunctionsRunner implements WorkflowRunner {
  private readonly sdk = lazy(async () => {
    const mod = await import('@aws-sdk/client-sfn');
    return { mod, client: new mod.SFNClient({}) as SFNClient };
  });

  constructor(readonly stateMachineArn: string) {}

  /**
   * Starts execution `name`. Idempotent: Step Functions itself answers the running execution for the
   * same name and input, and for a closed one it throws ExecutionAlreadyExists, which is success here
   * when that execution had the same input (its ARN is returned). A different input under the same
   * name stays an error.
   */
  async start(name: string, input: Record<string, unknown>): Promise<string> {
    assertExecutionName(name);
    const { mod, client } = await this.sdk();
    try {
      const out = await client.send(
        new mod.StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name, input: JSON.stringify(input) }),
      );
      return out.executionArn ?? executionArnOf(this.stateMachineArn, name);
    } catch (err) {
      if (errorName(err) !== 'ExecutionAlreadyExists') throw err;
      const executionArn = executionArnOf(this.stateMachineArn, name);
      let existingInput: unknown;
      try {
        const existing = await client.send(new mod.DescribeExecutionCommand({ executionArn }));
        existingInput = existing.input === undefined ? undefined : JSON.parse(existing.input);
      } catch {
        // Cannot compare (no permission, input redacted…): the execution of that name exists, which is
        // what the caller asked for.
        return executionArn;
      }
      if (existingInput !== undefined && !jsonEqual(existingInput, input)) throw err;
      return executionArn;
    }
  }

  /** Stopping an execution that has already finished is not an error. */
  async stop(runId: string, cause: string): Promise<void> {
    const { mod, client } = await this.sdk();
    try {
      await client.send(new mod.StopExecutionCommand({ executionArn: runId, cause: cause.slice(0, 32768) }));
    } catch (err) {
      // A closed execution: nothing to stop. (Step Functions answers these with a ValidationException
      // or ExecutionNotRedrivable-style errors depending on state; check the status before giving up.)
      const status = await this.describe(runId).then((d) => d.status, () => undefined);
      if (status !== undefined && status !== 'RUNNING') return;
      throw err;
    }
  }

  async describe(runId: string): Promise<RunDescription> {
    const { mod, client } = await this.sdk();
    const out = await client.send(new mod.DescribeExecutionCommand({ executionArn: runId }));
    const status = mapStatus(out.status);
    const description: RunDescription = { runId: out.executionArn ?? runId, status };
    if (out.output !== undefined) description.output = parseJson(out.output);
    if (out.error !== undefined || out.cause !== undefined) {
      description.error = [out.error, out.cause].filter((s) => s !== undefined && s !== '').join(': ');
    }
    return description;
  }

  async sendTaskSuccess(token: string, output: Record<string, unknown>): Promise<boolean> {
    const { mod, client } = await this.sdk();
    return answered(() => client.send(new mod.SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify(output) })));
  }

  async sendTaskFailure(token: string, error: string, cause: string): Promise<boolean> {
    const { mod, client } = await this.sdk();
    return answered(() => client.send(new mod.SendTaskFailureCommand({ taskToken: token, error: error.slice(0, 256), cause: cause.slice(0, 32768) })));
  }

  async check(): Promise<void> {
    const { mod, client } = await this.sdk();
    await client.send(new mod.DescribeStateMachineCommand({ stateMachineArn: this.stateMachineArn }));
  }
}

/** Tokens that no longer wait (answered, timed out, run closed, malformed) answer false; other errors throw. */
async function answered(send: () => Promise<unknown>): Promise<boolean> {
  try {
    await send();
    return true;
  } catch (err) {
    if (['TaskDoesNotExist', 'TaskTimedOut', 'InvalidToken'].includes(errorName(err))) return false;
    throw err;
  }
}

function mapStatus(status: string | undefined): RunnerStatus {
  switch (status) {
    case 'SUCCEEDED':
    case 'FAILED':
    case 'TIMED_OUT':
    case 'ABORTED':
      return status;
    // RUNNING, and PENDING_REDRIVE (a redriven execution about to run again).
    default:
      return 'RUNNING';
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
