/**
 * Workflow runs: starting one (stored, then started on the state machine, which calls the engine's
 * `Advance` until it ends), reading and listing them, cancelling, failing a run whose state machine
 * execution is lost, and the health of the runner and the scheduler.
 */
import { newUlid } from '../platform/ids.js';
import type { Deps } from '../platform/runtime.js';
import { scheduleService } from '../platform/use/scheduler.js';
import { workflowRunner } from '../platform/use/workflows.js';
import type { Principal } from '../platform/principal.js';
import { canManage } from '../platform/principal.js';
import { VersionConflictError } from '../platform/store/conflicts.js';
import { conflict, dependencyUnavailable, forbidden, invalidState, notFound, validationError } from '../platform/errors.js';
import { logger } from '../platform/logger.js';
import { MAX_WORKFLOW_TIMEOUT_SECONDS, type VariableValue } from './definition.js';
import { requiredVariables } from './validation.js';
import { FINISHED_EXECUTION, type ExecutionStatus } from './engine.js';
import type { ExecutionRecord, ExecutionTrigger } from './repo.js';
import {
  definitionOf,
  executions,
  executionSummary,
  executionView,
  mayReadExecution,
  readWorkflow,
  requireExecution,
  requireWorkflow,
  workflows,
  type ExecutionView,
} from './reads.js';
import { settleSteps } from './advance.js';
import { scheduleCounts } from '../schedules/service.js';
import { probe } from '../platform/probe.js';
import type { TaskActor } from '../tasks/service.js';

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
  /**
   * With `execution_id`: a run of that id already stored by the same caller for the same workflow (an
   * idempotent request's earlier attempt that died before answering) is answered, its start completed,
   * instead of being a conflict.
   */
  answerExisting?: boolean;
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
    execution_id: request.execution_id ?? newUlid(now.getTime()),
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
  try {
    await executions(deps).create(execution);
  } catch (err) {
    if (!(err instanceof VersionConflictError) || !request.answerExisting) throw err;
    const existing = await executions(deps).get(execution.execution_id);
    if (!existing || existing.workflow_id !== workflowId || existing.created_by !== request.actor.userId) throw conflict('The execution id of this request is taken');
    const resumed = await resumeExecution(deps, existing);
    const { execution: current, steps } = await executions(deps).load(resumed.execution_id);
    return executionView(current ?? resumed, await definitionOf(deps, resumed.workflow_id, resumed.workflow_version), steps);
  }
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
    runId = await workflowRunner(deps).start(execution.execution_id, { execution_id: execution.execution_id, workflow_id: execution.workflow_id });
  } catch (err) {
    logger.error('state machine start failed', { execution_id: execution.execution_id, error: (err as Error).message });
    const error = { code: 'start_failed', message: 'the workflow runner did not start the run' };
    await executions(deps).finish(execution, 'failed', { error, output: null }, deps.clock.now());
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

/** A run whose state machine execution is gone this long without finishing the run is marked failed on read. */
const STALE_RUN_SECONDS = 30;

export async function getExecution(deps: Deps, workflowId: string, executionId: string): Promise<ExecutionView> {
  let { execution, steps } = await executions(deps).load(executionId);
  if (!execution || execution.workflow_id !== workflowId) throw notFound('Execution');
  if (await settleLostRun(deps, execution)) ({ execution, steps } = await executions(deps).load(executionId));
  const definition = await definitionOf(deps, execution!.workflow_id, execution!.workflow_version);
  return executionView(execution!, definition, steps);
}

/** The run as the caller may see it: an unknown run and one they may not read are both 404. */
export async function readExecution(deps: Deps, principal: Principal, workflowId: string, executionId: string): Promise<ExecutionView> {
  const execution = await requireExecution(deps, workflowId, executionId);
  if (!(await mayReadExecution(deps, principal, execution))) throw notFound('Execution');
  return getExecution(deps, workflowId, executionId);
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
      const run = await workflowRunner(deps).describe(execution.run_id);
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

/** The runs of a workflow the caller may read (its runs are read with it: see executionOwner). */
export async function listExecutions(deps: Deps, principal: Principal, workflowId: string, status: ExecutionStatus | undefined, limit: number, startKey?: Record<string, unknown>) {
  await readWorkflow(deps, principal, workflowId);
  const page = await executions(deps).listByWorkflow(workflowId, status, limit, startKey);
  return { items: page.items.map(executionSummary), lastKey: page.lastKey };
}

/** Stops the state machine execution and cancels the running steps; 409 when the run already ended. */
export async function cancelExecution(deps: Deps, principal: Principal, workflowId: string, executionId: string, reason: string): Promise<ExecutionView> {
  const execution = await requireExecution(deps, workflowId, executionId);
  if (!(await mayReadExecution(deps, principal, execution))) throw notFound('Execution');
  if (!canManage(principal, execution.created_by, 'workflows:manage_all')) throw forbidden('Only who started the run (or workflows:manage_all) may cancel it');
  if (FINISHED_EXECUTION.includes(execution.status) || !(await cancelRun(deps, executionId, reason))) {
    const now = await executions(deps).get(executionId);
    throw invalidState(`Execution is already ${now?.status ?? execution.status}`);
  }
  return getExecution(deps, workflowId, executionId);
}

/** Marks the run cancelled (if it had not ended), stops its state machine execution and settles its steps. */
export async function cancelRun(deps: Deps, executionId: string, reason: string): Promise<boolean> {
  const execution = await executions(deps).get(executionId);
  if (!execution || FINISHED_EXECUTION.includes(execution.status)) return false;
  const error = { code: 'cancelled', message: reason };
  if (!(await executions(deps).finish(execution, 'cancelled', { error, output: null }, deps.clock.now()))) return false;
  const cancelled: ExecutionRecord = { ...execution, status: 'cancelled', error, completed_at: deps.clock.now().toISOString() };
  if (execution.run_id) {
    await workflowRunner(deps).stop(execution.run_id, reason.slice(0, 1000)).catch((err) => {
      // The engine also stops by itself once it sees the run cancelled.
      logger.warn('state machine stop failed', { execution_id: executionId, error: (err as Error).message });
    });
  }
  await settleSteps(deps, cancelled, reason);
  return true;
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
  const [stateMachine, scheduler, running, failed, schedules] = await Promise.all([
    dependencyHealth('state_machine', () => workflowRunner(deps).check()),
    dependencyHealth('scheduler', () => scheduleService(deps).check()),
    executions(deps).activeCount(),
    executions(deps).failuresSince(now),
    scheduleCounts(deps, now, OVERDUE_GRACE_SECONDS),
  ]);
  const down = [stateMachine, scheduler].filter((c) => c.status === 'unhealthy').length;
  return {
    status: down === 0 ? ('healthy' as const) : down === 2 ? ('unhealthy' as const) : ('degraded' as const),
    state_machine: stateMachine,
    scheduler,
    running_executions: running,
    failed_last_24h: failed,
    schedules,
    checked_at: now.toISOString(),
  };
}
