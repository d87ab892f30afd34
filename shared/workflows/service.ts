/**
 * Workflows: definitions and their versions, runs (started on the state machine, advanced by the
 * engine's `Advance` task), cancellation and health. Each step runs as a task through the task path.
 */
import { ulid } from 'ulid';
import type { Deps } from '../platform/runtime.js';
import type { Principal } from '../platform/principal.js';
import { canManage } from '../platform/principal.js';
import { ApiError, conflict, dependencyUnavailable, forbidden, invalidState, notFound, validationError, type FieldError } from '../platform/api/errors.js';
import { logger } from '../platform/logger.js';
import { publish } from '../realtime/publisher.js';
import { MAX_WORKFLOW_TIMEOUT_SECONDS, type VariableValue, type WorkflowDefinition, type StepDefinition } from './definition.js';
import { requiredVariables, validateDefinition, type ValidationResult } from './validation.js';
import {
  FINISHED_EXECUTION,
  pendingStep,
  planAdvance,
  type ExecutionStatus,
  type StepState,
  type TaskObservation,
} from './engine.js';
import { schedulerNameOf } from '../schedules/schedule.js';
import {
  ExecutionRepository,
  WorkflowNameTakenError,
  WorkflowRepository,
  type ExecutionRecord,
  type ExecutionTrigger,
  type StepRecord,
  type WorkflowRecord,
} from './repo.js';
import { ScheduleRepository, type ScheduleRecord } from '../schedules/repo.js';
import { retryOnConflict, VersionConflictError } from '../platform/store/conflicts.js';
import { probe } from '../platform/probe.js';
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY, DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS } from '../tasks/model.js';
import { cancelTask, createTask, getTask, type TaskActor, type TaskView } from '../tasks/service.js';

const workflows = (deps: Deps) => new WorkflowRepository(deps.store);
const executions = (deps: Deps) => new ExecutionRepository(deps.store);

// ---------------------------------------------------------------- views

export interface WorkflowView {
  workflow_id: string;
  name: string;
  description: string | null;
  version: number;
  definition: WorkflowDefinition;
  step_count: number;
  levels: string[][];
  critical_path: string[];
  warnings: ValidationResult['warnings'];
  created_by: string;
  created_by_username: string;
  created_at: string;
  updated_at: string;
}

export function workflowSummary(w: WorkflowRecord) {
  return {
    workflow_id: w.workflow_id,
    name: w.name,
    description: w.description,
    version: w.version,
    step_count: w.step_count,
    created_by: w.created_by,
    created_by_username: w.created_by_username,
    created_at: w.created_at,
    updated_at: w.updated_at,
  };
}

function workflowView(w: WorkflowRecord, version: number, definition: WorkflowDefinition): WorkflowView {
  const analysis = validateDefinition(definition);
  return {
    ...workflowSummary(w),
    version,
    definition,
    step_count: definition.steps.length,
    levels: analysis.levels,
    critical_path: analysis.critical_path,
    warnings: analysis.warnings,
  };
}

const durationMs = (from: string | null, to: string | null) => (from && to ? Math.max(0, Date.parse(to) - Date.parse(from)) : null);

export function executionSummary(e: ExecutionRecord) {
  return {
    execution_id: e.execution_id,
    workflow_id: e.workflow_id,
    workflow_name: e.workflow_name,
    workflow_version: e.workflow_version,
    status: e.status,
    trigger: e.trigger,
    triggered_by: e.triggered_by,
    schedule_id: e.schedule_id,
    variables: e.variables,
    created_by: e.created_by,
    created_at: e.created_at,
    started_at: e.started_at,
    completed_at: e.completed_at,
    duration_ms: durationMs(e.started_at, e.completed_at),
    timeout_at: e.timeout_at,
    error: e.error,
  };
}

function stepView(step: StepDefinition, state: StepState & { output_truncated?: boolean }) {
  return {
    step_id: step.id,
    name: step.name ?? null,
    type: step.type,
    depends_on: step.depends_on,
    status: state.status,
    task_id: state.task_id ?? state.task_ids[state.task_ids.length - 1] ?? null,
    task_ids: state.task_ids,
    attempts: state.attempt,
    started_at: state.started_at,
    completed_at: state.completed_at,
    duration_ms: durationMs(state.started_at, state.completed_at),
    retry_at: state.retry_at,
    output: state.output,
    output_truncated: state.output_truncated === true,
    error: state.error,
    skip_reason: state.skip_reason,
  };
}

export type StepView = ReturnType<typeof stepView>;

function executionView(e: ExecutionRecord, definition: WorkflowDefinition | undefined, steps: Map<string, StepRecord>) {
  const stepViews = (definition?.steps ?? []).map((s) => stepView(s, steps.get(s.id) ?? pendingStep(s.id)));
  const progress = { total: stepViews.length, pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0, skipped: 0 };
  for (const s of stepViews) progress[s.status]++;
  return { ...executionSummary(e), output: e.output, progress, steps: stepViews };
}

export type ExecutionView = ReturnType<typeof executionView>;

const executionChannels = (executionId: string) => ['workflows', `execution:${executionId}`];

/** `execution.updated` to the `workflows` and `execution:<id>` channels: the run, and the step that changed if any. */
async function publishExecution(deps: Deps, execution: ExecutionRecord, changedSteps: StepView[] = []): Promise<void> {
  await publish(deps, executionChannels(execution.execution_id), 'execution.updated', {
    ...executionSummary(execution),
    changed_steps: changedSteps,
  });
}

// ---------------------------------------------------------------- definitions

export function validateWorkflow(definition: WorkflowDefinition): ValidationResult {
  return validateDefinition(definition);
}

/** Create and update refuse exactly what validation reports, with the same codes in `errors[]`. */
function assertValid(definition: WorkflowDefinition): void {
  const result = validateDefinition(definition);
  if (!result.valid) {
    throw validationError(result.errors.map((e) => ({ path: e.path, message: e.message, code: e.code }) as FieldError));
  }
}

export async function createWorkflow(deps: Deps, principal: Principal, definition: WorkflowDefinition): Promise<WorkflowView> {
  assertValid(definition);
  const now = deps.clock.now();
  const nowIso = now.toISOString();
  const record: WorkflowRecord = {
    workflow_id: ulid(now.getTime()),
    name: definition.name,
    description: definition.description ?? null,
    version: 1,
    step_count: definition.steps.length,
    created_by: principal.userId,
    created_by_username: principal.username,
    created_at: nowIso,
    updated_at: nowIso,
  };
  try {
    await workflows(deps).create(record, { workflow_id: record.workflow_id, version: 1, definition, created_by: principal.userId, created_at: nowIso });
  } catch (err) {
    if (err instanceof WorkflowNameTakenError) throw conflict(err.message);
    throw err;
  }
  return workflowView(record, 1, definition);
}

async function requireWorkflow(deps: Deps, workflowId: string): Promise<WorkflowRecord> {
  const workflow = await workflows(deps).get(workflowId);
  if (!workflow) throw notFound('Workflow');
  return workflow;
}

export async function getWorkflow(deps: Deps, workflowId: string, version?: number): Promise<WorkflowView> {
  const workflow = await requireWorkflow(deps, workflowId);
  const wanted = version ?? workflow.version;
  if (wanted > workflow.version) throw notFound('Workflow version');
  const stored = await workflows(deps).getVersion(workflowId, wanted);
  if (!stored) throw notFound('Workflow version');
  return workflowView(workflow, wanted, stored.definition);
}

export async function listWorkflows(deps: Deps, filter: { created_by?: string; search?: string }, limit: number, startKey?: Record<string, unknown>) {
  const page = await workflows(deps).list(filter, limit, startKey);
  return { items: page.items.map(workflowSummary), lastKey: page.lastKey };
}

/** A new version; runs already started keep the version they started with. */
export async function updateWorkflow(deps: Deps, principal: Principal, workflowId: string, definition: WorkflowDefinition): Promise<WorkflowView> {
  const before = await requireWorkflow(deps, workflowId);
  if (!canManage(principal, before.created_by, 'workflows:manage_all')) throw forbidden('Only the owner (or workflows:manage_all) may change this workflow');
  assertValid(definition);
  const nowIso = deps.clock.now().toISOString();
  const after: WorkflowRecord = {
    ...before,
    name: definition.name,
    description: definition.description ?? null,
    version: before.version + 1,
    step_count: definition.steps.length,
    updated_at: nowIso,
  };
  try {
    await workflows(deps).addVersion(before, after, { workflow_id: workflowId, version: after.version, definition, created_by: principal.userId, created_at: nowIso });
  } catch (err) {
    if (err instanceof WorkflowNameTakenError) throw conflict(err.message);
    if (err instanceof VersionConflictError) throw conflict('The workflow was changed by someone else meanwhile; read it again and retry');
    throw err;
  }
  return workflowView(after, after.version, definition);
}

/**
 * Deletes the workflow with its versions and schedules (each removed from the Scheduler first). While
 * runs are going it is a 409, unless `force`, which cancels them. Finished runs stay as history.
 */
export async function deleteWorkflow(deps: Deps, principal: Principal, workflowId: string, force: boolean): Promise<{ cancelled_executions: string[]; deleted_schedules: string[] }> {
  const workflow = await requireWorkflow(deps, workflowId);
  if (!canManage(principal, workflow.created_by, 'workflows:manage_all')) throw forbidden('Only the owner (or workflows:manage_all) may delete this workflow');
  const unfinished = await executions(deps).unfinishedOf(workflowId);
  if (unfinished.length && !force) {
    throw invalidState(`The workflow has ${unfinished.length} unfinished execution(s); cancel them first or delete with ?force=true`);
  }
  const cancelled: string[] = [];
  for (const executionId of unfinished) {
    if (await cancelRun(deps, executionId, 'the workflow was deleted')) cancelled.push(executionId);
  }
  const schedules = await new ScheduleRepository(deps.store).allOfWorkflow(workflowId);
  for (const schedule of schedules) await removeSchedule(deps, schedule);
  try {
    await workflows(deps).delete(workflow);
  } catch (err) {
    if (!(err instanceof VersionConflictError)) throw err;
    if (!(await workflows(deps).get(workflowId))) throw notFound('Workflow');
    throw conflict('The workflow was changed by someone else meanwhile; read it again and retry');
  }
  return { cancelled_executions: cancelled, deleted_schedules: schedules.map((s) => s.schedule_id) };
}

/**
 * Removes a schedule from EventBridge Scheduler, then from the table: if the Scheduler call fails
 * nothing is removed (503), so the table never shows a schedule that still fires, nor loses one.
 */
export async function removeSchedule(deps: Deps, schedule: ScheduleRecord): Promise<void> {
  const repo = new ScheduleRepository(deps.store);
  // A change (or a firing) between the read and the delete moves the revision: read it again and
  // remove again (the change may have re-registered it with the Scheduler), so that the table never
  // keeps a schedule the Scheduler no longer has.
  try {
    await retryOnConflict(async (attempt) => {
      const current = attempt === 1 ? schedule : await repo.get(schedule.schedule_id);
      if (!current) return;
      try {
        await deps.scheduler.remove(schedulerNameOf(current.schedule_id));
      } catch (err) {
        logger.error('scheduler remove failed', { schedule_id: current.schedule_id, error: (err as Error).message });
        throw dependencyUnavailable('The scheduler');
      }
      await repo.delete(current);
    });
  } catch (err) {
    if (err instanceof VersionConflictError) throw conflict('The schedule keeps changing meanwhile; read it again and retry');
    throw err;
  }
}

// ---------------------------------------------------------------- runs

export interface RunRequest {
  variables?: Record<string, VariableValue>;
  triggered_by?: string;
  trigger: ExecutionTrigger;
  schedule_id?: string;
  actor: TaskActor;
  /**
   * The run's id, when the caller chose it in advance (a schedule firing, so that its retry can find the
   * run): a run of that id that already exists is a VersionConflictError and nothing is started.
   */
  execution_id?: string;
}

/** Only the owner of a workflow (or `workflows:manage_all`) runs it. */
export async function assertMayRun(deps: Deps, principal: Principal, workflowId: string): Promise<void> {
  const workflow = await requireWorkflow(deps, workflowId);
  if (!canManage(principal, workflow.created_by, 'workflows:manage_all')) throw forbidden('Only the owner (or workflows:manage_all) may run this workflow');
}

/**
 * Stores the run (pending) with the workflow's current version and starts the state machine
 * execution named after it. A run the runner refused is marked failed and answered with 503.
 */
export async function startExecution(deps: Deps, workflowId: string, request: RunRequest): Promise<ExecutionView> {
  const workflow = await requireWorkflow(deps, workflowId);
  const stored = await workflows(deps).getVersion(workflowId, workflow.version);
  if (!stored) throw notFound('Workflow version');
  const definition = stored.definition;
  const variables = { ...(definition.variables ?? {}), ...(request.variables ?? {}) };
  const missing = requiredVariables(definition).filter((name) => !Object.hasOwn(variables, name));
  if (missing.length) {
    throw validationError(missing.map((name) => ({ path: `variables.${name}`, message: 'the workflow uses this variable and it has no default: give it a value' })));
  }
  const now = deps.clock.now();
  const nowIso = now.toISOString();
  const execution: ExecutionRecord = {
    execution_id: request.execution_id ?? ulid(now.getTime()),
    workflow_id: workflowId,
    workflow_name: workflow.name,
    workflow_version: workflow.version,
    status: 'pending',
    trigger: request.trigger,
    triggered_by: request.triggered_by ?? request.actor.username,
    schedule_id: request.schedule_id ?? null,
    variables,
    created_by: request.actor.userId,
    created_by_username: request.actor.username,
    created_at: nowIso,
    started_at: null,
    completed_at: null,
    timeout_at: new Date(now.getTime() + (definition.timeout_seconds ?? MAX_WORKFLOW_TIMEOUT_SECONDS) * 1000).toISOString(),
    run_id: null,
    error: null,
    output: null,
    updated_at: nowIso,
  };
  await executions(deps).create(execution);
  await publishExecution(deps, execution);
  const runId = await startOnRunner(deps, execution);
  const { execution: current, steps } = await executions(deps).load(execution.execution_id);
  return executionView(current ?? { ...execution, run_id: runId }, definition, steps);
}

/**
 * Starts the state machine execution named after the run (idempotent: the runner answers the same
 * execution for the same name and input) and records it on the run. A refusal fails the run (503).
 */
async function startOnRunner(deps: Deps, execution: ExecutionRecord): Promise<string> {
  let runId: string;
  try {
    runId = await deps.workflows.start(execution.execution_id, { execution_id: execution.execution_id, workflow_id: execution.workflow_id });
  } catch (err) {
    logger.error('state machine start failed', { execution_id: execution.execution_id, error: (err as Error).message });
    const error = { code: 'start_failed', message: 'the workflow runner did not start the run' };
    if (await executions(deps).finish(execution, 'failed', { error, output: null }, deps.clock.now())) {
      await publishExecution(deps, { ...execution, status: 'failed', error });
    }
    throw dependencyUnavailable('The workflow runner');
  }
  await executions(deps).setRunId(execution.execution_id, runId, deps.clock.now().toISOString());
  return runId;
}

/**
 * Completes the start of a stored run whose starter died before recording the runner's execution (a
 * schedule firing taken over): a pending run without a run id is started on the runner under its own
 * name, which starts nothing new if the dead starter had got that far. Other runs are left as they are.
 */
export async function resumeExecution(deps: Deps, execution: ExecutionRecord): Promise<ExecutionRecord> {
  if (execution.status !== 'pending' || execution.run_id) return execution;
  const runId = await startOnRunner(deps, execution);
  return (await executions(deps).get(execution.execution_id)) ?? { ...execution, run_id: runId };
}

const definitionCache = new Map<string, WorkflowDefinition>();
const DEFINITION_CACHE_SIZE = 200;

/** Versions never change, so they are cached for the life of the process. */
async function definitionOf(deps: Deps, workflowId: string, version: number): Promise<WorkflowDefinition | undefined> {
  const key = `${workflowId}#${version}`;
  const cached = definitionCache.get(key);
  if (cached) return cached;
  const stored = await workflows(deps).getVersion(workflowId, version);
  if (!stored) return undefined;
  definitionCache.set(key, stored.definition);
  if (definitionCache.size > DEFINITION_CACHE_SIZE) definitionCache.delete(definitionCache.keys().next().value!);
  return stored.definition;
}

async function requireExecution(deps: Deps, workflowId: string, executionId: string): Promise<ExecutionRecord> {
  const execution = await executions(deps).get(executionId);
  if (!execution || execution.workflow_id !== workflowId) throw notFound('Execution');
  return execution;
}

/** A run whose state machine execution is gone this long without finishing the run is marked failed on read. */
const STALE_RUN_SECONDS = 30;

export async function getExecution(deps: Deps, workflowId: string, executionId: string): Promise<ExecutionView> {
  let { execution, steps } = await executions(deps).load(executionId);
  if (!execution || execution.workflow_id !== workflowId) throw notFound('Execution');
  if (await settleLostRun(deps, execution)) ({ execution, steps } = await executions(deps).load(executionId));
  const definition = await definitionOf(deps, execution!.workflow_id, execution!.workflow_version);
  return executionView(execution!, definition, steps);
}

/**
 * The engine records every ending itself; only a state machine execution that died (its retries
 * exhausted, stopped from the console, forgotten by a local restart) leaves a run unfinished. Such a
 * run is failed here when it is read, so that it does not count as running forever.
 */
async function settleLostRun(deps: Deps, execution: ExecutionRecord): Promise<boolean> {
  if (FINISHED_EXECUTION.includes(execution.status)) return false;
  const age = (deps.clock.now().getTime() - Date.parse(execution.created_at)) / 1000;
  if (age < STALE_RUN_SECONDS) return false;
  let reason: string | undefined;
  if (!execution.run_id) reason = 'the run was never started on the workflow runner';
  else {
    try {
      const run = await deps.workflows.describe(execution.run_id);
      if (run.status !== 'RUNNING') reason = `the workflow runner execution ended (${run.status})${run.error ? `: ${run.error}` : ''}`;
    } catch (err) {
      if ((err as { name?: string }).name !== 'ExecutionDoesNotExist') return false;
      reason = 'the workflow runner has no such execution any more';
    }
  }
  if (!reason) return false;
  const error = { code: 'engine_stopped', message: reason.slice(0, 1000) };
  if (!(await executions(deps).finish(execution, 'failed', { error, output: null }, deps.clock.now()))) return false;
  await settleSteps(deps, { ...execution, status: 'failed' }, 'the run ended');
  await publishExecution(deps, { ...execution, status: 'failed', error, completed_at: deps.clock.now().toISOString() });
  return true;
}

/**
 * The run as it stands once a lost run (see settleLostRun) has been failed: for callers that decide on
 * a run's status without reading it through the API (a schedule's overlap check).
 */
export async function settledExecution(deps: Deps, execution: ExecutionRecord): Promise<ExecutionRecord | undefined> {
  if (!(await settleLostRun(deps, execution))) return execution;
  return executions(deps).get(execution.execution_id);
}

export async function listExecutions(deps: Deps, workflowId: string, status: ExecutionStatus | undefined, limit: number, startKey?: Record<string, unknown>) {
  await requireWorkflow(deps, workflowId);
  const page = await executions(deps).listByWorkflow(workflowId, status, limit, startKey);
  return { items: page.items.map(executionSummary), lastKey: page.lastKey };
}

/** Stops the state machine execution and cancels the running steps; 409 when the run already ended. */
export async function cancelExecution(deps: Deps, principal: Principal, workflowId: string, executionId: string, reason: string): Promise<ExecutionView> {
  const execution = await requireExecution(deps, workflowId, executionId);
  if (!canManage(principal, execution.created_by, 'workflows:manage_all')) throw forbidden('Only who started the run (or workflows:manage_all) may cancel it');
  if (FINISHED_EXECUTION.includes(execution.status) || !(await cancelRun(deps, executionId, reason))) {
    const now = await executions(deps).get(executionId);
    throw invalidState(`Execution is already ${now?.status ?? execution.status}`);
  }
  return getExecution(deps, workflowId, executionId);
}

/** Marks the run cancelled (if it had not ended), stops its state machine execution and settles its steps. */
async function cancelRun(deps: Deps, executionId: string, reason: string): Promise<boolean> {
  const execution = await executions(deps).get(executionId);
  if (!execution || FINISHED_EXECUTION.includes(execution.status)) return false;
  const error = { code: 'cancelled', message: reason };
  if (!(await executions(deps).finish(execution, 'cancelled', { error, output: null }, deps.clock.now()))) return false;
  const cancelled: ExecutionRecord = { ...execution, status: 'cancelled', error, completed_at: deps.clock.now().toISOString() };
  await publishExecution(deps, cancelled);
  if (execution.run_id) {
    await deps.workflows.stop(execution.run_id, reason.slice(0, 1000)).catch((err) => {
      // The engine also stops by itself once it sees the run cancelled.
      logger.warn('state machine stop failed', { execution_id: executionId, error: (err as Error).message });
    });
  }
  await settleSteps(deps, cancelled, reason);
  return true;
}

/** After a run ended from outside the engine: running steps are cancelled (with their tasks), pending ones skipped. */
async function settleSteps(deps: Deps, execution: ExecutionRecord, reason: string): Promise<void> {
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
      if (await executions(deps).writeStep(execution.execution_id, before, after)) {
        await publishExecution(deps, execution, [stepView(step, after)]);
      }
    }),
  );
}

async function cancelQuietly(deps: Deps, taskId: string, reason: string): Promise<void> {
  try {
    await cancelTask(deps, taskId, reason);
  } catch (err) {
    // Already finished (409) or gone (404): nothing left to cancel.
    if (!(err instanceof ApiError)) logger.warn('task cancel failed', { task_id: taskId, error: (err as Error).message });
  }
}

// ---------------------------------------------------------------- the engine (Advance)

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
async function advanceOnce(deps: Deps, input: EngineInput): Promise<{ output: EngineOutput; startedTasks: string[] }> {
  const startedTasks: string[] = [];
  const answer = (done: boolean, status: string, waitSeconds = 0) => ({
    output: { execution_id: input.execution_id, workflow_id: input.workflow_id, done, status, wait_seconds: waitSeconds },
    startedTasks,
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
      await publishExecution(deps, execution);
    } else {
      ({ execution, steps } = await repo.load(input.execution_id));
      if (!execution || execution.status !== 'running') return answer(true, execution?.status ?? 'missing');
    }
  }
  const run = execution;
  const definition = await definitionOf(deps, run.workflow_id, run.workflow_version);
  if (!definition) {
    const error = { code: 'definition_missing', message: `version ${run.workflow_version} of the workflow no longer exists` };
    if (await repo.finish(run, 'failed', { error, output: null }, deps.clock.now())) await publishExecution(deps, { ...run, status: 'failed', error });
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
  await Promise.all(
    plan.transitions.map(async ({ before, after }) => {
      const isStart = starting.has(after.step_id);
      const written = await repo.writeStep(run.execution_id, before, after, { whileRunning: isStart });
      if (!written) {
        stale = true;
        return;
      }
      const stored = { ...after, rev: before.rev + 1 };
      if (isStart) claimed.set(after.step_id, stored);
      else await publishExecution(deps, run, [stepView(byId.get(after.step_id)!, stored)]);
    }),
  );
  await Promise.all(plan.cancelTasks.map((taskId) => cancelQuietly(deps, taskId, 'the workflow step was stopped')));
  await Promise.all(
    plan.starts
      .filter((s) => claimed.has(s.step_id))
      .map(async (start) => {
        const taskId = await startStepTask(deps, run, definition, byId.get(start.step_id)!, beforeOf.get(start.step_id)!, claimed.get(start.step_id)!, start.payload);
        if (taskId === undefined) stale = true;
        else if (taskId) startedTasks.push(taskId);
      }),
  );

  if (stale) return answer(false, 'running', 1);
  if (plan.finish) {
    const finished = await repo.finish(run, plan.finish.status, { error: plan.finish.error, output: plan.finish.output }, deps.clock.now());
    if (finished) {
      await publishExecution(deps, { ...run, status: plan.finish.status, error: plan.finish.error, output: plan.finish.output, completed_at: deps.clock.now().toISOString() });
      return answer(true, plan.finish.status);
    }
    const now = await repo.get(run.execution_id);
    return answer(true, now?.status ?? 'missing');
  }
  return answer(false, 'running', plan.waitSeconds);
}

/**
 * Creates the task of a claimed attempt and links it to the step, and answers the task id. A task the
 * API refuses (its rendered payload fails the task schema, an unknown provider) fails the step (answer
 * null); an outage gives the claim back so that the next Advance tries again, and a step that changed
 * meanwhile gets its new task cancelled (answer undefined: re-plan).
 */
async function startStepTask(
  deps: Deps,
  run: ExecutionRecord,
  definition: WorkflowDefinition,
  step: StepDefinition,
  beforeClaim: StepState,
  claim: StepState,
  payload: Record<string, unknown>,
): Promise<string | null | undefined> {
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
    );
  } catch (err) {
    if (err instanceof ApiError && err.status < 500) {
      const detail = err.errors?.length ? `${err.detail} (${err.errors.map((e) => `${e.path}: ${e.message}`).join('; ')})` : err.detail;
      const failed: StepState = { ...claim, status: 'failed', completed_at: deps.clock.now().toISOString(), error: { code: 'task_rejected', message: detail.slice(0, 2000) } };
      if (await repo.writeStep(run.execution_id, claim, failed)) {
        await publishExecution(deps, run, [stepView(step, { ...failed, rev: claim.rev + 1 })]);
        return null;
      }
      return undefined;
    }
    logger.error('step task not created; the next Advance tries again', { execution_id: run.execution_id, step_id: step.id, error: (err as Error).message });
    await repo.writeStep(run.execution_id, claim, beforeClaim);
    return undefined;
  }
  const linked: StepState = { ...claim, task_id: task.task_id, task_ids: [...claim.task_ids, task.task_id] };
  if (!(await repo.writeStep(run.execution_id, claim, linked))) {
    await cancelQuietly(deps, task.task_id, 'the workflow step was stopped before its task was linked');
    return undefined;
  }
  await publishExecution(deps, run, [stepView(step, { ...linked, rev: claim.rev + 1 })]);
  return task.task_id;
}

// ---------------------------------------------------------------- health

/** A dependency's probe as the workflow health reports it. */
async function dependencyHealth(name: string, check: () => Promise<void>) {
  const result = await probe(name, check);
  const latency_ms = Math.round(result.latencyMs);
  if (result.ok) return { status: 'healthy' as const, latency_ms, error: null };
  return { status: 'unhealthy' as const, latency_ms, error: (result.error as Error)?.name || 'Error' };
}

/** A schedule is overdue when its next run is this far in the past without a firing recorded. */
export const OVERDUE_GRACE_SECONDS = 120;

export async function workflowHealth(deps: Deps) {
  const now = deps.clock.now();
  const scheduleRepo = new ScheduleRepository(deps.store);
  const [stateMachine, scheduler, running, failed, active, overdue] = await Promise.all([
    dependencyHealth('state_machine', () => deps.workflows.check()),
    dependencyHealth('scheduler', () => deps.scheduler.check()),
    executions(deps).activeCount(),
    executions(deps).failuresSince(now),
    scheduleRepo.activeCount(),
    scheduleRepo.overdueCount(new Date(now.getTime() - OVERDUE_GRACE_SECONDS * 1000)),
  ]);
  const down = [stateMachine, scheduler].filter((c) => c.status === 'unhealthy').length;
  return {
    status: down === 0 ? ('healthy' as const) : down === 2 ? ('unhealthy' as const) : ('degraded' as const),
    state_machine: stateMachine,
    scheduler,
    running_executions: running,
    failed_last_24h: failed,
    schedules: { active, overdue },
    checked_at: now.toISOString(),
  };
}

