import * as z from 'zod';
import * as s from './model.js';
import { defineRoutes } from '../platform/api/route.js';
import { pageOf } from '../platform/api/schemas.js';
import { requirePrincipal, type ApiRequest, type Operations } from '../platform/api/types.js';
import { pageRequest } from '../platform/api/pagination.js';
import { cancelTask, createTask, deleteTask, requireOwnTask, listSessions, listTasks, retryTask, taskStats, updateTask, viewTask } from './service.js';
import { executeBatch, executeOne } from './execute.js';


const tags = ['Task Management'];
const taskPath = '/api/v1/tasks/{task_id}';

/** Tasks, their sessions and statistics, and the execute endpoints (task creation + wait): the `tasks` function. */
export const taskRoutes = defineRoutes([
  {
    operationId: 'createTask',
    method: 'POST',
    path: '/api/v1/tasks',
    group: 'tasks',
    permission: 'tasks:create',
    summary: 'Create a task (stored queued, its run message sent to a worker)',
    description:
      'The payload is checked against the schema of the task type (pr_review, bug_fix, custom, ...). Honours `Idempotency-Key`. ' +
      'Answers 201 with the task `queued` (a retry whose first attempt stored the task answers it as it is now); follow it on the WebSocket channels `tasks` and `task:<id>`.',
    tags,
    body: s.createTaskBody,
    response: s.taskView,
    status: 201,
    idempotent: true,
    maxBodyBytes: s.TASK_BODY_MAX_BYTES,
    resourceType: 'task',
  },
  {
    operationId: 'listTasks',
    method: 'GET',
    path: '/api/v1/tasks',
    group: 'tasks',
    permission: 'tasks:read',
    summary: 'List tasks, newest first, with filters and cursor pagination',
    description:
      'Without `tasks:read_all` (a `user`) the list holds only the caller\'s own tasks (another `created_by` answers an empty list). ' +
      'Served by an index for status, creator or neither; the other filters narrow what the index returns. Such a ' +
      'filter may end a page with fewer than `limit` items while `next_cursor` is set: keep paging until it is null.',
    tags,
    query: s.listTasksQuery,
    response: pageOf(s.taskView),
  },
  {
    operationId: 'getTaskStats',
    method: 'GET',
    path: '/api/v1/tasks/stats/summary',
    group: 'tasks',
    permission: 'tasks:read',
    summary: 'Task statistics: totals by status, type and priority, success rate, duration p50/p95, tokens and cost',
    description:
      'With `tasks:read_all` (`scope: all`): from counters maintained on every write; durations from a fixed-bucket histogram (percentiles interpolated within a bucket). ' +
      'Without it (`scope: own`): computed from the caller\'s own tasks, read from the creator index, newest first, at most 5,000 (`truncated` when there are more).',
    tags: ['Task Analytics'],
    response: s.statsView,
  },
  {
    operationId: 'getTask',
    method: 'GET',
    path: taskPath,
    group: 'tasks',
    permission: 'tasks:read',
    summary: 'Get a task (404 for a task the caller may not read: not theirs, without tasks:read_all)',
    tags,
    params: s.taskIdParams,
    response: s.taskView,
  },
  {
    operationId: 'updateTask',
    method: 'PATCH',
    path: taskPath,
    group: 'tasks',
    permission: 'tasks:create',
    summary: 'Change title, priority or tags while the task has not started (owner or tasks:manage_all)',
    tags,
    params: s.taskIdParams,
    body: s.updateTaskBody,
    response: s.taskView,
    maxBodyBytes: 8 * 1024,
    resourceType: 'task',
    resourceIdParam: 'task_id',
  },
  {
    operationId: 'deleteTask',
    method: 'DELETE',
    path: taskPath,
    group: 'tasks',
    permission: 'tasks:create',
    summary: 'Delete a task and its sessions (not while running; owner or tasks:manage_all)',
    tags,
    params: s.taskIdParams,
    response: z.object({ task_id: z.string(), deleted: z.literal(true) }),
    resourceType: 'task',
    resourceIdParam: 'task_id',
  },
  {
    operationId: 'retryTask',
    method: 'POST',
    path: `${taskPath}/retry`,
    group: 'tasks',
    permission: 'tasks:create',
    summary: 'Run a failed or cancelled task again with a fresh set of attempts (409 otherwise)',
    tags,
    params: s.taskIdParams,
    response: s.taskView,
    resourceType: 'task',
    resourceIdParam: 'task_id',
  },
  {
    operationId: 'cancelTask',
    method: 'POST',
    path: `${taskPath}/cancel`,
    group: 'tasks',
    permission: 'tasks:create',
    summary: 'Cancel a pending, queued or running task (a running provider call is stopped)',
    tags,
    params: s.taskIdParams,
    body: s.cancelTaskBody,
    response: s.taskView,
    maxBodyBytes: 4 * 1024,
    resourceType: 'task',
    resourceIdParam: 'task_id',
  },
  {
    operationId: 'listTaskSessions',
    method: 'GET',
    path: `${taskPath}/sessions`,
    group: 'tasks',
    permission: 'tasks:read',
    summary: 'Execution sessions of a task, one per attempt (agent, provider, model, prompt, response, tokens, cost, latency, error)',
    tags: ['Task Analytics'],
    params: s.taskIdParams,
    query: s.sessionsQuery,
    response: pageOf(s.sessionView),
  },
  {
    operationId: 'executeTask',
    method: 'POST',
    path: '/api/v1/providers/execute',
    group: 'tasks',
    permission: 'providers:execute',
    summary: 'Execute one task and wait for its result',
    description:
      'Creates the task like POST /api/v1/tasks and waits up to `wait_seconds` (at most 25, inside API Gateway\'s 30 s limit). ' +
      'Answers 200 with the finished task (completed or failed) or 202 with the task still running, to poll or subscribe to.',
    tags: ['Provider Management'],
    body: s.executeBody,
    response: s.executeView,
    alsoAnswers: { 202: 'The task is still running after `wait_seconds`: follow it by its task_id' },
    idempotent: true,
    maxBodyBytes: s.TASK_BODY_MAX_BYTES,
    resourceType: 'task',
  },
  {
    operationId: 'executeBatch',
    method: 'POST',
    path: '/api/v1/providers/execute/batch',
    group: 'tasks',
    permission: 'providers:execute',
    summary: 'Execute several tasks, at most `max_concurrency` of them at a time',
    description:
      'Creates one task per item (sharing a concurrency group limited to `max_concurrency`) and waits up to `wait_seconds`. ' +
      'Answers 200 when every item finished, 202 otherwise; each item carries its task id, status and result or error.',
    tags: ['Provider Management'],
    body: s.executeBatchBody,
    response: s.batchView,
    alsoAnswers: { 202: 'Some items are still running after `wait_seconds`: follow them by their task ids' },
    idempotent: true,
    maxBodyBytes: 1024 * 1024,
    resourceType: 'task',
  },
]);

const actorOf = (req: ApiRequest) => {
  const p = requirePrincipal(req);
  return { userId: p.userId, username: p.username };
};

export const taskOperations: Operations<typeof taskRoutes> = {
  async createTask(req) {
    const task = await createTask(req.deps, actorOf(req), req.body, undefined, { taskId: req.idempotency?.resourceId });
    req.audit.resourceId = task.task_id;
    return { data: task, message: 'Task created', status: 201 };
  },

  async listTasks(req) {
    const { limit, cursor: _cursor, created_after, created_before, ...filter } = req.query;
    const principal = requirePrincipal(req);
    // The caller's own scope is part of the cursor's: a cursor continues only the query it came from.
    const own = principal.permissions.includes('tasks:read_all') ? {} : { own_only: principal.userId };
    const { startKey, respond } = await pageRequest(req, 'tasks', { ...filter, created_after, created_before, ...own });
    const dates = { created_after: created_after ? new Date(created_after) : undefined, created_before: created_before ? new Date(created_before) : undefined };
    return { data: respond(await listTasks(req.deps, principal, { ...filter, ...dates }, limit, startKey)) };
  },

  async getTaskStats(req) {
    return { data: await taskStats(req.deps, requirePrincipal(req)) };
  },

  async getTask(req) {
    return { data: await viewTask(req.deps, requirePrincipal(req), req.params.task_id) };
  },

  async updateTask(req) {
    await requireOwnTask(req.deps, requirePrincipal(req), req.params.task_id);
    return { data: await updateTask(req.deps, req.params.task_id, req.body), message: 'Task updated' };
  },

  async deleteTask(req) {
    await requireOwnTask(req.deps, requirePrincipal(req), req.params.task_id);
    await deleteTask(req.deps, req.params.task_id);
    return { data: { task_id: req.params.task_id, deleted: true as const }, message: 'Task deleted' };
  },

  async retryTask(req) {
    await requireOwnTask(req.deps, requirePrincipal(req), req.params.task_id);
    return { data: await retryTask(req.deps, req.params.task_id), message: 'Task queued again' };
  },

  async cancelTask(req) {
    await requireOwnTask(req.deps, requirePrincipal(req), req.params.task_id);
    const reason = req.body?.reason ?? `cancelled by ${requirePrincipal(req).username}`;
    return { data: await cancelTask(req.deps, req.params.task_id, reason), message: 'Task cancelled' };
  },

  async listTaskSessions(req) {
    const { startKey, respond } = await pageRequest(req, 'task-sessions', req.params.task_id);
    return { data: respond(await listSessions(req.deps, requirePrincipal(req), req.params.task_id, req.query.limit, startKey)) };
  },

  async executeTask(req) {
    const { wait_seconds, ...input } = req.body;
    const { task, finished } = await executeOne(req.deps, actorOf(req), input, wait_seconds, req.idempotency?.resourceId);
    req.audit.resourceId = task.task_id;
    return finished
      ? { data: { task }, message: `Task ${task.status}`, status: 200 }
      : { data: { task }, message: 'Task is still running; follow it by its task_id', status: 202 };
  },

  async executeBatch(req) {
    const result = await executeBatch(req.deps, actorOf(req), req.body, req.idempotency?.resourceId);
    req.audit.details = { batch_id: result.batch_id, items: result.items.length };
    return result.unfinished === 0
      ? { data: result, message: 'Batch finished', status: 200 }
      : { data: result, message: `${result.unfinished} of ${result.items.length} tasks are still running`, status: 202 };
  },
};
