/**
 * The engine's `Advance` task: loads a run, asks `planAdvance` (engine.ts) what to do, and applies the
 * plan with conditional writes, creating the steps' tasks through the task path. Also the settling of
 * steps after a run ended from outside the engine (cancelled, lost).
 */
import type { Deps } from '../platform/runtime.js';
import { DomainError, isClientError } from '../platform/errors.js';
import { logger } from '../platform/logger.js';
import { derivedUlid } from '../platform/ids.js';
import { stepCallbacks } from '../platform/use/step-callbacks.js';
import type { WorkflowDefinition, StepDefinition } from './definition.js';
import { CALLBACK_SECONDS, ENGINE_ERROR } from './asl.js';
import { callbackSeconds } from './callbacks.js';
import { callbackWatch, FINISHED_EXECUTION, pendingStep, planAdvance, type StepState, type TaskObservation } from './engine.js';
import type { ExecutionRecord } from './repo.js';
import { definitionOf, executions } from './reads.js';
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY, DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS } from '../tasks/model.js';
import { cancelTask, createTask, getTask, type TaskView } from '../tasks/service.js';

export interface EngineInput {
  execution_id: string;
  workflow_id: string;
}

export interface EngineOutput {
  execution_id: string;
  workflow_id: string;
  done: boolean;
  status: string;
  wait_seconds: number;
  /** How long the next Advance waits for a step callback before looking again (TimeoutSecondsPath). */
  callback_seconds?: number;
}

/**
 * One `Advance` in callback mode (lambda:invoke.waitForTaskToken): advance the run, then either answer
 * the token at once (the run is over, nothing is running, or a timer no task reports is due within
 * this wait's window: the Wait state takes it), or store the token on the execution so that the first
 * step task to end sends it (`stepTaskFinished`). A task that ended between the advance and the store
 * is seen by the check after the store (the task writes its end before taking the token, the engine
 * stores the token before reading the tasks: one of the two sees the other). An error answers the
 * token with a failure (the state's Retry applies).
 */
export async function advanceWithCallback(deps: Deps, input: EngineInput & { callback_seconds?: number }, token: string): Promise<void> {
  try {
    const { output, state } = await advanceOnce(deps, input);
    const repo = executions(deps);
    const now = deps.clock.now();
    const send = async (answer: EngineOutput, execution: ExecutionRecord | undefined, window?: number) => {
      await stepCallbacks(deps).sendTaskSuccess(token, { ...answer, callback_seconds: window ?? callbackSeconds(execution, now) });
    };
    if (output.done) return await send(output, undefined);
    // The run as this advance left it (every write it made succeeded); after a lost race, as stored now.
    const { execution, steps } = state ?? (await repo.load(input.execution_id));
    const definition = execution ? await definitionOf(deps, execution.workflow_id, execution.workflow_version) : undefined;
    if (!execution || !definition || execution.status !== 'running') return await send({ ...output, wait_seconds: 1 }, execution);
    const watch = callbackWatch(definition, steps, execution, now);
    const window = input.callback_seconds ?? CALLBACK_SECONDS;
    // Nothing to call back: the Wait state (wait_seconds) takes over.
    if (watch.inFlight.length === 0) return await send(output, execution);
    // A retry's backoff (or a lost claim) is due before this wait would end: wait for it instead.
    if (watch.timerSeconds !== null && watch.timerSeconds + 2 < window) return await send({ ...output, wait_seconds: watch.timerSeconds }, execution);
    // The run's deadline comes first: wait for callbacks again, but not past it.
    if (watch.runDeadlineSeconds !== null && watch.runDeadlineSeconds + 2 < window) return await send({ ...output, wait_seconds: 0 }, execution, watch.runDeadlineSeconds);
    if (!(await repo.storeCallbackToken(execution.execution_id, token))) return await send({ ...output, wait_seconds: 1 }, execution);
    const tasks = await Promise.all(watch.inFlight.map((id) => getTask(deps, id)));
    if (tasks.some((t) => !t || FINISHED_TASK.includes(t.status))) {
      const taken = await repo.takeCallbackToken(execution.execution_id);
      if (taken) await stepCallbacks(deps).sendTaskSuccess(taken.token, { ...output, wait_seconds: 0, callback_seconds: callbackSeconds(taken.execution, now) });
    }
  } catch (err) {
    logger.error('advance failed; the state machine retries it', { execution_id: input.execution_id, error: (err as Error).message });
    await stepCallbacks(deps).sendTaskFailure(token, ENGINE_ERROR, ((err as Error).message || 'engine error').slice(0, 2000)).catch(() => false);
  }
}

const FINISHED_TASK = ['completed', 'failed', 'cancelled'];

/**
 * The state machine's failure handler: the engine kept failing (its retries spent), so the run is
 * marked failed with the cause, its running steps cancelled and pending ones skipped.
 */
export async function failRun(deps: Deps, input: EngineInput, failure: { Error?: string; Cause?: string }): Promise<EngineOutput> {
  const repo = executions(deps);
  const execution = await repo.get(input.execution_id);
  const answer = (status: string): EngineOutput => ({ execution_id: input.execution_id, workflow_id: input.workflow_id, done: true, status, wait_seconds: 0 });
  if (!execution) return answer('missing');
  if (FINISHED_EXECUTION.includes(execution.status)) return answer(execution.status);
  const cause = [failure.Error, failure.Cause].filter(Boolean).join(': ') || 'unknown error';
  const error = { code: 'engine_failed', message: `the workflow engine failed: ${cause}`.slice(0, 2000) };
  if (await repo.finish(execution, 'failed', { error, output: null }, deps.clock.now())) {
    await settleSteps(deps, { ...execution, status: 'failed', error, completed_at: deps.clock.now().toISOString() }, error.message);
    return answer('failed');
  }
  return answer((await repo.get(input.execution_id))?.status ?? 'missing');
}

function observe(task: TaskView): TaskObservation {
  return {
    status: task.status,
    output: task.result?.output ?? null,
    error: task.error ? { code: task.error.code, message: task.error.message } : null,
    completed_at: task.completed_at,
  };
}

/** Time one `Advance` may spend waiting for the steps it just started, before handing back to the Wait state. */
const INLINE_BUDGET_MS = 10_000;
/** How long to watch just-started steps for a quick finish, and how often to look. */
const SETTLE_MS = 1000;
const SETTLE_POLL_MS = 100;
/** Just-started tasks watched at most (each look reads each of them). */
const SETTLE_WATCHED = 5;

/**
 * One `Advance` task. Steps on a fast provider often finish well within the Wait state's one-second
 * granularity: after starting steps, the engine watches a few of them for up to a second and, if one
 * finishes, advances again in the same invocation (within a 10 s budget), so a chain of quick steps does
 * not pay a full Wait per step. Otherwise the state machine's Wait state takes over.
 */
export async function advanceExecution(deps: Deps, input: EngineInput): Promise<EngineOutput> {
  const budgetEnds = Date.now() + INLINE_BUDGET_MS;
  for (;;) {
    const { output, startedTasks } = await advanceOnce(deps, input);
    if (output.done || startedTasks.length === 0 || Date.now() >= budgetEnds) return output;
    if (!(await anyFinishes(deps, startedTasks.slice(0, SETTLE_WATCHED), Math.min(SETTLE_MS, budgetEnds - Date.now())))) return output;
  }
}

async function anyFinishes(deps: Deps, taskIds: string[], withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
    const tasks = await Promise.all(taskIds.map((id) => getTask(deps, id)));
    if (tasks.some((t) => !t || ['completed', 'failed', 'cancelled'].includes(t.status))) return true;
  }
  return false;
}

/**
 * One round: reconcile the running steps with their tasks, apply the scheduling decision with
 * conditional writes (a step is claimed before its task is created, and the claim is conditional on
 * the run still running and on the step record being unchanged), start the claimed steps' tasks, and
 * finish the run when every step has ended.
 */
async function advanceOnce(deps: Deps, input: EngineInput): Promise<{ output: EngineOutput; startedTasks: string[]; state?: AdvancedState }> {
  const startedTasks: string[] = [];
  const answer = (done: boolean, status: string, waitSeconds = 0, state?: AdvancedState) => ({
    output: { execution_id: input.execution_id, workflow_id: input.workflow_id, done, status, wait_seconds: waitSeconds },
    startedTasks,
    ...(state ? { state } : {}),
  });
  const repo = executions(deps);
  let { execution, steps } = await repo.load(input.execution_id);
  if (!execution) return answer(true, 'missing');
  if (FINISHED_EXECUTION.includes(execution.status)) {
    if (execution.status === 'cancelled') await settleSteps(deps, execution, execution.error?.message ?? 'the run was cancelled');
    return answer(true, execution.status);
  }
  if (execution.status === 'pending') {
    const nowIso = deps.clock.now().toISOString();
    if (await repo.markRunning(execution, nowIso)) {
      execution = { ...execution, status: 'running', started_at: nowIso };
    } else {
      ({ execution, steps } = await repo.load(input.execution_id));
      if (!execution || execution.status !== 'running') return answer(true, execution?.status ?? 'missing');
    }
  }
  const run = execution;
  const definition = await definitionOf(deps, run.workflow_id, run.workflow_version);
  if (!definition) {
    const error = { code: 'definition_missing', message: `version ${run.workflow_version} of the workflow no longer exists` };
    await repo.finish(run, 'failed', { error, output: null }, deps.clock.now());
    return answer(true, 'failed');
  }

  const tasks = new Map<string, TaskObservation>();
  await Promise.all(
    [...steps.values()]
      .filter((s) => s.status === 'running' && s.task_id)
      .map(async (s) => {
        const task = await getTask(deps, s.task_id!);
        if (task) tasks.set(task.task_id, observe(task));
      }),
  );

  const plan = planAdvance({
    definition,
    execution: { status: run.status, variables: run.variables, timeout_at: run.timeout_at },
    steps,
    tasks,
    now: deps.clock.now(),
  });

  const byId = new Map(definition.steps.map((s) => [s.id, s]));
  const starting = new Set(plan.starts.map((s) => s.step_id));
  const beforeOf = new Map(plan.transitions.map((t) => [t.after.step_id, t.before]));
  let stale = false;
  const claimed = new Map<string, StepState>();
  /** The step records as this round leaves them (what it read, with each write it made). */
  const current = new Map<string, StepState>(steps);
  await Promise.all(
    plan.transitions.map(async ({ before, after }) => {
      const isStart = starting.has(after.step_id);
      const written = await repo.writeStep(run.execution_id, before, after, { whileRunning: isStart });
      if (!written) {
        stale = true;
        return;
      }
      const stored = { ...after, rev: before.rev + 1 };
      current.set(after.step_id, stored);
      if (isStart) claimed.set(after.step_id, stored);
    }),
  );
  await Promise.all(plan.cancelTasks.map((taskId) => cancelQuietly(deps, taskId, 'the workflow step was stopped')));
  await Promise.all(
    plan.starts
      .filter((s) => claimed.has(s.step_id))
      .map(async (start) => {
        const started = await startStepTask(deps, run, definition, byId.get(start.step_id)!, beforeOf.get(start.step_id)!, claimed.get(start.step_id)!, start.payload);
        if (started === undefined) stale = true;
        else {
          current.set(start.step_id, started.step);
          if (started.taskId) startedTasks.push(started.taskId);
        }
      }),
  );
  if (stale) return answer(false, 'running', 1);
  if (plan.finish) {
    const finished = await repo.finish(run, plan.finish.status, { error: plan.finish.error, output: plan.finish.output }, deps.clock.now());
    if (finished) return answer(true, plan.finish.status);
    const now = await repo.get(run.execution_id);
    return answer(true, now?.status ?? 'missing');
  }
  return answer(false, 'running', plan.waitSeconds, { execution: run, steps: current });
}

/** A run as one advance left it, every write of the round having succeeded. */
interface AdvancedState {
  execution: ExecutionRecord;
  steps: ReadonlyMap<string, StepState>;
}

/**
 * The task id of a step's attempt, the same for every Advance that makes that attempt. Its time part is
 * the step's start (kept by every claim of the step), so that listings ordered by task id place it there
 * rather than at the run's start.
 */
export const stepTaskId = (executionId: string, stepId: string, attempt: number, stepStartedAt: string) =>
  derivedUlid(executionId, `step#${stepId}#${attempt}`, Date.parse(stepStartedAt));

/**
 * Creates the task of a claimed attempt and links it to the step, and answers the task id with the
 * step as stored. A task the API refuses (its rendered payload fails the task schema, an unknown
 * provider) fails the step (task id null); an outage gives the claim back so that the next Advance
 * tries again, and a step that changed meanwhile gets its new task cancelled (answer undefined:
 * re-plan). Subscribers hear of the step from its stored change (live.ts).
 */
async function startStepTask(
  deps: Deps,
  run: ExecutionRecord,
  definition: WorkflowDefinition,
  step: StepDefinition,
  beforeClaim: StepState,
  claim: StepState,
  payload: Record<string, unknown>,
): Promise<{ taskId: string | null; step: StepState } | undefined> {
  const repo = executions(deps);
  let task: TaskView;
  try {
    task = await createTask(
      deps,
      { userId: run.created_by, username: run.created_by_username },
      {
        type: step.type as TaskView['type'],
        title: `${definition.name} · ${step.name ?? step.id}`.slice(0, 200),
        payload,
        priority: DEFAULT_PRIORITY,
        ...(step.provider_id ? { provider_id: step.provider_id } : {}),
        ...(step.agent_id ? { agent_id: step.agent_id } : {}),
        // With a step retry policy the engine makes every attempt itself (one task each).
        max_attempts: step.retry ? 1 : DEFAULT_MAX_ATTEMPTS,
        timeout_seconds: step.timeout_seconds ? Math.min(step.timeout_seconds, MAX_TIMEOUT_SECONDS) : DEFAULT_TIMEOUT_SECONDS,
        tags: ['workflow', `workflow:${run.workflow_id}`],
        metadata: { workflow_id: run.workflow_id, workflow_version: run.workflow_version, step_id: step.id, attempt: claim.attempt },
      },
      { workflow_execution_id: run.execution_id, workflow_step_id: step.id },
      // One id per attempt: an Advance that takes over a lost claim finds the task the first one stored.
      { taskId: stepTaskId(run.execution_id, step.id, claim.attempt, claim.started_at ?? run.created_at) },
    );
  } catch (err) {
    if (isClientError(err)) {
      const detail = err.errors?.length ? `${err.detail} (${err.errors.map((e) => `${e.path}: ${e.message}`).join('; ')})` : err.detail;
      const failed: StepState = { ...claim, status: 'failed', completed_at: deps.clock.now().toISOString(), error: { code: 'task_rejected', message: detail.slice(0, 2000) } };
      if (await repo.writeStep(run.execution_id, claim, failed)) {
        return { taskId: null, step: { ...failed, rev: claim.rev + 1 } };
      }
      return undefined;
    }
    logger.error('step task not created; the next Advance tries again', { execution_id: run.execution_id, step_id: step.id, error: (err as Error).message });
    await repo.writeStep(run.execution_id, claim, beforeClaim);
    return undefined;
  }
  const linked: StepState = { ...claim, task_id: task.task_id, task_ids: [...claim.task_ids, task.task_id] };
  if (!(await repo.writeStep(run.execution_id, claim, linked))) {
    // Another Advance took the claim over: the task is also its task while it runs the same attempt.
    const now = (await repo.load(run.execution_id)).steps.get(step.id);
    const sameAttempt = now?.status === 'running' && now.attempt === claim.attempt && (now.task_id === null || now.task_id === task.task_id);
    if (!sameAttempt) await cancelQuietly(deps, task.task_id, 'the workflow step was stopped before its task was linked');
    return undefined;
  }
  return { taskId: task.task_id, step: { ...linked, rev: claim.rev + 1 } };
}

// ---------------------------------------------------------------- settling

/** After a run ended from outside the engine: running steps are cancelled (with their tasks), pending ones skipped. */
export async function settleSteps(deps: Deps, execution: ExecutionRecord, reason: string): Promise<void> {
  const definition = await definitionOf(deps, execution.workflow_id, execution.workflow_version);
  if (!definition) return;
  const { steps } = await executions(deps).load(execution.execution_id);
  const nowIso = deps.clock.now().toISOString();
  await Promise.all(
    definition.steps.map(async (step) => {
      const before = steps.get(step.id) ?? pendingStep(step.id);
      let after: StepState;
      if (before.status === 'running') {
        if (before.task_id) await cancelQuietly(deps, before.task_id, reason);
        after = { ...before, status: 'cancelled', retry_at: null, completed_at: nowIso, error: { code: 'cancelled', message: reason } };
      } else if (before.status === 'pending') {
        after = { ...before, status: 'skipped', skip_reason: reason };
      } else return;
      await executions(deps).writeStep(execution.execution_id, before, after);
    }),
  );
}

async function cancelQuietly(deps: Deps, taskId: string, reason: string): Promise<void> {
  try {
    await cancelTask(deps, taskId, reason);
  } catch (err) {
    // Already finished (409) or gone (404): nothing left to cancel.
    if (!(err instanceof DomainError)) logger.warn('task cancel failed', { task_id: taskId, error: (err as Error).message });
  }
}
