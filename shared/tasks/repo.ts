import {
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ulidBound } from '../platform/ids.js';
import type { Store } from '../platform/store/client.js';
import { getItems } from '../platform/store/batch-get.js';
import { writeItems } from '../platform/store/batch-write.js';
import { countItems, queryPage, type PageQuery } from '../platform/store/query.js';
import { isConditionFailure, isTransactionConflict, retryOnConflict, VersionConflictError } from '../platform/store/conflicts.js';
import { buildUpdate } from '../platform/store/update.js';
import { viewOf } from '../platform/view.js';
import { sessionView, taskView, type TaskStatus, type TaskView, type SessionView } from './model.js';
import { changeDelta, createdDelta, deletedDelta, mergeDeltas, type CounterDelta } from './stats.js';

/** A task as stored: its public view plus the worker's lease and the batch concurrency group. */
export interface TaskRecord extends TaskView {
  /** Id of the worker invocation that holds the run; set while `running`. */
  lease_owner?: string;
  /** ISO time after which a `running` task whose worker went silent may be taken over. */
  lease_until?: string;
  /** Tasks of one execute-batch share a concurrency group limited to the batch's max_concurrency. */
  concurrency_group?: string;
  concurrency_limit?: number;
  cancel_reason?: string;
  /**
   * Identifies the one queue message that may run the task. Every re-send (retry, wait) writes a new
   * token with the task's conditional write, so a duplicate or superseded message recognises itself
   * and stops instead of forking a second chain of messages.
   */
  run_token?: string;
  /**
   * When the task's current run message was handed to the queue (written with the change that sends
   * it, removed again if the send fails). The sweeper re-sends a `queued` task only once this is older
   * than the queue's visibility timeout plus a margin: under a backlog a message waits, it is not lost.
   */
  last_sent_at?: string;
}

export type SessionRecord = SessionView;

/** Counter shards: status changes spread over them so that no single item takes every write. */
export const STATS_SHARDS = 16;

/** A task's items share its partition: the task (`TASK_SORT_KEY`) and its sessions. */
export const TASK_KEY_PREFIX = 'TASK#';
export const TASK_SORT_KEY = 'TASK';
const taskKey = (id: string) => ({ pk: `${TASK_KEY_PREFIX}${id}`, sk: TASK_SORT_KEY });
const sessionKey = (taskId: string, sessionId: string) => ({ pk: `${TASK_KEY_PREFIX}${taskId}`, sk: `SESSION#${sessionId}` });
const statsKey = (shard: number) => ({ pk: 'TASK_STATS', sk: `SHARD#${String(shard).padStart(2, '0')}` });
const ALL_TASKS = 'TASKS';
const byStatus = (s: TaskStatus) => `TASK_STATUS#${s}`;
const byCreator = (userId: string) => `TASK_CREATOR#${userId}`;
const sessionsByProvider = (providerId: string) => `TASK_SESSIONS#PROVIDER#${providerId}`;

const INTERNAL_KEYS = ['pk', 'sk', 'entity', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'gsi3pk', 'gsi3sk'];

function indexKeys(t: Pick<TaskRecord, 'task_id' | 'status' | 'created_by'>) {
  return {
    gsi1pk: ALL_TASKS,
    gsi1sk: t.task_id,
    gsi2pk: byStatus(t.status),
    gsi2sk: t.task_id,
    gsi3pk: byCreator(t.created_by),
    gsi3sk: t.task_id,
  };
}

function toRecord(item: Record<string, unknown> | undefined): TaskRecord | undefined {
  if (!item) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) if (!INTERNAL_KEYS.includes(k)) out[k] = v;
  return out as unknown as TaskRecord;
}

/** The task as the API shows it: the view's fields in the documented order, nothing private. */
export function publicView(record: TaskRecord): TaskView {
  return viewOf(taskView, record);
}

function toSession(item: Record<string, unknown>): SessionRecord {
  return viewOf(sessionView, item) as SessionRecord;
}

/** One conditional write of a task (transitions.ts builds them as Changes). */
export interface TaskWrite {
  /** Statuses the task must be in, on top of the version condition (which already pins the status read). */
  from?: readonly TaskStatus[];
  /** Fields to set (undefined values are ignored; null clears the field in the view). */
  set: Partial<TaskRecord>;
  /** Attributes to remove (private fields such as the lease). */
  remove?: (keyof TaskRecord)[];
  /** Extra counters for this change (usage, durations), added with the status/priority deltas. */
  counters?: CounterDelta;
  /** Also put this session item in the same transaction. */
  session?: SessionRecord;
}

export interface TaskFilter {
  status?: TaskStatus;
  type?: string;
  priority?: number;
  agent_id?: string;
  provider_id?: string;
  tag?: string;
  created_by?: string;
  created_after?: Date;
  created_before?: Date;
  /** The caller may read only `created_by`'s tasks: always the creator index, never another user's items filtered away. */
  own_only?: boolean;
}

const ULID_MIN = '00000000000000000000000000';
const ULID_MAX = '7ZZZZZZZZZZZZZZZZZZZZZZZZZ';

const withConflictRetry = <T>(fn: () => Promise<T>) => retryOnConflict(fn, { isConflict: isTransactionConflict });

export class TaskRepository {
  constructor(private readonly store: Store) {}

  async get(taskId: string, consistent = true): Promise<TaskRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: taskKey(taskId), ConsistentRead: consistent }));
    return out.Item?.entity === 'task' ? toRecord(out.Item) : undefined;
  }

  /** Only the status and the lease's owner (a cheap read for the worker's cancellation watch). */
  async runState(taskId: string): Promise<{ status: TaskStatus; lease_owner?: string } | undefined> {
    const out = await this.store.doc.send(
      new GetCommand({
        TableName: this.store.table,
        Key: taskKey(taskId),
        ConsistentRead: true,
        ProjectionExpression: '#s, lease_owner',
        ExpressionAttributeNames: { '#s': 'status' },
      }),
    );
    return out.Item ? { status: out.Item.status as TaskStatus, lease_owner: out.Item.lease_owner as string | undefined } : undefined;
  }

  async getMany(ids: string[]): Promise<Map<string, TaskRecord>> {
    const out = new Map<string, TaskRecord>();
    for (const item of await getItems(this.store, ids.map(taskKey), { consistent: true })) {
      const t = toRecord(item)!;
      out.set(t.task_id, t);
    }
    return out;
  }

  /** Stores a new task and counts it, in one transaction. */
  async create(task: TaskRecord): Promise<void> {
    await withConflictRetry(() =>
      this.store.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.store.table,
                Item: { ...taskKey(task.task_id), entity: 'task', ...indexKeys(task), ...task },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            this.counterUpdate(createdDelta(task)),
          ],
        }),
      ),
    );
  }

  /**
   * Applies a change to the task as it was read (`before`), on the condition that nobody changed it
   * since (its `version`) and that it is in one of `change.from`, and moves the counters (status,
   * priority, plus `change.counters`) in the same transaction. Answers the task after the change, or
   * throws VersionConflictError.
   */
  async apply(before: TaskRecord, change: TaskWrite): Promise<TaskRecord> {
    const after: TaskRecord = { ...before, version: before.version + 1 };
    const set: Record<string, unknown> = { version: after.version };
    for (const [field, value] of Object.entries(change.set)) {
      if (value === undefined || field === 'version') continue;
      set[field] = value;
      (after as unknown as Record<string, unknown>)[field] = value;
    }
    if (change.set.status !== undefined && change.set.status !== before.status) set.gsi2pk = byStatus(change.set.status);
    for (const field of change.remove ?? []) delete (after as unknown as Record<string, unknown>)[field];
    const from = change.from ?? [];
    const statusCondition = from.length ? { condition: `#status IN (${from.map((_, j) => `:from${j}`).join(', ')})`, names: { '#status': 'status' }, values: Object.fromEntries(from.map((st, j) => [`:from${j}`, st])) } : {};
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      {
        Update: {
          TableName: this.store.table,
          Key: taskKey(before.task_id),
          ...buildUpdate({ set, remove: change.remove, expect: { expected: before.version }, ...statusCondition }),
        },
      },
    ];
    const counters = mergeDeltas(changeDelta(before, after), change.counters ?? {});
    if (Object.keys(counters).length) items.push(this.counterUpdate(counters));
    if (change.session) items.push(this.sessionPut(change.session));
    try {
      await withConflictRetry(() => this.store.doc.send(new TransactWriteCommand({ TransactItems: items })));
    } catch (err) {
      if (isConditionFailure(err)) throw new VersionConflictError(`task ${before.task_id}`);
      throw err;
    }
    return after;
  }

  /**
   * Counts what an attempt consumed (tokens, cost) on the task and in the statistics, and stores its
   * session, whatever the task's status became meanwhile (e.g. cancelled during the call).
   */
  async recordAttemptUsage(taskId: string, usage: { tokens_in: number; tokens_out: number; cost_usd: number }, counters: CounterDelta, session: SessionRecord): Promise<void> {
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      {
        Update: {
          TableName: this.store.table,
          Key: taskKey(taskId),
          UpdateExpression: 'ADD tokens_in :ti, tokens_out :to, cost_usd :c, #version :one',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#version': 'version' },
          ExpressionAttributeValues: { ':ti': usage.tokens_in, ':to': usage.tokens_out, ':c': usage.cost_usd, ':one': 1 },
        },
      },
      this.sessionPut(session),
    ];
    if (Object.keys(counters).length) items.push(this.counterUpdate(counters));
    try {
      await withConflictRetry(() => this.store.doc.send(new TransactWriteCommand({ TransactItems: items })));
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      // The task was deleted meanwhile: its usage still happened, so count it in the statistics.
      if (Object.keys(counters).length) await withConflictRetry(() => this.store.doc.send(new TransactWriteCommand({ TransactItems: [this.counterUpdate(counters)] })));
    }
  }

  /** Deletes the task (not while running: the caller's `version` condition pins the status it checked) and its sessions. */
  async delete(before: TaskRecord): Promise<void> {
    try {
      await withConflictRetry(() =>
        this.store.doc.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Delete: {
                  TableName: this.store.table,
                  Key: taskKey(before.task_id),
                  ConditionExpression: '#version = :expected',
                  ExpressionAttributeNames: { '#version': 'version' },
                  ExpressionAttributeValues: { ':expected': before.version },
                },
              },
              this.counterUpdate(deletedDelta(before)),
            ],
          }),
        ),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw new VersionConflictError(`task ${before.task_id}`);
      throw err;
    }
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.store.doc.send(
        new QueryCommand({
          TableName: this.store.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :s)',
          ExpressionAttributeValues: { ':pk': taskKey(before.task_id).pk, ':s': 'SESSION#' },
          ProjectionExpression: 'pk, sk',
          ExclusiveStartKey: startKey,
        }),
      );
      const keys = (page.Items ?? []).map((i) => ({ pk: i.pk, sk: i.sk }));
      await writeItems(this.store, keys.map((key) => ({ delete: key })));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }

  async putSession(session: SessionRecord): Promise<void> {
    await this.store.doc.send(new PutCommand(this.sessionPut(session).Put));
  }

  async sessions(taskId: string, limit: number, startKey?: Record<string, unknown>) {
    const page = await queryPage<Record<string, unknown>>(this.store, {
      keyCondition: 'pk = :pk AND begins_with(sk, :s)',
      values: { ':pk': taskKey(taskId).pk, ':s': 'SESSION#' },
      limit,
      startKey,
      ascending: true,
    });
    return { ...page, items: page.items.map(toSession) };
  }

  async countSessions(taskId: string): Promise<number> {
    return countItems(this.store, { keyCondition: 'pk = :pk AND begins_with(sk, :s)', values: { ':pk': taskKey(taskId).pk, ':s': 'SESSION#' } });
  }

  /**
   * Newest first. The narrowest index the filter allows: by status for the active statuses (few
   * items), else by creator, else by status, else all tasks; the rest are FilterExpressions. A time
   * range is a ULID range on the index's sort key.
   */
  async list(filter: TaskFilter, limit: number, startKey?: Record<string, unknown>) {
    const page = await queryPage<Record<string, unknown>>(this.store, this.listQuery(filter, limit, startKey));
    return { ...page, items: page.items.map((i) => toRecord(i)!) };
  }

  listQuery(filter: TaskFilter, limit: number, startKey?: Record<string, unknown>): PageQuery {
    const activeStatus = filter.status && ['pending', 'queued', 'running'].includes(filter.status);
    let index: 'gsi1' | 'gsi2' | 'gsi3';
    let partition: string;
    const conditions: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    if (filter.status && !filter.own_only && (activeStatus || !filter.created_by)) {
      index = 'gsi2';
      partition = byStatus(filter.status);
      if (filter.created_by) {
        conditions.push('created_by = :creator');
        values[':creator'] = filter.created_by;
      }
    } else if (filter.created_by) {
      index = 'gsi3';
      partition = byCreator(filter.created_by);
      if (filter.status) {
        conditions.push('#status = :status');
        names['#status'] = 'status';
        values[':status'] = filter.status;
      }
    } else {
      index = 'gsi1';
      partition = ALL_TASKS;
    }
    if (filter.type) {
      conditions.push('#type = :type');
      names['#type'] = 'type';
      values[':type'] = filter.type;
    }
    if (filter.priority !== undefined) {
      conditions.push('priority = :priority');
      values[':priority'] = filter.priority;
    }
    if (filter.agent_id) {
      conditions.push('agent_id = :agent');
      values[':agent'] = filter.agent_id;
    }
    if (filter.provider_id) {
      conditions.push('provider_id = :provider');
      values[':provider'] = filter.provider_id;
    }
    if (filter.tag) {
      conditions.push('contains(tags, :tag)');
      values[':tag'] = filter.tag;
    }
    const low = filter.created_after ? ulidBound(filter.created_after, false) : ULID_MIN;
    const high = filter.created_before ? ulidBound(filter.created_before, true) : ULID_MAX;
    return {
      index,
      keyCondition: `${index}pk = :p AND ${index}sk BETWEEN :low AND :high`,
      names,
      values: { ...values, ':p': partition, ':low': low, ':high': high },
      filter: conditions.length ? conditions.join(' AND ') : undefined,
      limit,
      startKey,
    };
  }

  /** `pending` or `queued` tasks due before `olderThan` (oldest first): their message was never sent, or got lost. */
  async stuckTasks(status: 'pending' | 'queued', olderThan: Date, limit: number, startKey?: Record<string, unknown>, sentBefore?: Date) {
    const filter = sentBefore
      ? {
          expr: 'next_attempt_at < :cutoff AND (attribute_not_exists(last_sent_at) OR last_sent_at < :sent)',
          values: { ':cutoff': olderThan.toISOString(), ':sent': sentBefore.toISOString() },
        }
      : { expr: 'next_attempt_at < :cutoff', values: { ':cutoff': olderThan.toISOString() } };
    return this.statusPage(status, filter, limit, startKey);
  }

  /**
   * The run message carrying `token` was not sent after all: its send time goes, so that the sweeper
   * re-sends it as soon as the task counts as stuck. Only while the token is the task's current one.
   */
  async forgetSend(taskId: string, token: string): Promise<void> {
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: taskKey(taskId),
          UpdateExpression: 'REMOVE last_sent_at',
          ConditionExpression: 'run_token = :token',
          ExpressionAttributeValues: { ':token': token },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /** `running` tasks whose lease ran out before `now` (oldest first): their worker died or lost the table. */
  async expiredLeases(now: Date, limit: number, startKey?: Record<string, unknown>) {
    return this.statusPage('running', { expr: 'lease_until < :now', values: { ':now': now.toISOString() } }, limit, startKey);
  }

  /** `running` tasks whose lease the instance holds (lease owners `<instance>/…`, see `leaseOwner`). */
  async leasesOf(instanceId: string, limit: number, startKey?: Record<string, unknown>) {
    return this.statusPage('running', { expr: 'begins_with(lease_owner, :owner)', values: { ':owner': `${instanceId}/` } }, limit, startKey);
  }

  private async statusPage(status: TaskStatus, filter: { expr: string; values: Record<string, unknown> }, limit: number, startKey?: Record<string, unknown>) {
    const page = await queryPage<Record<string, unknown>>(this.store, {
      index: 'gsi2',
      keyCondition: 'gsi2pk = :p',
      values: { ':p': byStatus(status), ...filter.values },
      filter: filter.expr,
      limit,
      startKey,
      ascending: true,
    });
    return { ...page, items: page.items.map((i) => toRecord(i)!) };
  }

  /**
   * The counted fields of a creator's tasks, newest first, from the creator index (projected to those
   * fields): at most `max` of them; `truncated` when the creator has more.
   */
  async statsOfCreator(userId: string, max: number): Promise<{ tasks: Record<string, unknown>[]; truncated: boolean }> {
    const tasks: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.store.doc.send(
        new QueryCommand({
          TableName: this.store.table,
          IndexName: 'gsi3',
          KeyConditionExpression: 'gsi3pk = :p',
          ExpressionAttributeValues: { ':p': byCreator(userId) },
          ExpressionAttributeNames: { '#s': 'status', '#t': 'type' },
          ProjectionExpression: '#s, #t, priority, attempts, tokens_in, tokens_out, cost_usd, duration_ms',
          ScanIndexForward: false,
          ExclusiveStartKey: startKey,
          Limit: Math.min(1000, max - tasks.length + 1),
        }),
      );
      tasks.push(...(out.Items ?? []));
      startKey = out.LastEvaluatedKey;
    } while (startKey && tasks.length <= max);
    return { tasks: tasks.slice(0, max), truncated: tasks.length > max };
  }

  /** The counter shards (all of them; the summary adds them up). */
  async statsShards(): Promise<Record<string, unknown>[]> {
    return getItems(this.store, Array.from({ length: STATS_SHARDS }, (_, i) => statsKey(i)), { consistent: true });
  }

  /** Adds counters to a random shard on their own (usage whose task is gone). */
  async addCounters(delta: CounterDelta): Promise<void> {
    if (!Object.keys(delta).length) return;
    await withConflictRetry(() => this.store.doc.send(new TransactWriteCommand({ TransactItems: [this.counterUpdate(delta)] })));
  }

  private counterUpdate(delta: CounterDelta) {
    return {
      Update: {
        TableName: this.store.table,
        Key: statsKey(Math.floor(Math.random() * STATS_SHARDS)),
        ...buildUpdate({ add: delta }),
      },
    };
  }

  private sessionPut(session: SessionRecord) {
    return {
      Put: {
        TableName: this.store.table,
        Item: {
          ...sessionKey(session.task_id, session.session_id),
          entity: 'task_session',
          ...(session.provider_id ? { gsi1pk: sessionsByProvider(session.provider_id), gsi1sk: session.session_id } : {}),
          ...session,
        },
      },
    };
  }

}

