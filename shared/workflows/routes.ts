import * as z from 'zod';
import * as w from './model.js';
import * as s from '../schedules/schedule.js';
import * as workflows from './service.js';
import * as schedules from '../schedules/service.js';
import { defineRoutes } from '../platform/api/route.js';
import { pageOf } from '../platform/api/schemas.js';
import type { ApiRequest, Operations } from '../platform/api/types.js';
import { requirePrincipal } from '../platform/api/types.js';
import { pageRequest } from '../platform/api/pagination.js';


const tags = ['Workflow Management'];
const scheduleTags = ['Workflow Schedules'];
/** Up to 200 steps with their payloads. */
const DEFINITION_MAX_BYTES = 256 * 1024;

export const workflowsRoutes = defineRoutes([
  {
    operationId: 'createWorkflow',
    method: 'POST',
    path: '/api/v1/workflows',
    group: 'workflows',
    permission: 'workflows:create',
    summary: 'Create a workflow (a DAG of steps, each run as a task)',
    description: 'Refuses with 422 everything `POST /api/v1/workflows/validate` reports as an error, with the same `code`s in `errors[]`. Names are unique (409).',
    tags,
    body: w.createWorkflowBody,
    response: w.workflowView,
    status: 201,
    maxBodyBytes: DEFINITION_MAX_BYTES,
    resourceType: 'workflow',
  },
  {
    operationId: 'listWorkflows',
    method: 'GET',
    path: '/api/v1/workflows',
    group: 'workflows',
    permission: 'workflows:read',
    summary: 'List workflows, newest first (filters: created_by, search in the name)',
    tags,
    query: w.listWorkflowsQuery,
    response: pageOf(w.workflowSummaryView),
  },
  {
    operationId: 'validateWorkflow',
    method: 'POST',
    path: '/api/v1/workflows/validate',
    group: 'workflows',
    permission: 'workflows:read',
    summary: 'Validate a definition: errors (cycles with their path, unknown or self dependencies, duplicate ids, unknown types, bad templates and conditions, > 200 steps), warnings, parallel levels and the critical path',
    description: 'A definition whose shape is wrong (missing fields, wrong types) is a 422 like any body; one that is well-formed answers 200 with `valid` and the findings.',
    tags,
    body: w.validateWorkflowBody,
    response: w.validationView,
    maxBodyBytes: DEFINITION_MAX_BYTES,
    resourceType: 'workflow',
  },
  {
    operationId: 'workflowHealth',
    method: 'GET',
    path: '/api/v1/workflows/health',
    group: 'workflows',
    permission: 'workflows:read',
    summary: 'Workflow system health: state machine and scheduler reachable, unfinished runs, failures in the last 24 h, overdue schedules',
    tags,
    response: w.workflowHealthView,
  },
  {
    operationId: 'getWorkflow',
    method: 'GET',
    path: '/api/v1/workflows/{workflow_id}',
    group: 'workflows',
    permission: 'workflows:read',
    summary: 'A workflow with its definition (the latest version, or `?version=`), levels and critical path',
    tags,
    params: w.workflowIdParams,
    query: w.getWorkflowQuery,
    response: w.workflowView,
  },
  {
    operationId: 'updateWorkflow',
    method: 'PUT',
    path: '/api/v1/workflows/{workflow_id}',
    group: 'workflows',
    permission: 'workflows:create',
    summary: 'Replace the definition: makes a new version (runs already started keep theirs)',
    tags,
    params: w.workflowIdParams,
    body: w.updateWorkflowBody,
    response: w.workflowView,
    maxBodyBytes: DEFINITION_MAX_BYTES,
    resourceType: 'workflow',
    resourceIdParam: 'workflow_id',
  },
  {
    operationId: 'deleteWorkflow',
    method: 'DELETE',
    path: '/api/v1/workflows/{workflow_id}',
    group: 'workflows',
    permission: 'workflows:create',
    summary: 'Delete a workflow and its schedules; 409 while runs are unfinished unless `?force=true` (which cancels them)',
    tags,
    params: w.workflowIdParams,
    query: w.deleteWorkflowQuery,
    response: z.object({
      workflow_id: z.string(),
      deleted: z.literal(true),
      cancelled_executions: z.array(z.string()),
      deleted_schedules: z.array(z.string()),
    }),
    resourceType: 'workflow',
    resourceIdParam: 'workflow_id',
  },
  {
    operationId: 'executeWorkflow',
    method: 'POST',
    path: '/api/v1/workflows/{workflow_id}/execute',
    group: 'workflows',
    permission: 'workflows:execute',
    summary: 'Start a run (202): it runs on the workflow state machine, each step as a task',
    description: 'Honours `Idempotency-Key`. Variables override the definition\'s defaults; every variable the steps use needs a value (422 otherwise).',
    tags,
    params: w.workflowIdParams,
    body: w.executeBody,
    response: w.executionView,
    status: 202,
    idempotent: true,
    maxBodyBytes: 64 * 1024,
    resourceType: 'workflow_execution',
    resourceIdParam: 'workflow_id',
  },
  {
    operationId: 'listExecutions',
    method: 'GET',
    path: '/api/v1/workflows/{workflow_id}/executions',
    group: 'workflows',
    permission: 'workflows:read',
    summary: 'Runs of a workflow, newest first (filter: status)',
    tags,
    params: w.workflowIdParams,
    query: w.listExecutionsQuery,
    response: pageOf(w.executionSummaryView),
  },
  {
    operationId: 'getExecution',
    method: 'GET',
    path: '/api/v1/workflows/{workflow_id}/executions/{execution_id}',
    group: 'workflows',
    permission: 'workflows:read',
    summary: 'A run: status, each step\'s status, task, timings, output and error',
    tags,
    params: w.executionParams,
    response: w.executionView,
  },
  {
    operationId: 'cancelExecution',
    method: 'POST',
    path: '/api/v1/workflows/{workflow_id}/executions/{execution_id}/cancel',
    group: 'workflows',
    permission: 'workflows:execute',
    summary: 'Cancel a run: stops the state machine execution and cancels the running steps (409 when it already ended)',
    tags,
    params: w.executionParams,
    body: w.cancelExecutionBody,
    response: w.executionView,
    maxBodyBytes: 4 * 1024,
    resourceType: 'workflow_execution',
    resourceIdParam: 'execution_id',
  },
  {
    operationId: 'createSchedule',
    method: 'POST',
    path: '/api/v1/workflows/schedules',
    group: 'workflows',
    permission: 'schedules:manage',
    summary: 'Schedule a workflow: 5-field cron in an IANA time zone (EventBridge Scheduler semantics, DST included)',
    description: 'An invalid cron expression or time zone is a 422 naming the field. `overlap: "skip"` records a skip instead of starting a run while the previous one is still going.',
    tags: scheduleTags,
    body: s.createScheduleBody,
    response: s.scheduleView,
    status: 201,
    maxBodyBytes: 64 * 1024,
    resourceType: 'schedule',
  },
  {
    operationId: 'listSchedules',
    method: 'GET',
    path: '/api/v1/workflows/schedules',
    group: 'workflows',
    permission: 'workflows:read',
    summary: 'List schedules (filter: workflow_id)',
    tags: scheduleTags,
    query: s.listSchedulesQuery,
    response: pageOf(s.scheduleView),
  },
  {
    operationId: 'getSchedule',
    method: 'GET',
    path: '/api/v1/workflows/schedules/{schedule_id}',
    group: 'workflows',
    permission: 'workflows:read',
    summary: 'A schedule with its next runs, last run and skip count',
    tags: scheduleTags,
    params: s.scheduleIdParams,
    response: s.scheduleView,
  },
  {
    operationId: 'updateSchedule',
    method: 'PUT',
    path: '/api/v1/workflows/schedules/{schedule_id}',
    group: 'workflows',
    permission: 'schedules:manage',
    summary: 'Change a schedule (partial)',
    tags: scheduleTags,
    params: s.scheduleIdParams,
    body: s.updateScheduleBody,
    response: s.scheduleView,
    maxBodyBytes: 64 * 1024,
    resourceType: 'schedule',
    resourceIdParam: 'schedule_id',
  },
  {
    operationId: 'deleteSchedule',
    method: 'DELETE',
    path: '/api/v1/workflows/schedules/{schedule_id}',
    group: 'workflows',
    permission: 'schedules:manage',
    summary: 'Delete a schedule (removed from the Scheduler first)',
    tags: scheduleTags,
    params: s.scheduleIdParams,
    response: z.object({ schedule_id: z.string(), deleted: z.literal(true) }),
    resourceType: 'schedule',
    resourceIdParam: 'schedule_id',
  },
  {
    operationId: 'pauseSchedule',
    method: 'POST',
    path: '/api/v1/workflows/schedules/{schedule_id}/pause',
    group: 'workflows',
    permission: 'schedules:manage',
    summary: 'Pause a schedule',
    tags: scheduleTags,
    params: s.scheduleIdParams,
    response: s.scheduleView,
    resourceType: 'schedule',
    resourceIdParam: 'schedule_id',
  },
  {
    operationId: 'resumeSchedule',
    method: 'POST',
    path: '/api/v1/workflows/schedules/{schedule_id}/resume',
    group: 'workflows',
    permission: 'schedules:manage',
    summary: 'Resume a schedule from now (missed runs are not made up)',
    tags: scheduleTags,
    params: s.scheduleIdParams,
    response: s.scheduleView,
    resourceType: 'schedule',
    resourceIdParam: 'schedule_id',
  },
  {
    operationId: 'triggerSchedule',
    method: 'POST',
    path: '/api/v1/workflows/schedules/{schedule_id}/trigger',
    group: 'workflows',
    permission: 'schedules:manage',
    summary: 'Run the schedule\'s workflow now (202), recorded as a manual run',
    description: 'Honours `Idempotency-Key`.',
    tags: scheduleTags,
    params: s.scheduleIdParams,
    response: w.executionView,
    status: 202,
    idempotent: true,
    resourceType: 'schedule',
    resourceIdParam: 'schedule_id',
  },
]);

/** A page of a list, with the cursor signed for exactly this query. */
async function paged<T>(req: ApiRequest, name: string, filter: unknown, load: (startKey?: Record<string, unknown>) => Promise<{ items: T[]; lastKey?: Record<string, unknown> }>) {
  const { startKey, respond } = await pageRequest(req as ApiRequest<unknown, { cursor?: string }>, name, filter);
  return respond(await load(startKey));
}

export const workflowsOperations: Operations<typeof workflowsRoutes> = {
  async createWorkflow(req) {
    const workflow = await workflows.createWorkflow(req.deps, requirePrincipal(req), req.body);
    req.audit.resourceId = workflow.workflow_id;
    return { data: workflow, message: 'Workflow created', status: 201 };
  },

  async listWorkflows(req) {
    const { limit, cursor: _cursor, ...filter } = req.query;
    const principal = requirePrincipal(req);
    // The caller's own scope is part of the cursor's: a cursor continues only the query it came from.
    const own = principal.permissions.includes('workflows:read_all') ? {} : { own_only: principal.userId };
    const data = await paged(req, 'workflows', { ...filter, ...own }, (startKey) => workflows.listWorkflows(req.deps, principal, filter, limit, startKey));
    return { data };
  },

  async validateWorkflow(req) {
    const result = workflows.validateWorkflow(req.body);
    return { data: result, message: result.valid ? 'Definition is valid' : 'Definition has errors' };
  },

  async workflowHealth(req) {
    const health = await workflows.workflowHealth(req.deps);
    return { data: health, message: `Workflow system is ${health.status}` };
  },

  async getWorkflow(req) {
    return { data: await workflows.getWorkflow(req.deps, requirePrincipal(req), req.params.workflow_id, req.query.version) };
  },

  async updateWorkflow(req) {
    const workflow = await workflows.updateWorkflow(req.deps, requirePrincipal(req), req.params.workflow_id, req.body);
    return { data: workflow, message: `Workflow updated to version ${workflow.version}` };
  },

  async deleteWorkflow(req) {
    const result = await workflows.deleteWorkflow(req.deps, requirePrincipal(req), req.params.workflow_id, req.query.force ?? false);
    req.audit.details = { ...result };
    return { data: { workflow_id: req.params.workflow_id, deleted: true as const, ...result }, message: 'Workflow deleted' };
  },

  async executeWorkflow(req) {
    const principal = requirePrincipal(req);
    await workflows.assertMayRun(req.deps, principal, req.params.workflow_id);
    const execution = await workflows.startExecution(req.deps, req.params.workflow_id, {
      variables: req.body.variables,
      triggered_by: req.body.triggered_by,
      trigger: 'api',
      actor: { userId: principal.userId, username: principal.username },
      ...(req.idempotency ? { execution_id: req.idempotency.resourceId, answerExisting: true } : {}),
    });
    req.audit.resourceId = execution.execution_id;
    return { data: execution, message: 'Execution started', status: 202 };
  },

  async listExecutions(req) {
    const { limit, status } = req.query;
    const { workflow_id } = req.params;
    const data = await paged(req, 'executions', `${workflow_id}:${status ?? ''}`, (startKey) =>
      workflows.listExecutions(req.deps, requirePrincipal(req), workflow_id, status, limit, startKey),
    );
    return { data };
  },

  async getExecution(req) {
    return { data: await workflows.readExecution(req.deps, requirePrincipal(req), req.params.workflow_id, req.params.execution_id) };
  },

  async cancelExecution(req) {
    const principal = requirePrincipal(req);
    const reason = req.body.reason ?? `cancelled by ${principal.username}`;
    const execution = await workflows.cancelExecution(req.deps, principal, req.params.workflow_id, req.params.execution_id, reason);
    return { data: execution, message: 'Execution cancelled' };
  },

  async createSchedule(req) {
    const schedule = await schedules.createSchedule(req.deps, requirePrincipal(req), req.body);
    req.audit.resourceId = schedule.schedule_id;
    return { data: schedule, message: 'Schedule created', status: 201 };
  },

  async listSchedules(req) {
    const { limit, cursor: _cursor, ...filter } = req.query;
    const data = await paged(req, 'schedules', filter, (startKey) => schedules.listSchedules(req.deps, filter, limit, startKey));
    return { data };
  },

  async getSchedule(req) {
    return { data: await schedules.getSchedule(req.deps, req.params.schedule_id) };
  },

  async updateSchedule(req) {
    return { data: await schedules.updateSchedule(req.deps, requirePrincipal(req), req.params.schedule_id, req.body), message: 'Schedule updated' };
  },

  async deleteSchedule(req) {
    await schedules.deleteSchedule(req.deps, requirePrincipal(req), req.params.schedule_id);
    return { data: { schedule_id: req.params.schedule_id, deleted: true as const }, message: 'Schedule deleted' };
  },

  async pauseSchedule(req) {
    return { data: await schedules.pauseSchedule(req.deps, requirePrincipal(req), req.params.schedule_id), message: 'Schedule paused' };
  },

  async resumeSchedule(req) {
    return { data: await schedules.resumeSchedule(req.deps, requirePrincipal(req), req.params.schedule_id), message: 'Schedule resumed' };
  },

  async triggerSchedule(req) {
    const execution = await schedules.triggerSchedule(req.deps, requirePrincipal(req), req.params.schedule_id, req.idempotency?.resourceId);
    req.audit.details = { execution_id: execution.execution_id };
    return { data: execution, message: 'Schedule triggered', status: 202 };
  },
};
