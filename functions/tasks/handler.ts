import { createHttpHandler } from '../../shared/platform/api/http-handler.js';
import { requirePrincipal, type ApiRequest, type Operations } from '../../shared/platform/api/types.js';
import { taskRoutes } from '../../shared/tasks/routes.js';
import { agentRoutes } from '../../shared/agents/routes.js';
import { forbidden, notFound } from '../../shared/platform/api/errors.js';
import { decodeCursor, encodeCursor } from '../../shared/platform/api/pagination.js';
import { canManage } from '../../shared/platform/principal.js';
import {
  cancelTask,
  createTask,
  deleteTask,
  getTask,
  getTaskRecord,
  listSessions,
  listTasks,
  retryTask,
  taskStats,
  updateTask,
} from '../../shared/tasks/service.js';
import { executeBatch, executeOne } from '../../shared/tasks/execute.js';
import { agentView, createAgent, deleteAgent, getAgent, listAgents, quotaStatus, updateAgent } from '../../shared/agents/service.js';

/** Owners change what they created; `tasks:manage_all` changes anything. */
async function requireOwnTask(req: ApiRequest<{ task_id: string }>) {
  const task = await getTaskRecord(req.deps, req.params.task_id);
  if (!canManage(requirePrincipal(req), task.created_by, 'tasks:manage_all')) throw forbidden('Only the task\'s creator (or tasks:manage_all) may change it');
  return task;
}

const actorOf = (req: ApiRequest) => {
  const p = requirePrincipal(req);
  return { userId: p.userId, username: p.username };
};

const operations: Operations<typeof taskRoutes> & Operations<typeof agentRoutes> = {
  async createTask(req) {
    const task = await createTask(req.deps, actorOf(req), req.body);
    req.audit.resourceId = task.task_id;
    return { data: task, message: 'Task created', status: 201 };
  },

  async listTasks(req) {
    const { limit, cursor, created_after, created_before, ...filter } = req.query;
    const secret = await req.deps.appSecret();
    const scope = `tasks:${JSON.stringify({ ...filter, created_after, created_before })}`;
    const page = await listTasks(
      req.deps,
      { ...filter, created_after: created_after ? new Date(created_after) : undefined, created_before: created_before ? new Date(created_before) : undefined },
      limit,
      decodeCursor(cursor, scope, secret),
    );
    return { data: { items: page.items, next_cursor: encodeCursor(page.lastKey, scope, secret) } };
  },

  async getTaskStats(req) {
    return { data: await taskStats(req.deps) };
  },

  async getTask(req) {
    const task = await getTask(req.deps, req.params.task_id);
    if (!task) throw notFound('Task');
    return { data: task };
  },

  async updateTask(req) {
    await requireOwnTask(req);
    return { data: await updateTask(req.deps, req.params.task_id, req.body), message: 'Task updated' };
  },

  async deleteTask(req) {
    await requireOwnTask(req);
    await deleteTask(req.deps, req.params.task_id);
    return { data: { task_id: req.params.task_id, deleted: true as const }, message: 'Task deleted' };
  },

  async retryTask(req) {
    await requireOwnTask(req);
    return { data: await retryTask(req.deps, req.params.task_id), message: 'Task queued again' };
  },

  async cancelTask(req) {
    await requireOwnTask(req);
    const reason = req.body?.reason ?? `cancelled by ${requirePrincipal(req).username}`;
    return { data: await cancelTask(req.deps, req.params.task_id, reason), message: 'Task cancelled' };
  },

  async listTaskSessions(req) {
    const secret = await req.deps.appSecret();
    const scope = `task-sessions:${req.params.task_id}`;
    const page = await listSessions(req.deps, req.params.task_id, req.query.limit, decodeCursor(req.query.cursor, scope, secret));
    return { data: { items: page.items, next_cursor: encodeCursor(page.lastKey, scope, secret) } };
  },

  async executeTask(req) {
    const { wait_seconds, ...input } = req.body;
    const { task, finished } = await executeOne(req.deps, actorOf(req), input, wait_seconds);
    req.audit.resourceId = task.task_id;
    return finished
      ? { data: { task }, message: `Task ${task.status}`, status: 200 }
      : { data: { task }, message: 'Task is still running; follow it by its task_id', status: 202 };
  },

  async executeBatch(req) {
    const result = await executeBatch(req.deps, actorOf(req), req.body);
    req.audit.details = { batch_id: result.batch_id, items: result.items.length };
    return result.unfinished === 0
      ? { data: result, message: 'Batch finished', status: 200 }
      : { data: result, message: `${result.unfinished} of ${result.items.length} tasks are still running`, status: 202 };
  },

  async listAgents(req) {
    const { limit, cursor, ...filter } = req.query;
    const secret = await req.deps.appSecret();
    const scope = `agents:${JSON.stringify(filter)}`;
    const page = await listAgents(req.deps, filter, limit, decodeCursor(cursor, scope, secret));
    return { data: { items: page.items, next_cursor: encodeCursor(page.lastKey, scope, secret) } };
  },

  async getAgentQuotaStatus(req) {
    return { data: await quotaStatus(req.deps) };
  },

  async getAgent(req) {
    return { data: agentView(await getAgent(req.deps, req.params.agent_id)) };
  },

  async createAgent(req) {
    const agent = await createAgent(req.deps, requirePrincipal(req), req.body);
    req.audit.resourceId = agent.agent_id;
    return { data: agentView(agent), message: 'Agent created', status: 201 };
  },

  async updateAgent(req) {
    return { data: agentView(await updateAgent(req.deps, req.params.agent_id, req.body)), message: 'Agent updated' };
  },

  async deleteAgent(req) {
    await deleteAgent(req.deps, req.params.agent_id);
    return { data: { agent_id: req.params.agent_id, deleted: true as const }, message: 'Agent deleted' };
  },
};

export const handler = createHttpHandler('tasks', [taskRoutes, agentRoutes], operations);
