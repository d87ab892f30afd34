/**
 * The scheduling decision of a workflow run, as a pure function: given the definition, the stored step
 * states, what their tasks report and the time, which steps finish, fail, retry, start, get skipped or
 * cancelled now, whether the run is over, and when to look again. The engine Lambda (`Advance`) loads
 * the state, calls `planAdvance`, and applies the plan with conditional writes, so that a duplicate or
 * concurrent Advance cannot apply a transition twice.
 *
 * Semantics:
 * - a step starts when every dependency is `completed` and its condition (if any) is true, in
 *   topological order, while fewer than `max_parallel` steps are running (a step waiting out a retry
 *   backoff keeps its slot);
 * - a false condition skips the step; a skipped, failed or cancelled dependency skips its dependents;
 * - a failed attempt is retried after `retry.backoff_seconds` while attempts remain
 *   (`retry.max_attempts` counts every attempt, the first included), otherwise the step fails;
 *   a step exceeding `timeout_seconds` (counted from the attempt's start, queue time included) has its
 *   task cancelled and the attempt fails with `step_timeout`;
 * - `fail_fast`: the first failed step cancels the running ones and skips the rest; `continue`: only the
 *   failed step's dependents are skipped, everything else runs to the end;
 * - the run's `timeout_seconds` cancels running steps and skips the rest (`execution_timeout`);
 * - the run is `completed` when every step ended without a failure, `failed` otherwise.
 */
import type { StepDefinition, VariableValue, WorkflowDefinition } from './definition.js';
import { ConditionError, evaluateCondition } from './conditions.js';
import { renderPayload, TemplateError } from './templates.js';
import { levelsOf } from './graph.js';

export const STEP_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled', 'skipped'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];
export const EXECUTION_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];
export const FINISHED_EXECUTION: readonly ExecutionStatus[] = ['completed', 'failed', 'cancelled'];
const FINISHED_STEP: readonly StepStatus[] = ['completed', 'failed', 'cancelled', 'skipped'];

export interface StepError {
  code: string;
  message: string;
}

/** A step as stored. A step that has no record yet is `pending` with no attempt. */
export interface StepState {
  step_id: string;
  /** Write revision of the stored record (0: not stored yet); every write is conditional on it. */
  rev: number;
  status: StepStatus;
  /** Attempts started so far. */
  attempt: number;
  /** Task of the current attempt; null between a claim and its task, and while waiting for a retry. */
  task_id: string | null;
  task_ids: string[];
  started_at: string | null;
  attempt_started_at: string | null;
  completed_at: string | null;
  retry_at: string | null;
  output: string | null;
  error: StepError | null;
  skip_reason: string | null;
}

export type TaskStatus = 'pending' | 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface TaskObservation {
  status: TaskStatus;
  output: string | null;
  error: StepError | null;
  completed_at: string | null;
}

export interface ExecutionSnapshot {
  status: ExecutionStatus;
  variables: Record<string, VariableValue>;
  timeout_at: string | null;
}

export interface AdvanceInput {
  definition: WorkflowDefinition;
  execution: ExecutionSnapshot;
  steps: ReadonlyMap<string, StepState>;
  /** What each running step's current task reports; a task id missing here no longer exists. */
  tasks: ReadonlyMap<string, TaskObservation>;
  now: Date;
}

export interface StepTransition {
  /** The state the record had when planned: the write is conditional on it. */
  before: StepState;
  after: StepState;
}

export interface AttemptStart {
  step_id: string;
  attempt: number;
  payload: Record<string, unknown>;
}

export interface AdvancePlan {
  transitions: StepTransition[];
  /** Attempts to start: each is already among `transitions` as a move to `running` with no task. */
  starts: AttemptStart[];
  /** Tasks to cancel (fail_fast, timeouts). */
  cancelTasks: string[];
  /** Set when the run ends now. */
  finish?: { status: 'completed' | 'failed'; error: StepError | null; output: Record<string, string> };
  /** When to look again (whole seconds, at least 1). */
  waitSeconds: number;
}

/**
 * A claim (step marked running, task not yet linked) older than this is taken to be lost. Taking over a
 * claim that was only slow is harmless: the attempt's task id is derived from the attempt, so both
 * Advances create (or find) the same task.
 */
export const LOST_CLAIM_SECONDS = 15;
const MAX_POLL_SECONDS = 60;

export function pendingStep(stepId: string): StepState {
  return {
    step_id: stepId,
    rev: 0,
    status: 'pending',
    attempt: 0,
    task_id: null,
    task_ids: [],
    started_at: null,
    attempt_started_at: null,
    completed_at: null,
    retry_at: null,
    output: null,
    error: null,
    skip_reason: null,
  };
}

export const isFinishedStep = (s: StepStatus) => FINISHED_STEP.includes(s);

export function planAdvance(input: AdvanceInput): AdvancePlan {
  const { definition, execution, tasks, now } = input;
  const nowIso = now.toISOString();
  const byId = new Map(definition.steps.map((s) => [s.id, s]));
  const order = levelsOf(definition.steps).flat();
  const current = new Map<string, StepState>();
  const before = new Map<string, StepState>();
  for (const id of order) {
    const stored = input.steps.get(id) ?? pendingStep(id);
    before.set(id, stored);
    current.set(id, { ...stored, task_ids: [...stored.task_ids] });
  }
  const starts: AttemptStart[] = [];
  const cancelTasks = new Set<string>();
  const set = (id: string, changes: Partial<StepState>) => {
    current.set(id, { ...current.get(id)!, ...changes });
  };

  const attemptFailed = (step: StepDefinition, state: StepState, error: StepError, retryable: boolean) => {
    if (retryable && step.retry && state.attempt < step.retry.max_attempts) {
      set(step.id, {
        task_id: null,
        error,
        retry_at: new Date(now.getTime() + step.retry.backoff_seconds * 1000).toISOString(),
      });
    } else {
      set(step.id, { status: 'failed', task_id: null, retry_at: null, error, completed_at: nowIso });
    }
  };

  const startAttempt = (step: StepDefinition, attempt: number, payload: Record<string, unknown>) => {
    const state = current.get(step.id)!;
    set(step.id, {
      status: 'running',
      attempt,
      task_id: null,
      started_at: state.started_at ?? nowIso,
      attempt_started_at: nowIso,
      retry_at: null,
    });
    starts.push({ step_id: step.id, attempt, payload });
  };

  const outputs = (): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [id, s] of current) if (s.status === 'completed' && s.output !== null) out[id] = s.output;
    return out;
  };

  /** Renders the step's payload for a new attempt; a failure fails the step (no retry can fix it). */
  const renderFor = (step: StepDefinition): Record<string, unknown> | undefined => {
    try {
      return renderPayload(step.payload, { variables: execution.variables, outputs: outputs() });
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      set(step.id, { status: 'failed', error: { code: 'template_error', message: `${err.path}: ${err.message}` }, completed_at: nowIso });
      return undefined;
    }
  };

  // 1. What happened to the running steps' tasks.
  for (const id of order) {
    const step = byId.get(id)!;
    const state = current.get(id)!;
    if (state.status !== 'running') continue;
    if (state.task_id) {
      const task = tasks.get(state.task_id);
      if (!task) {
        attemptFailed(step, state, { code: 'task_missing', message: `task ${state.task_id} no longer exists` }, true);
        continue;
      }
      if (task.status === 'completed') {
        set(id, { status: 'completed', output: task.output ?? '', error: null, completed_at: task.completed_at ?? nowIso });
      } else if (task.status === 'failed') {
        attemptFailed(step, state, task.error ?? { code: 'task_failed', message: 'the task failed' }, true);
      } else if (task.status === 'cancelled') {
        // Someone cancelled the step's task directly: the step does not try again.
        attemptFailed(step, state, { code: 'task_cancelled', message: `task ${state.task_id} was cancelled` }, false);
      } else if (step.timeout_seconds !== undefined && elapsedSeconds(state.attempt_started_at, now) >= step.timeout_seconds) {
        cancelTasks.add(state.task_id);
        attemptFailed(step, state, { code: 'step_timeout', message: `the step did not finish within ${step.timeout_seconds} s` }, true);
      }
    } else if (state.retry_at) {
      if (Date.parse(state.retry_at) <= now.getTime()) {
        const payload = renderFor(step);
        if (payload) startAttempt(step, state.attempt + 1, payload);
      }
    } else if (elapsedSeconds(state.attempt_started_at, now) >= LOST_CLAIM_SECONDS) {
      // The Advance that claimed this attempt died before creating its task: claim it again.
      const payload = renderFor(step);
      if (payload) startAttempt(step, state.attempt, payload);
    }
  }

  // 2. Run-level endings, then 3. new starts and skips; a failure found in 3 (a condition that cannot be
  // evaluated) can end the run under fail_fast, so repeat until nothing changes.
  let finish: AdvancePlan['finish'];
  const stopEverything = (reason: string) => {
    for (const id of order) {
      const state = current.get(id)!;
      if (state.status === 'running') {
        if (state.task_id) cancelTasks.add(state.task_id);
        set(id, { status: 'cancelled', retry_at: null, completed_at: nowIso, error: { code: 'cancelled', message: reason } });
      } else if (state.status === 'pending') {
        set(id, { status: 'skipped', skip_reason: reason });
      }
    }
  };

  for (let round = 0; round < order.length + 2 && !finish; round++) {
    let changed = false;
    if (execution.timeout_at && Date.parse(execution.timeout_at) <= now.getTime()) {
      stopEverything('the run timed out');
      finish = { status: 'failed', error: { code: 'execution_timeout', message: 'the run did not finish within its timeout' }, output: {} };
      break;
    }
    if (definition.on_failure === 'fail_fast') {
      const failed = order.find((id) => current.get(id)!.status === 'failed');
      if (failed && order.some((id) => !isFinishedStep(current.get(id)!.status))) {
        stopEverything(`step '${failed}' failed (fail_fast)`);
        changed = true;
      }
    }
    let running = order.filter((id) => current.get(id)!.status === 'running').length;
    for (const id of order) {
      const step = byId.get(id)!;
      const state = current.get(id)!;
      if (state.status !== 'pending') continue;
      const blocking = step.depends_on.find((d) => ['failed', 'cancelled', 'skipped'].includes(current.get(d)!.status));
      if (blocking) {
        set(id, { status: 'skipped', skip_reason: `dependency '${blocking}' ${current.get(blocking)!.status}` });
        changed = true;
        continue;
      }
      if (!step.depends_on.every((d) => current.get(d)!.status === 'completed')) continue;
      if (step.condition !== undefined) {
        let holds: boolean;
        try {
          holds = evaluateCondition(step.condition, {
            variables: execution.variables,
            steps: Object.fromEntries([...current].map(([sid, s]) => [sid, { status: s.status, output: s.output }])),
          });
        } catch (err) {
          if (!(err instanceof ConditionError)) throw err;
          set(id, { status: 'failed', error: { code: 'condition_error', message: err.message }, completed_at: nowIso });
          changed = true;
          continue;
        }
        if (!holds) {
          set(id, { status: 'skipped', skip_reason: 'condition is false' });
          changed = true;
          continue;
        }
      }
      if (running >= definition.max_parallel) continue;
      const payload = renderFor(step);
      changed = true;
      if (!payload) continue;
      startAttempt(step, 1, payload);
      running++;
    }
    if (!changed) break;
  }

  // 4. The end of the run.
  if (!finish && order.every((id) => isFinishedStep(current.get(id)!.status))) {
    const failed = order.find((id) => ['failed', 'cancelled'].includes(current.get(id)!.status));
    const dependedOn = new Set(definition.steps.flatMap((s) => s.depends_on));
    const output: Record<string, string> = {};
    for (const id of order) {
      const s = current.get(id)!;
      if (!dependedOn.has(id) && s.status === 'completed' && s.output !== null) output[id] = s.output;
    }
    finish = failed
      ? { status: 'failed', error: { code: 'step_failed', message: failureMessage(failed, current.get(failed)!) }, output }
      : { status: 'completed', error: null, output };
  }

  const transitions: StepTransition[] = [];
  for (const id of order) {
    const a = before.get(id)!;
    const b = current.get(id)!;
    if (!sameState(a, b)) transitions.push({ before: a, after: b });
  }
  // An attempt planned in step 1 (a retry) may have been stopped since by a run-level ending.
  const stillStarting = starts.filter((s) => current.get(s.step_id)!.status === 'running');
  return {
    transitions,
    starts: stillStarting,
    cancelTasks: [...cancelTasks],
    ...(finish ? { finish } : {}),
    waitSeconds: finish ? 0 : nextLook(definition, current, execution, now, stillStarting.length > 0),
  };
}

function failureMessage(stepId: string, state: StepState): string {
  const cause = state.error ? `: ${state.error.message}` : '';
  return `step '${stepId}' ${state.status}${cause}`;
}

function elapsedSeconds(since: string | null, now: Date): number {
  return since ? (now.getTime() - Date.parse(since)) / 1000 : 0;
}

function sameState(a: StepState, b: StepState): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Polling interval: right after starting steps, 1 s (short steps finish quickly); while steps keep
 * running, the longer they have run the less often we look (up to 60 s), and with nothing running
 * (only retries waiting out their backoff) we sleep until the first of them is due; never past a
 * deadline (a retry, a step or run timeout) that is due sooner. The slow-down keeps a run within Step
 * Functions' 25 000-event history (9 events per Advance → Choice → Wait loop).
 */
function nextLook(
  definition: WorkflowDefinition,
  steps: ReadonlyMap<string, StepState>,
  execution: ExecutionSnapshot,
  now: Date,
  justStarted: boolean,
): number {
  const deadlines: number[] = [];
  if (execution.timeout_at) deadlines.push(Date.parse(execution.timeout_at));
  let youngest = Infinity;
  for (const step of definition.steps) {
    const state = steps.get(step.id)!;
    if (state.status !== 'running') continue;
    if (state.retry_at) deadlines.push(Date.parse(state.retry_at));
    else {
      youngest = Math.min(youngest, elapsedSeconds(state.attempt_started_at, now));
      if (step.timeout_seconds !== undefined && state.attempt_started_at) {
        deadlines.push(Date.parse(state.attempt_started_at) + step.timeout_seconds * 1000);
      }
      if (!state.task_id && state.attempt_started_at) deadlines.push(Date.parse(state.attempt_started_at) + LOST_CLAIM_SECONDS * 1000);
    }
  }
  let wait = justStarted ? 1 : pollSeconds(youngest);
  for (const at of deadlines) wait = Math.min(wait, Math.max(1, Math.ceil((at - now.getTime()) / 1000)));
  return wait;
}

/** Seconds between looks at steps that have been running for `age` seconds; with none running, the longest. */
function pollSeconds(age: number): number {
  if (age < 10) return 1;
  if (age < 60) return 2;
  if (age < 300) return 5;
  if (age < 900) return 15;
  return MAX_POLL_SECONDS;
}

/**
 * What a run waiting for step callbacks depends on: the tasks in flight (their end sends the callback),
 * the first timer no task will report (a retry's backoff, a lost claim) and the
 * run's own deadline, both in whole seconds from now (null: none).
 */
export function callbackWatch(
  definition: WorkflowDefinition,
  steps: ReadonlyMap<string, StepState>,
  execution: Pick<ExecutionSnapshot, 'timeout_at'>,
  now: Date,
): { inFlight: string[]; timerSeconds: number | null; runDeadlineSeconds: number | null } {
  const inFlight: string[] = [];
  const timers: number[] = [];
  for (const step of definition.steps) {
    const state = steps.get(step.id);
    if (!state || state.status !== 'running') continue;
    if (state.retry_at) timers.push(Date.parse(state.retry_at));
    // A step's own timeout is kept by its task (timeout_seconds), whose end sends the callback.
    else if (state.task_id) inFlight.push(state.task_id);
    else if (state.attempt_started_at) timers.push(Date.parse(state.attempt_started_at) + LOST_CLAIM_SECONDS * 1000);
  }
  const seconds = (at: number) => Math.max(1, Math.ceil((at - now.getTime()) / 1000));
  return {
    inFlight,
    timerSeconds: timers.length ? seconds(Math.min(...timers)) : null,
    runDeadlineSeconds: execution.timeout_at ? seconds(Date.parse(execution.timeout_at)) : null,
  };
}
