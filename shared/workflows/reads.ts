/**
 * How the workflow use cases read: the repositories, the lookups that answer 404, the definition of a
 * version (cached), and the views answered by the API and published as `execution.updated` (live.ts).
 */
import type { Deps } from '../platform/runtime.js';
import { notFound } from '../platform/errors.js';
import { canRead, type Principal } from '../platform/principal.js';
import type { WorkflowDefinition, StepDefinition } from './definition.js';
import { validateDefinition, type ValidationResult } from './validation.js';
import { pendingStep, type StepState } from './engine.js';
import { ExecutionRepository, WorkflowRepository, type ExecutionRecord, type StepRecord, type WorkflowRecord } from './repo.js';

export const workflows = (deps: Deps) => new WorkflowRepository(deps.store);
export const executions = (deps: Deps) => new ExecutionRepository(deps.store);

// ---------------------------------------------------------------- lookups

/** A workflow as stored, or undefined. */
export async function findWorkflow(deps: Deps, workflowId: string): Promise<WorkflowRecord | undefined> {
  return workflows(deps).get(workflowId);
}

/** A run as stored, or undefined. */
export async function findExecution(deps: Deps, executionId: string): Promise<ExecutionRecord | undefined> {
  return executions(deps).get(executionId);
}

export async function requireWorkflow(deps: Deps, workflowId: string): Promise<WorkflowRecord> {
  const workflow = await workflows(deps).get(workflowId);
  if (!workflow) throw notFound('Workflow');
  return workflow;
}

export async function requireExecution(deps: Deps, workflowId: string, executionId: string): Promise<ExecutionRecord> {
  const execution = await executions(deps).get(executionId);
  if (!execution || execution.workflow_id !== workflowId) throw notFound('Execution');
  return execution;
}

// ---------------------------------------------------------------- who reads what

type Reader = Pick<Principal, 'userId' | 'permissions'>;

/** A workflow is read by its owner and by holders of `workflows:read_all`. */
export const mayReadWorkflow = (principal: Reader, workflow: Pick<WorkflowRecord, 'created_by'>) => canRead(principal, workflow.created_by, 'workflows:read_all');

/** The workflow as the caller may see it: an unknown workflow and one they may not read are both 404. */
export async function readWorkflow(deps: Deps, principal: Reader, workflowId: string): Promise<WorkflowRecord> {
  const workflow = await workflows(deps).get(workflowId);
  if (!workflow || !mayReadWorkflow(principal, workflow)) throw notFound('Workflow');
  return workflow;
}

const ownerCache = new Map<string, string>();
const OWNER_CACHE_SIZE = 1000;

/**
 * Who a run belongs to: the owner of its workflow (owners never change, so it is cached), or the run's
 * creator once the workflow is deleted. A run is read by that user and by holders of `workflows:read_all`.
 */
export async function executionOwner(deps: Deps, execution: Pick<ExecutionRecord, 'workflow_id' | 'created_by'>): Promise<string> {
  const cached = ownerCache.get(execution.workflow_id);
  if (cached) return cached;
  const workflow = await workflows(deps).get(execution.workflow_id);
  if (!workflow) return execution.created_by;
  ownerCache.set(execution.workflow_id, workflow.created_by);
  if (ownerCache.size > OWNER_CACHE_SIZE) ownerCache.delete(ownerCache.keys().next().value!);
  return workflow.created_by;
}

export async function mayReadExecution(deps: Deps, principal: Reader, execution: Pick<ExecutionRecord, 'workflow_id' | 'created_by'>): Promise<boolean> {
  if (principal.permissions.includes('workflows:read_all')) return true;
  return (await executionOwner(deps, execution)) === principal.userId;
}

/** Whether the run exists and this caller may read it (the WebSocket `execution:<id>` subscription). */
export async function executionReadable(deps: Deps, principal: Reader, executionId: string): Promise<boolean> {
  const execution = await executions(deps).get(executionId);
  return execution !== undefined && (await mayReadExecution(deps, principal, execution));
}

const definitionCache = new Map<string, WorkflowDefinition>();
const DEFINITION_CACHE_SIZE = 200;

/** Versions never change, so they are cached for the life of the process. */
export async function definitionOf(deps: Deps, workflowId: string, version: number): Promise<WorkflowDefinition | undefined> {
  const key = `${workflowId}#${version}`;
  const cached = definitionCache.get(key);
  if (cached) return cached;
  const stored = await workflows(deps).getVersion(workflowId, version);
  if (!stored) return undefined;
  definitionCache.set(key, stored.definition);
  if (definitionCache.size > DEFINITION_CACHE_SIZE) definitionCache.delete(definitionCache.keys().next().value!);
  return stored.definition;
}

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

export function workflowView(w: WorkflowRecord, version: number, definition: WorkflowDefinition): WorkflowView {
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

export function stepView(step: StepDefinition, state: StepState & { output_truncated?: boolean }) {
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

export function executionView(e: ExecutionRecord, definition: WorkflowDefinition | undefined, steps: Map<string, StepRecord>) {
  const stepViews = (definition?.steps ?? []).map((s) => stepView(s, steps.get(s.id) ?? pendingStep(s.id)));
  const progress = { total: stepViews.length, pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0, skipped: 0 };
  for (const s of stepViews) progress[s.status]++;
  return { ...executionSummary(e), output: e.output, progress, steps: stepViews };
}

export type ExecutionView = ReturnType<typeof executionView>;

