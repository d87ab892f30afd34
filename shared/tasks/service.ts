import { newUlid } from '../platform/ids.js';
import { stepTaskFinished } from '../workflows/callbacks.js';
import * as z from 'zod';
import { ulidSchema } from '../platform/api/schemas.js';
import type { Deps } from '../platform/runtime.js';
import { conflict, forbidden, invalidState, notFound, validationError, type FieldError } from '../platform/errors.js';
import { canManage, canRead, type Principal } from '../platform/principal.js';
import { zodIssues } from '../platform/api/validation.js';
import { logger } from '../platform/logger.js';
import { METRICS, recordMetrics, type MetricName, type MetricPoint } from '../platform/metrics.js';
import { createTaskBody, type CreateTaskInput, type TaskView, type UpdateTaskInput, type SessionView } from './model.js';
import { canDelete, canEdit, type TaskStatus } from './status.js';
import { canCancel, canRetry, cancel, edit, enqueue as queueRule, failure, requeue, retryOrFail, type Change } from './transitions.js';
import { defaultTitle } from './prompts.js';
import { summarize, summarizeTasks, type StatsSummary } from './stats.js';
import { publicView, TaskRepository, type TaskFilter, type TaskRecord } from './repo.js';
import { agentCapacity } from '../agents/service.js';
import { isConditionFailure, retryOnConflict, VersionConflictError } from '../platform/store/conflicts.js';
import { getProvider } from '../providers/service.js';
import { taskQueue } from '../platform/use/queue.js';

export type { CreateTaskInput, TaskView } from './model.js';

/** Who creates a task (a user through the API, or the workflow engine on behalf of the user who ran it). */
export interface TaskActor {
  userId: string;
  username: string;
}

export interface TaskLink {
  workflow_execution_id: string;
  workflow_step_id: string;
}

/** Message the worker consumes: only the id; the task itself is always read from the table. */
export interface RunMessage {
  task_id: string;
  /** The task's `run_token` when the message was sent; a message with an older token is stale. */
  token?: string;
  /** Sent when capacity freed for a task waiting for resources: it runs now rather than at its next_attempt_at. */
  wake?: boolean;
}

const runMessage = z.object({ task_id: ulidSchema, token: z.string().max(64).optional(), wake: z.boolean().optional() });

/** A queue message's body as a RunMessage; undefined when it is not one (it can never succeed). */
export function parseRunMessage(body: string): RunMessage | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  const parsed = runMessage.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

const repo = (deps: Deps) => new TaskRepository(deps.store);

const ENDED: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];

const END_METRIC: Record<string, MetricName> = { completed: METRICS.tasksCompleted, failed: METRICS.tasksFailed, cancelled: METRICS.tasksCancelled };

/** The business figures of a task that just ended: its outcome, its run time and its cost. */
export function taskEndMetrics(task: Pick<TaskRecord, 'status' | 'duration_ms' | 'cost_usd'>): MetricPoint[] {
  const points: MetricPoint[] = [{ name: END_METRIC[task.status], unit: 'Count', value: 1 }];
  if (task.duration_ms !== null && task.duration_ms !== undefined) points.push({ name: METRICS.taskRunTime, unit: 'Milliseconds', value: task.duration_ms });
  if (task.cost_usd > 0) points.push({ name: METRICS.taskCostMicroUsd, unit: 'Count', value: Math.round(task.cost_usd * 1_000_000) });
  return points;
}

/**
 * What follows a change's write: its metrics, the workflow's next step, then its run message. Answers
 * whether a message was sent. (Its live and event-bus events follow from the stored change: `live.ts`.)
 */
export async function announce(deps: Deps, after: TaskRecord, change: Change): Promise<boolean> {
  const ended = ENDED.includes(after.status) && change.from.some((s) => !ENDED.includes(s));
  if (ended) recordMetrics(deps.config, taskEndMetrics(after));
  if (after.workflow_execution_id && ended) {
    // A workflow step's task ended: the run's waiting Advance goes on now, first, as the run's next
    // steps wait on it.
    await stepTaskFinished(deps, after.workflow_execution_id);
  }
  if (!change.send) return false;
  return sendRecorded(deps, after, change.send.token, change.send.delaySeconds);
}

/**
 * Sends the run message whose send time the task's write recorded (`last_sent_at`); when the send
 * fails, that time goes again, so that the sweeper re-sends as soon as the task counts as stuck.
 */
async function sendRecorded(deps: Deps, task: TaskRecord, token: string, delaySeconds: number): Promise<boolean> {
  const sent = await sendRun(deps, task.task_id, token, delaySeconds);
  if (!sent && task.last_sent_at !== undefined) {
    await repo(deps)
      .forgetSend(task.task_id, token)
      .catch((err) => logger.error('send time of an unsent task message not cleared', { task_id: task.task_id, error: err as Error }));
  }
  return sent;
}

/**
 * Applies a transition's change to the task as it was read, with one conditional write (VersionConflictError
 * when the task moved meanwhile), then announces it.
 */
export async function commit(deps: Deps, before: TaskRecord, change: Change): Promise<{ after: TaskRecord; sent: boolean }> {
  // A change that sends the run message records when, in the same write (see TaskRecord.last_sent_at).
  const write = change.send ? { ...change, set: { ...change.set, last_sent_at: deps.clock.now().toISOString() } } : change;
  const after = await repo(deps).apply(before, write);
  return { after, sent: await announce(deps, after, change) };
}

// ---------------------------------------------------------------- create

/**
 * Stores the task `queued` with its counters in one transaction (its run token and send time with it),
 * announces it, then sends its run message. The write and the send are not atomic: a task whose send
 * was lost stays queued and the sweeper sends it again (at once when the send failed, as `enqueue` does).
 */
export async function createTask(deps: Deps, actor: TaskActor, input: CreateTaskInput, link?: TaskLink, options: { concurrency?: { group: string; limit: number }; batchId?: string; taskId?: string } = {}): Promise<TaskView> {
  const parsed = createTaskBody.safeParse(input);
  if (!parsed.success) throw validationError(zodIssues(parsed.error));
  const body = parsed.data;
  const routingErrors = await checkRouting(deps, body);
  if (routingErrors.length) throw validationError(routingErrors);

  const now = deps.clock.now();
  const nowIso = now.toISOString();
  const runToken = newUlid();
  const record: TaskRecord = {
    task_id: options.taskId ?? newUlid(now.getTime()),
    type: body.type,
    title: body.title ?? defaultTitle(body.type, body.payload),
    status: 'queued',
    priority: body.priority,
    payload: body.payload,
    result: null,
    error: null,
    attempts: 0,
    max_attempts: body.max_attempts,
    timeout_seconds: body.timeout_seconds,
    max_cost_usd: body.max_cost_usd ?? null,
    agent_id: body.agent_id ?? null,
    provider_id: body.provider_id ?? null,
    model: null,
    tokens_in: 0,
    tokens_out: 0,
    cost_usd: 0,
    created_by: actor.userId,
    created_at: nowIso,
    updated_at: nowIso,
    queued_at: nowIso,
    started_at: null,
    completed_at: null,
    duration_ms: null,
    next_attempt_at: nowIso,
    waiting_reason: null,
    tags: body.tags,
    metadata: body.metadata,
    workflow_execution_id: link?.workflow_execution_id ?? null,
    workflow_step_id: link?.workflow_step_id ?? null,
    batch_id: options.batchId ?? null,
    version: 1,
    run_token: runToken,
    last_sent_at: nowIso,
    ...(body.resources ? { resources: body.resources } : {}),
    ...(options.concurrency ? { concurrency_group: options.concurrency.group, concurrency_limit: options.concurrency.limit } : {}),
  };
  try {
    await repo(deps).create(record);
  } catch (err) {
    // A chosen id (an idempotent request's) that is taken: an earlier attempt of the same request stored
    // it and died before answering. Its task is the answer; it is queued if that attempt did not get so far.
    if (!options.taskId || !isConditionFailure(err)) throw err;
    const existing = await repo(deps).get(options.taskId);
    if (!existing || existing.created_by !== actor.userId) throw conflict('The task id of this request is taken');
    // That attempt may have died before its send: the message goes again with the task's token (a
    // duplicate of one that did go is harmless, claims are conditional).
    if (existing.status === 'queued' && existing.run_token && existing.attempts === 0) await sendRun(deps, existing.task_id, existing.run_token, 0);
    return publicView((await enqueue(deps, existing)) ?? (await repo(deps).get(options.taskId)) ?? existing);
  }
  recordMetrics(deps.config, [{ name: METRICS.tasksCreated, unit: 'Count', value: 1 }]);
  await sendRecorded(deps, record, runToken, 0);
  return publicView(record);
}

/**
 * A named provider or agent must exist (and agree with each other); otherwise the task could never run.
 * Read before the create, not checked as a `ConditionCheck` inside its transaction: on DynamoDB every
 * create would then lock the one provider (and agent) item, so creates on the same provider conflict
 * with each other, and the worker's plain writes to the agent fail with TransactionConflictException
 * (which the SDK does not retry) while a create checks it.
 */
export async function checkRouting(deps: Deps, body: { provider_id?: string; agent_id?: string }, pathPrefix = ''): Promise<FieldError[]> {
  const errors: FieldError[] = [];
  if (body.agent_id) {
    const agent = await agentCapacity(deps).get(body.agent_id);
    if (!agent) errors.push({ path: `${pathPrefix}agent_id`, message: 'no agent with this id' });
    else if (body.provider_id && agent.provider_id !== body.provider_id) errors.push({ path: `${pathPrefix}agent_id`, message: `agent runs on provider ${agent.provider_id}, not ${body.provider_id}` });
  }
  if (body.provider_id && !(await getProvider(deps, body.provider_id))) errors.push({ path: `${pathPrefix}provider_id`, message: 'no provider with this id' });
  return errors;
}

/**
 * pending → queued, then the message. A task already taken by a worker (or changed otherwise) is left
 * alone. Answers the queued task, or undefined when it was not pending any more.
 */
export async function enqueue(deps: Deps, task: TaskRecord): Promise<TaskRecord | undefined> {
  try {
    return await retryOnConflict(async (attempt) => {
      const current = attempt === 1 ? task : await repo(deps).get(task.task_id);
      if (current?.status !== 'pending') return undefined;
      return (await commit(deps, current, queueRule(current, deps.clock.now()))).after;
    });
  } catch (err) {
    if (!(err instanceof VersionConflictError)) throw err;
    return undefined;
  }
}

/** Sends the run message; a failed send is logged, not thrown: the sweeper re-sends for queued tasks. */
export async function sendRun(deps: Deps, taskId: string, token: string, delaySeconds: number, options: { wake?: boolean } = {}): Promise<boolean> {
  try {
    await taskQueue(deps).send({ task_id: taskId, token, ...(options.wake ? { wake: true } : {}) } satisfies RunMessage, { delaySeconds: Math.max(0, Math.min(900, Math.ceil(delaySeconds))) });
    return true;
  } catch (err) {
    logger.warn('task message not sent; the sweeper will re-send it', { task_id: taskId, error: (err as Error).message });
    return false;
  }
}

// ---------------------------------------------------------------- read

/** A task by id for internal callers (the workflow engine); no authorization. */
export async function getTask(deps: Deps, taskId: string): Promise<TaskView | undefined> {
  const task = await repo(deps).get(taskId);
  return task ? publicView(task) : undefined;
}

export async function getTaskRecord(deps: Deps, taskId: string): Promise<TaskRecord> {
  const task = await repo(deps).get(taskId);
  if (!task) throw notFound('Task');
  return task;
}

/** Who may see a task: its creator and holders of `tasks:read_all`. */
export const mayReadTask = (principal: Pick<Principal, 'userId' | 'permissions'>, task: Pick<TaskRecord, 'created_by'>) => canRead(principal, task.created_by, 'tasks:read_all');

/** The task as the caller may see it: an unknown task and one they may not read are both 404. */
export async function readTask(deps: Deps, principal: Principal, taskId: string): Promise<TaskRecord> {
  const task = await repo(deps).get(taskId);
  if (!task || !mayReadTask(principal, task)) throw notFound('Task');
  return task;
}

/** `GET /tasks/{id}`: the task's view, or 404 when it is unknown or not the caller's to read. */
export async function viewTask(deps: Deps, principal: Principal, taskId: string): Promise<TaskView> {
  return publicView(await readTask(deps, principal, taskId));
}

/** Whether the task exists and this caller may read it (the WebSocket `task:<id>` subscription). */
export async function taskReadable(deps: Deps, principal: Pick<Principal, 'userId' | 'permissions'>, taskId: string): Promise<boolean> {
  const task = await repo(deps).get(taskId, false);
  return task !== undefined && mayReadTask(principal, task);
}

/**
 * The tasks the caller may read. Without `tasks:read_all` the list is the caller's own, read from the
 * creator index (never another user's items filtered away); asking for another creator is an empty list.
 */
export async function listTasks(deps: Deps, principal: Principal, filter: TaskFilter, limit: number, startKey?: Record<string, unknown>) {
  const scoped = ownScope(principal, filter);
  if (!scoped) return { items: [] as TaskView[], lastKey: undefined, consumedCapacity: undefined };
  const page = await repo(deps).list(scoped, limit, startKey);
  return { items: page.items.map(publicView), lastKey: page.lastKey, consumedCapacity: page.consumedCapacity };
}

/** The filter narrowed to what the caller may read; undefined when it can match nothing they may read. */
export function ownScope(principal: Pick<Principal, 'userId' | 'permissions'>, filter: TaskFilter): TaskFilter | undefined {
  if (principal.permissions.includes('tasks:read_all')) return filter;
  if (filter.created_by !== undefined && filter.created_by !== principal.userId) return undefined;
  return { ...filter, created_by: principal.userId, own_only: true };
}

/** At most this many of a caller's own tasks are read to compute their statistics (newest first). */
export const OWN_STATS_MAX_TASKS = 5_000;

/**
 * Statistics in the caller's scope: everything (the counter shards) with `tasks:read_all`, otherwise
 * computed from the caller's own tasks, read from the creator index (one query page per 1 MB, at most
 * OWN_STATS_MAX_TASKS tasks; `truncated` says when there were more).
 */
export async function taskStats(deps: Deps, principal: Principal): Promise<StatsSummary & { scope: 'all' | 'own'; truncated: boolean }> {
  if (principal.permissions.includes('tasks:read_all')) return { ...summarize(await repo(deps).statsShards()), scope: 'all', truncated: false };
  const { tasks, truncated } = await repo(deps).statsOfCreator(principal.userId, OWN_STATS_MAX_TASKS);
  return { ...summarizeTasks(tasks), scope: 'own', truncated };
}

export async function listSessions(deps: Deps, principal: Principal, taskId: string, limit: number, startKey?: Record<string, unknown>): Promise<{ items: SessionView[]; lastKey?: Record<string, unknown> }> {
  await readTask(deps, principal, taskId);
  const page = await repo(deps).sessions(taskId, limit, startKey);
  return { items: page.items, lastKey: page.lastKey };
}

// ---------------------------------------------------------------- change

/**
 * Reads the task, checks the change is allowed in its current status and applies it on the
 * condition that nothing changed since; a concurrent change means read and check again.
 */
async function changeTask(deps: Deps, taskId: string, decide: (task: TaskRecord) => Change): Promise<TaskRecord> {
  return retryOnConflict(async () => {
    const before = await getTaskRecord(deps, taskId);
    return (await commit(deps, before, decide(before))).after;
  });
}

/** pending/queued/running → cancelled. A running task's worker sees the status and aborts its provider call. */
export async function cancelTask(deps: Deps, taskId: string, reason: string): Promise<TaskView> {
  const after = await changeTask(deps, taskId, (task) => {
    if (!canCancel(task.status)) throw invalidState(`Task is ${task.status}; only pending, queued or running tasks can be cancelled`);
    return cancel(task, { now: deps.clock.now(), reason });
  });
  return publicView(after);
}

/** failed/cancelled → pending with a fresh set of attempts, then queued like a new task. */
export async function retryTask(deps: Deps, taskId: string): Promise<TaskView> {
  const after = await changeTask(deps, taskId, (task) => {
    if (!canRetry(task.status)) throw invalidState(`Task is ${task.status}; only failed or cancelled tasks can be retried`);
    return requeue(task, deps.clock.now());
  });
  const queued = await enqueue(deps, after);
  return publicView(queued ?? after);
}

export async function updateTask(deps: Deps, taskId: string, changes: UpdateTaskInput): Promise<TaskView> {
  const after = await changeTask(deps, taskId, (task) => {
    if (!canEdit(task.status)) throw invalidState(`Task is ${task.status}; title, priority and tags change only before it starts`);
    return edit(task, { now: deps.clock.now(), changes });
  });
  return publicView(after);
}

export async function deleteTask(deps: Deps, taskId: string): Promise<void> {
  await retryOnConflict(async () => {
    const task = await getTaskRecord(deps, taskId);
    if (!canDelete(task.status)) throw invalidState('Task is running; cancel it first');
    await repo(deps).delete(task);
  });
}

export function isWaiting(status: TaskStatus): boolean {
  return status === 'pending' || status === 'queued';
}

/**
 * Owners change what they created; `tasks:manage_all` changes anything. A task the caller may not even
 * read is a 404, as for reads.
 */
export async function requireOwnTask(deps: Deps, principal: Principal, taskId: string): Promise<TaskRecord> {
  const task = await readTask(deps, principal, taskId);
  if (!canManage(principal, task.created_by, 'tasks:manage_all')) throw forbidden("Only the task's creator (or tasks:manage_all) may change it");
  return task;
}

/**
 * A running task preempted to free its resources (a resource conflict's resolution): the attempt is
 * recorded as lost and the task goes back to the queue (or fails when no attempts are left). The worker
 * still running it finds the task changed when it settles and records its usage only. False when the
 * task was not running.
 */
export async function preemptTask(deps: Deps, taskId: string, reason: string): Promise<boolean> {
  try {
    return await retryOnConflict(async () => {
      const task = await repo(deps).get(taskId);
      if (!task || task.status !== 'running') return false;
      await commit(deps, task, retryOrFail(task, { now: deps.clock.now(), failure: failure('preempted', reason, true), attempt: { kind: 'lost' } }));
      return true;
    });
  } catch (err) {
    if (!(err instanceof VersionConflictError)) throw err;
    return false;
  }
}
