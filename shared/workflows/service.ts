/**
 * Workflows: definitions and their versions (create, read, list, update, delete) and who may change
 * or run them. Runs live in runs.ts (re-exported here for the API handler), the engine's `Advance` in
 * advance.ts over the pure planner of engine.ts, and the shared lookups and views in reads.ts.
 */
import { newUlid } from '../platform/ids.js';
import type { Deps } from '../platform/runtime.js';
import type { Principal } from '../platform/principal.js';
import { canManage } from '../platform/principal.js';
import { conflict, forbidden, invalidState, notFound, validationError, type FieldError } from '../platform/errors.js';
import type { WorkflowDefinition } from './definition.js';
import { validateDefinition, type ValidationResult } from './validation.js';
import { WorkflowNameTakenError, type WorkflowRecord } from './repo.js';
import { VersionConflictError } from '../platform/store/conflicts.js';
import { removeSchedulesOfWorkflow } from '../schedules/service.js';
import { executions, readWorkflow, workflows, workflowSummary, workflowView, type WorkflowView } from './reads.js';
import { cancelRun } from './runs.js';

export { workflowSummary, executionSummary, executionReadable, type WorkflowView, type StepView, type ExecutionView } from './reads.js';
export {
  cancelExecution,
  getExecution,
  listExecutions,
  readExecution,
  OVERDUE_GRACE_SECONDS,
  resumeExecution,
  settledExecution,
  startExecution,
  workflowHealth,
  type RunRequest,
} from './runs.js';

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
    workflow_id: newUlid(now.getTime()),
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

export async function getWorkflow(deps: Deps, principal: Principal, workflowId: string, version?: number): Promise<WorkflowView> {
  const workflow = await readWorkflow(deps, principal, workflowId);
  const wanted = version ?? workflow.version;
  if (wanted > workflow.version) throw notFound('Workflow version');
  const stored = await workflows(deps).getVersion(workflowId, wanted);
  if (!stored) throw notFound('Workflow version');
  return workflowView(workflow, wanted, stored.definition);
}

/**
 * The workflows the caller may read. Without `workflows:read_all` that is the caller's own, read from the
 * owner index; asking for another owner is an empty list.
 */
export async function listWorkflows(deps: Deps, principal: Principal, filter: { created_by?: string; search?: string }, limit: number, startKey?: Record<string, unknown>) {
  if (!principal.permissions.includes('workflows:read_all')) {
    if (filter.created_by !== undefined && filter.created_by !== principal.userId) return { items: [], lastKey: undefined };
    filter = { ...filter, created_by: principal.userId };
  }
  const page = await workflows(deps).list(filter, limit, startKey);
  return { items: page.items.map(workflowSummary), lastKey: page.lastKey };
}

/** A new version; runs already started keep the version they started with. */
export async function updateWorkflow(deps: Deps, principal: Principal, workflowId: string, definition: WorkflowDefinition): Promise<WorkflowView> {
  const before = await readWorkflow(deps, principal, workflowId);
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
  const workflow = await readWorkflow(deps, principal, workflowId);
  if (!canManage(principal, workflow.created_by, 'workflows:manage_all')) throw forbidden('Only the owner (or workflows:manage_all) may delete this workflow');
  const unfinished = await executions(deps).unfinishedOf(workflowId);
  if (unfinished.length && !force) {
    throw invalidState(`The workflow has ${unfinished.length} unfinished execution(s); cancel them first or delete with ?force=true`);
  }
  const cancelled: string[] = [];
  for (const executionId of unfinished) {
    if (await cancelRun(deps, executionId, 'the workflow was deleted')) cancelled.push(executionId);
  }
  const deletedSchedules = await removeSchedulesOfWorkflow(deps, workflowId);
  try {
    await workflows(deps).delete(workflow);
  } catch (err) {
    if (!(err instanceof VersionConflictError)) throw err;
    if (!(await workflows(deps).get(workflowId))) throw notFound('Workflow');
    throw conflict('The workflow was changed by someone else meanwhile; read it again and retry');
  }
  return { cancelled_executions: cancelled, deleted_schedules: deletedSchedules };
}


/** Only the owner of a workflow (or `workflows:manage_all`) runs it; one the caller may not read is a 404. */
export async function assertMayRun(deps: Deps, principal: Principal, workflowId: string): Promise<void> {
  const workflow = await readWorkflow(deps, principal, workflowId);
  if (!canManage(principal, workflow.created_by, 'workflows:manage_all')) throw forbidden('Only the owner (or workflows:manage_all) may run this workflow');
}
