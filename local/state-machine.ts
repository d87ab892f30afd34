/**
 * In-process stand-in for Step Functions: runs the very ASL document CDK deploys
 * (`buildWorkflowDefinition`) with aws-local-stepfunctions, its Lambda task states bound to a local
 * function. A `arn:aws:states:::lambda:invoke` task receives `{ FunctionName, Payload }` (after
 * `Parameters`) and answers `{ ExecutedVersion, Payload: <function result>, StatusCode }`, exactly like
 * the real integration, so `ResultSelector` paths like `$.Payload.done` behave the same.
 *
 * `lambda:invoke.waitForTaskToken` tasks (which aws-local-stepfunctions does not know) are run here with
 * Step Functions' semantics: the function gets its Payload with a fresh token in place of `$$.Task.Token`,
 * its own result is ignored, and the state waits until `sendTaskSuccess` (its result) or
 * `sendTaskFailure` (its error, subject to Retry/Catch) is called with that token, or until its
 * `TimeoutSeconds(Path)` has passed (`States.Timeout`, caught but never retried, as on AWS).
 *
 * Executions are named; the same name and input answer the same run (Step Functions' idempotent
 * StartExecution), the same name with another input is an `ExecutionAlreadyExists` error. With a
 * `journal` (the local runtime's, in the table) executions outlive the process as Step Functions' do:
 * each is recorded (name, input, status) as it starts and ends, and `resume` runs again, from the start
 * and with the same input, the ones a stopped process left RUNNING (the engine's steps are idempotent).
 * Without one, runs are kept in memory only.
 *
 * `waitScale` multiplies the time spent in Wait states and Retry intervals (0.05 makes a local run
 * 20× faster). With a scale other than 1 each Wait state is run as a local task that sleeps the scaled
 * time (aws-local-stepfunctions' own override only takes a fixed duration), and retry intervals become
 * `IntervalSeconds × scale` without backoff.
 */
if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== 'function') {
  // aws-local-stepfunctions 3 uses Promise.withResolvers (Node 22+).
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (value: T | PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

import { randomUUID } from 'node:crypto';
import { StateMachine } from 'aws-local-stepfunctions';
import type { RunDescription, RunnerStatus, WorkflowRunner } from '../shared/platform/ports.js';
import { buildWorkflowDefinition } from '../shared/workflows/asl.js';
import { assertExecutionName, MAX_EXECUTION_INPUT_BYTES } from '../shared/platform/service-rules.js';
import type { ExecutionJournal, JournalEntry } from './execution-journal.js';

export type EngineFn = (payload: unknown) => Promise<unknown>;

export interface LocalStateMachineOptions {
  /** The local handler bound to the Lambda task states. */
  engine: EngineFn;
  /** Multiplies Wait state durations and Retry intervals (default 1). */
  waitScale?: number;
  /** The ASL document (default: `buildWorkflowDefinition` with a local function ARN). */
  definition?: Record<string, unknown>;
  /** Finished runs kept in memory for `describe` (default 10 000; the oldest finished ones are forgotten). */
  keepFinished?: number;
  /** Where executions are recorded so that they survive a restart (see `resume`). */
  journal?: ExecutionJournal;
  /** Told about a failed journal write (the run goes on). */
  onJournalError?: (err: unknown) => void;
}

export const LOCAL_STATE_MACHINE_NAME = 'supervisor-workflows';
export const LOCAL_ENGINE_FUNCTION_ARN = 'arn:aws:lambda:local:000000000000:function:supervisor-workflow-engine';
const EXECUTION_ARN_PREFIX = `arn:aws:states:local:000000000000:execution:${LOCAL_STATE_MACHINE_NAME}:`;
const LAMBDA_INVOKE = 'arn:aws:states:::lambda:invoke';
const LOCAL_WAIT_RESOURCE = 'arn:aws:lambda:local:000000000000:function:local-wait';
const WAIT_FOR_TOKEN = '.waitForTaskToken';
/** What `$$.Task.Token` evaluates to in the document; replaced by a fresh token per task. */
const TOKEN_PLACEHOLDER = 'local-task-token';
/** Parameter added to callback tasks: the evaluated TimeoutSecondsPath (the runner keeps the time itself). */
const LOCAL_TIMEOUT_PARAMETER = 'local_timeout_seconds';

interface Waiter {
  resolve: (output: Json) => void;
  reject: (err: Error) => void;
}

interface Run {
  runId: string;
  name: string;
  input: string;
  status: RunnerStatus;
  output?: unknown;
  error?: string;
  startedAt: Date;
  stoppedAt?: Date;
  abort: () => void;
  /** Aborts the local wait tasks of this run. */
  controller: AbortController;
  finished: Promise<void>;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type AslState = Record<string, unknown>;

export class ExecutionAlreadyExistsError extends Error {
  override readonly name = 'ExecutionAlreadyExists';
  constructor(name: string) {
    super(`execution ${name} already exists with a different input`);
  }
}

export class ExecutionDoesNotExistError extends Error {
  override readonly name = 'ExecutionDoesNotExist';
  constructor(runId: string) {
    super(`execution ${runId} does not exist`);
  }
}

export class LocalStateMachineRunner implements WorkflowRunner {
  private readonly runs = new Map<string, Run>();
  private readonly machine: StateMachine;
  private readonly waitScale: number;
  private readonly definition: Record<string, unknown>;
  private readonly taskStates: string[];
  private readonly waitStates: string[];
  private readonly retryOverrides: Record<string, number[]>;
  /** Callback tasks waiting for their token, by token. */
  private readonly waiters = new Map<string, Waiter>();
  private closed = false;

  constructor(private readonly options: LocalStateMachineOptions) {
    this.waitScale = options.waitScale ?? 1;
    if (!(this.waitScale >= 0) || !Number.isFinite(this.waitScale)) throw new Error('waitScale must be a non-negative number');
    const definition = options.definition ?? buildWorkflowDefinition({ engineFunctionArn: LOCAL_ENGINE_FUNCTION_ARN });
    this.definition = definition;
    // Validate the document as written (what CDK deploys)…
    new StateMachine(definition as never);
    // …then run it, with the Wait states turned into scaled local waits when asked.
    const runnable = localCallbacks(this.waitScale === 1 ? definition : scaleWaits(definition));
    this.machine = new StateMachine(runnable as never, { validationOptions: { noValidate: true } });
    this.taskStates = collectStates(definition, (s) => s.Type === 'Task');
    this.waitStates = collectStates(definition, (s) => s.Type === 'Wait');
    this.retryOverrides = {};
    if (this.waitScale !== 1) {
      for (const [stateName, state] of collectStateEntries(definition)) {
        const retry = state.Retry as Array<{ IntervalSeconds?: number }> | undefined;
        if (Array.isArray(retry)) {
          this.retryOverrides[stateName] = retry.map((r) => Math.round((r.IntervalSeconds ?? 1) * 1000 * this.waitScale));
        }
      }
    }
  }

  async start(name: string, input: Record<string, unknown>): Promise<string> {
    if (this.closed) throw new Error('state machine runner is closed');
    assertExecutionName(name);
    const text = JSON.stringify(input);
    if (Buffer.byteLength(text) > MAX_EXECUTION_INPUT_BYTES) throw new Error('execution input exceeds 256 KiB');
    const runId = EXECUTION_ARN_PREFIX + name;
    const existing = this.runs.get(runId) ?? (await this.options.journal?.get(name));
    if (existing) {
      if (sameJson(existing.input, text)) return runId;
      throw new ExecutionAlreadyExistsError(name);
    }
    // Recorded before it runs: a crash from here on leaves it RUNNING in the journal, to be resumed.
    await this.options.journal?.save({ name, input: text, status: 'RUNNING' });
    this.launch(runId, name, text);
    return runId;
  }

  /**
   * Runs again, from the start and with the same input, the executions the journal holds as RUNNING
   * (a previous process stopped in the middle of them). Answers how many.
   */
  async resume(): Promise<number> {
    if (!this.options.journal) return 0;
    let resumed = 0;
    for (const entry of await this.options.journal.unfinished()) {
      const runId = EXECUTION_ARN_PREFIX + entry.name;
      if (this.runs.has(runId)) continue;
      this.launch(runId, entry.name, entry.input);
      resumed++;
    }
    return resumed;
  }

  private record(run: Run): void {
    // A run aborted because this process is closing stays RUNNING in the journal: the next start resumes it.
    if (!this.options.journal || this.closed) return;
    const entry: JournalEntry = { name: run.name, input: run.input, status: run.status };
    if (run.output !== undefined) entry.output = run.output;
    if (run.error !== undefined) entry.error = run.error;
    this.options.journal.save(entry).catch((err) => this.options.onJournalError?.(err));
  }

  private launch(runId: string, name: string, text: string): void {
    const controller = new AbortController();
    const execution = this.machine.run(JSON.parse(text) as Json, {
      overrides: {
        taskResourceLocalHandlers: this.handlers(controller.signal),
        retryIntervalOverrides: this.retryOverrides,
      },
      context: { Execution: { Id: runId, Name: name, RoleArn: 'arn:aws:iam::000000000000:role/local' }, Task: { Token: TOKEN_PLACEHOLDER } },
    });
    const run: Run = {
      runId,
      name,
      input: text,
      status: 'RUNNING',
      startedAt: new Date(),
      abort: execution.abort,
      controller,
      finished: Promise.resolve(),
    };
    run.finished = execution.result.then(
      (output) => {
        if (run.status !== 'RUNNING') return;
        run.status = 'SUCCEEDED';
        run.output = output;
        run.stoppedAt = new Date();
        this.record(run);
      },
      (err: unknown) => {
        if (run.status !== 'RUNNING') return;
        const e = err as Error;
        run.status = e?.name === 'ExecutionAbortedError' ? 'ABORTED' : e?.name === 'ExecutionTimeoutError' ? 'TIMED_OUT' : 'FAILED';
        run.error = describeError(e);
        run.stoppedAt = new Date();
        this.record(run);
      },
    );
    // Drain the event log so it does not buffer every event of a long run.
    void (async () => {
      try {
        for await (const _ of execution.eventLogs) void _;
      } catch {
        /* the log ends with the run */
      }
    })();
    this.runs.set(runId, run);
    this.forgetOldRuns();
  }

  /** Stopping a run that has already finished is not an error. */
  async stop(runId: string, cause: string): Promise<void> {
    const run = this.runs.get(runId);
    if (!run) {
      const recorded = await this.fromJournal(runId);
      if (!recorded) throw new ExecutionDoesNotExistError(runId);
      if (recorded.status === 'RUNNING') await this.options.journal!.save({ ...recorded, status: 'ABORTED', error: cause });
      return;
    }
    if (run.status !== 'RUNNING') return;
    run.status = 'ABORTED';
    run.error = cause;
    run.stoppedAt = new Date();
    this.record(run);
    run.controller.abort();
    run.abort();
    await run.finished;
  }

  async describe(runId: string): Promise<RunDescription> {
    const run = this.runs.get(runId);
    if (!run) {
      const recorded = await this.fromJournal(runId);
      if (!recorded) throw new ExecutionDoesNotExistError(runId);
      const description: RunDescription = { runId, status: recorded.status };
      if (recorded.output !== undefined) description.output = recorded.output;
      if (recorded.error !== undefined) description.error = recorded.error;
      return description;
    }
    const description: RunDescription = { runId, status: run.status };
    if (run.output !== undefined) description.output = structuredClone(run.output);
    if (run.error !== undefined) description.error = run.error;
    return description;
  }

  async sendTaskSuccess(token: string, output: Record<string, unknown>): Promise<boolean> {
    const waiter = this.waiters.get(token);
    if (!waiter) return false;
    this.waiters.delete(token);
    waiter.resolve(toJson(output));
    return true;
  }

  async sendTaskFailure(token: string, error: string, cause: string): Promise<boolean> {
    const waiter = this.waiters.get(token);
    if (!waiter) return false;
    this.waiters.delete(token);
    waiter.reject(Object.assign(new Error(cause), { name: error }));
    return true;
  }

  /** Tokens waiting for an answer. */
  waitingTokens(): string[] {
    return [...this.waiters.keys()];
  }

  async check(): Promise<void> {
    if (this.closed) throw new Error('state machine runner is closed');
  }

  /** Resolves when the run has finished (any status). */
  async waitFor(runId: string): Promise<RunDescription> {
    const run = this.runs.get(runId);
    if (!run) throw new ExecutionDoesNotExistError(runId);
    await run.finished;
    return this.describe(runId);
  }

  /** Runs still going. */
  running(): string[] {
    return [...this.runs.values()].filter((r) => r.status === 'RUNNING').map((r) => r.runId);
  }

  /** Aborts every running execution (local shutdown) and refuses new ones. */
  async close(cause = 'local runtime stopping'): Promise<void> {
    this.closed = true;
    await Promise.all(this.running().map((runId) => this.stop(runId, cause)));
  }

  private async fromJournal(runId: string): Promise<JournalEntry | undefined> {
    if (!this.options.journal || !runId.startsWith(EXECUTION_ARN_PREFIX)) return undefined;
    return this.options.journal.get(runId.slice(EXECUTION_ARN_PREFIX.length));
  }

  private handlers(signal: AbortSignal): Record<string, (input: Json) => Promise<Json>> {
    const handlers: Record<string, (input: Json) => Promise<Json>> = {};
    for (const stateName of this.taskStates) {
      handlers[stateName] = async (input) => this.invoke(stateName, input, signal);
    }
    if (this.waitScale !== 1) {
      for (const stateName of this.waitStates) {
        handlers[stateName] = async (input) => {
          await sleep(waitMs(input, this.waitScale), signal);
          return null;
        };
      }
    }
    return handlers;
  }

  private async invoke(stateName: string, input: Json, signal: AbortSignal): Promise<Json> {
    const state = findState(this.definition, stateName);
    const resource = String(state?.Resource ?? '');
    if (resource.endsWith(WAIT_FOR_TOKEN)) return this.invokeWithCallback(resource, input, signal);
    if (resource.startsWith(LAMBDA_INVOKE)) {
      // The optimised integration: Parameters gave { FunctionName, Payload }.
      const payload = input && typeof input === 'object' && !Array.isArray(input) ? (input as { Payload?: Json }).Payload : undefined;
      const result = await this.options.engine(payload ?? null);
      return { ExecutedVersion: '$LATEST', Payload: toJson(result), StatusCode: 200 };
    }
    // A Lambda ARN as the resource: the function's result is the task result.
    return toJson(await this.options.engine(input));
  }

  /**
   * A callback task: the function runs with a fresh token, then the state waits for that token (or its
   * timeout, scaled like Wait states; or the run's abort).
   */
  private async invokeWithCallback(resource: string, input: Json, signal: AbortSignal): Promise<Json> {
    const args = (input && typeof input === 'object' && !Array.isArray(input) ? input : {}) as { [k: string]: Json };
    const token = randomUUID();
    const timeoutSeconds = typeof args[LOCAL_TIMEOUT_PARAMETER] === 'number' ? args[LOCAL_TIMEOUT_PARAMETER] : 60;
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) {
      throw Object.assign(new Error(`TimeoutSecondsPath must give a positive integer, got ${JSON.stringify(timeoutSeconds)}`), { name: 'States.Runtime', isRetryable: false, isCatchable: false });
    }
    const answered = new Promise<Json>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(token);
        // States.Timeout is caught but never retried (Step Functions' States.TaskFailed excludes it).
        reject(Object.assign(new Error('States.Timeout'), { name: 'States.Timeout', isRetryable: false }));
      }, Math.min(timeoutSeconds * 1000 * this.waitScale, 2_000_000_000));
      const onAbort = () => {
        this.waiters.delete(token);
        clearTimeout(timer);
        reject(Object.assign(new Error('execution aborted'), { name: 'States.Aborted', isRetryable: false, isCatchable: false }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      this.waiters.set(token, {
        resolve: (output) => {
          settle();
          resolve(output);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      });
    });
    answered.catch(() => undefined);
    const withToken = replaceToken(args, token);
    delete (withToken as Record<string, Json>)[LOCAL_TIMEOUT_PARAMETER];
    try {
      if (resource.startsWith(LAMBDA_INVOKE)) await this.options.engine((withToken as { Payload?: Json }).Payload ?? null);
      else await this.options.engine(withToken);
    } catch (err) {
      // The function failed: the task fails with its error (Retry and Catch apply).
      const waiter = this.waiters.get(token);
      this.waiters.delete(token);
      waiter?.reject(err as Error);
      throw err;
    }
    return answered;
  }

  private forgetOldRuns(): void {
    const keep = this.options.keepFinished ?? 10_000;
    const finished = [...this.runs.values()].filter((r) => r.status !== 'RUNNING');
    for (let i = 0; i < finished.length - keep; i++) this.runs.delete(finished[i].runId);
  }
}

function toJson(value: unknown): Json {
  return value === undefined ? null : (JSON.parse(JSON.stringify(value)) as Json);
}

function sameJson(a: string, b: string): boolean {
  if (a === b) return true;
  const canon = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canon)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])]))
        : v;
  return JSON.stringify(canon(JSON.parse(a))) === JSON.stringify(canon(JSON.parse(b)));
}

function describeError(err: Error | undefined): string {
  if (!err) return 'unknown error';
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) return `${cause.name}: ${cause.message}`;
  return err.message;
}

function* walk(definition: Record<string, unknown>): Generator<[string, AslState]> {
  const states = (definition.States ?? {}) as Record<string, AslState>;
  for (const [name, state] of Object.entries(states)) {
    yield [name, state];
    for (const branch of (state.Branches as Record<string, unknown>[] | undefined) ?? []) yield* walk(branch);
    for (const key of ['Iterator', 'ItemProcessor'] as const) {
      const sub = state[key] as Record<string, unknown> | undefined;
      if (sub) yield* walk(sub);
    }
  }
}

function collectStateEntries(definition: Record<string, unknown>): Array<[string, AslState]> {
  return [...walk(definition)];
}

function collectStates(definition: Record<string, unknown>, test: (s: AslState) => boolean): string[] {
  return collectStateEntries(definition)
    .filter(([, s]) => test(s))
    .map(([name]) => name);
}

function findState(definition: Record<string, unknown>, name: string): AslState | undefined {
  for (const [n, s] of walk(definition)) if (n === name) return s;
  return undefined;
}

/** A copy of `value` with every TOKEN_PLACEHOLDER string replaced by `token`. */
function replaceToken(value: Json, token: string): Json {
  if (value === TOKEN_PLACEHOLDER) return token;
  if (Array.isArray(value)) return value.map((v) => replaceToken(v, token));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceToken(v, token)]));
  return value;
}

/**
 * Copy of the definition where each callback task keeps its own time: its timeout is handed to the
 * runner as a parameter (TimeoutSecondsPath evaluated by the library), and the library's own timer is
 * pushed out of the way.
 */
function localCallbacks(definition: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(definition);
  for (const [, state] of walk(copy)) {
    if (state.Type !== 'Task' || !String(state.Resource ?? '').endsWith(WAIT_FOR_TOKEN)) continue;
    const parameters = { ...((state.Parameters as Record<string, unknown> | undefined) ?? {}) };
    if (typeof state.TimeoutSecondsPath === 'string') parameters[`${LOCAL_TIMEOUT_PARAMETER}.$`] = state.TimeoutSecondsPath;
    else if (typeof state.TimeoutSeconds === 'number') parameters[LOCAL_TIMEOUT_PARAMETER] = state.TimeoutSeconds;
    else parameters[LOCAL_TIMEOUT_PARAMETER] = 99_999_999; // Step Functions' default: no timeout
    state.Parameters = parameters;
    delete state.TimeoutSecondsPath;
    state.TimeoutSeconds = 2_000_000;
  }
  return copy;
}

/**
 * Copy of the definition where each Wait state is a Task (bound to a local sleep) that receives the
 * wait's duration and passes its input through unchanged (`ResultPath: null`).
 */
function scaleWaits(definition: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(definition);
  const rewrite = (def: Record<string, unknown>) => {
    const states = (def.States ?? {}) as Record<string, AslState>;
    for (const [name, state] of Object.entries(states)) {
      if (state.Type === 'Wait') {
        const parameters: Record<string, unknown> = {};
        if (state.Seconds !== undefined) parameters.seconds = state.Seconds;
        if (state.SecondsPath !== undefined) parameters['seconds.$'] = state.SecondsPath;
        if (state.Timestamp !== undefined) parameters.timestamp = state.Timestamp;
        if (state.TimestampPath !== undefined) parameters['timestamp.$'] = state.TimestampPath;
        const task: AslState = {
          Type: 'Task',
          Resource: LOCAL_WAIT_RESOURCE,
          Parameters: parameters,
          ResultPath: null,
          // Beyond the library's 60 s task default, within setTimeout's 32-bit range.
          TimeoutSeconds: 2_000_000,
        };
        for (const key of ['Comment', 'InputPath', 'OutputPath', 'Next', 'End']) {
          if (state[key] !== undefined) task[key] = state[key];
        }
        states[name] = task;
      }
      for (const branch of (state.Branches as Record<string, unknown>[] | undefined) ?? []) rewrite(branch);
      for (const key of ['Iterator', 'ItemProcessor'] as const) {
        const sub = state[key] as Record<string, unknown> | undefined;
        if (sub) rewrite(sub);
      }
    }
  };
  rewrite(copy);
  return copy;
}

/** Scaled wait for the `{ seconds } | { timestamp }` a rewritten Wait state passes; rejects what Step Functions rejects. */
function waitMs(input: Json, scale: number): number {
  const args = (input ?? {}) as { seconds?: unknown; timestamp?: unknown };
  if (args.seconds !== undefined) {
    if (typeof args.seconds !== 'number' || !Number.isInteger(args.seconds) || args.seconds < 0) {
      throw Object.assign(new Error(`Wait seconds must be a non-negative integer, got ${JSON.stringify(args.seconds)}`), { name: 'States.Runtime' });
    }
    return args.seconds * 1000 * scale;
  }
  if (args.timestamp !== undefined) {
    const t = typeof args.timestamp === 'string' ? Date.parse(args.timestamp) : NaN;
    if (Number.isNaN(t)) throw Object.assign(new Error('Wait timestamp is not an RFC 3339 timestamp'), { name: 'States.Runtime' });
    return Math.max(0, t - Date.now()) * scale;
  }
  return 0;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
