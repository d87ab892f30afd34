import { createHttpHandler } from '../../shared/platform/api/http-handler.js';
import type { ApiRequest, Operations } from '../../shared/platform/api/types.js';
import { requirePrincipal } from '../../shared/platform/api/types.js';
import { workflowsRoutes } from '../../shared/workflows/routes.js';
import { decodeCursor, encodeCursor } from '../../shared/platform/api/pagination.js';
import * as workflows from '../../shared/workflows/service.js';
import * as schedules from '../../shared/schedules/service.js';

/** A page of a list, with the cursor signed for exactly this query. */
async function paged<T>(req: ApiRequest, scope: string, cursor: string | undefined, load: (startKey?: Record<string, unknown>) => Promise<{ items: T[]; lastKey?: Record<string, unknown> }>) {
  const secret = await req.deps.appSecret();
  const page = await load(decodeCursor(cursor, scope, secret));
  return { items: page.items, next_cursor: encodeCursor(page.lastKey, scope, secret) };
}

const operations: Operations<typeof workflowsRoutes> = {
  async createWorkflow(req) {
    const workflow = await workflows.createWorkflow(req.deps, requirePrincipal(req), req.body);
    req.audit.resourceId = workflow.workflow_id;
    return { data: workflow, message: 'Workflow created', status: 201 };
  },

  async listWorkflows(req) {
    const { limit, cursor, ...filter } = req.query;
    const data = await paged(req, `workflows:${JSON.stringify(filter)}`, cursor, (startKey) => workflows.listWorkflows(req.deps, filter, limit, startKey));
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
    return { data: await workflows.getWorkflow(req.deps, req.params.workflow_id, req.query.version) };
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
    });
    req.audit.resourceId = execution.execution_id;
    return { data: execution, message: 'Execution started', status: 202 };
  },

  async listExecutions(req) {
    const { limit, cursor, status } = req.query;
    const { workflow_id } = req.params;
    const data = await paged(req, `executions:${workflow_id}:${status ?? ''}`, cursor, (startKey) =>
      workflows.listExecutions(req.deps, workflow_id, status, limit, startKey),
    );
    return { data };
  },

  async getExecution(req) {
    return { data: await workflows.getExecution(req.deps, req.params.workflow_id, req.params.execution_id) };
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
    const { limit, cursor, ...filter } = req.query;
    const data = await paged(req, `schedules:${JSON.stringify(filter)}`, cursor, (startKey) => schedules.listSchedules(req.deps, filter, limit, startKey));
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
    const execution = await schedules.triggerSchedule(req.deps, requirePrincipal(req), req.params.schedule_id);
    req.audit.details = { execution_id: execution.execution_id };
    return { data: execution, message: 'Schedule triggered', status: 202 };
  },
};

export const handler = createHttpHandler('workflows', [workflowsRoutes], operations);
