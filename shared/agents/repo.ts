import { DeleteCommand, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Store } from '../platform/store/client.js';
import { getItems } from '../platform/store/batch-get.js';
import { epochSeconds } from '../platform/store/client.js';
import { queryPage } from '../platform/store/query.js';
import { isConditionFailure } from '../platform/store/conflicts.js';
import { reservationThresholds, windowOf, type WindowUsage } from './quota.js';
import type { AgentRecord } from './types.js';

export type { AgentRecord } from './types.js';

/** What a reservation took, so it can be reconciled with the actual usage or given back. */
export interface QuotaReservation {
  agentId: string;
  windowKey: string;
  tokens: number;
}

const agentKey = (id: string) => ({ pk: `AGENT#${id}`, sk: 'AGENT' });
const nameKey = (name: string) => ({ pk: `UNIQUE#agent_name#${name.toLowerCase()}`, sk: 'UNIQUE' });
const usageKey = (agentId: string, windowKey: string) => ({ pk: `AGENT#${agentId}`, sk: `QUOTA#${windowKey}` });
const slotKey = (group: string, slot: number) => ({ pk: `CONCURRENCY#${group}`, sk: `SLOT#${String(slot).padStart(4, '0')}` });
const ALL_AGENTS = 'AGENTS';
/** Usage items outlive their window by a week (for the record), then TTL removes them. */
const USAGE_RETENTION_SECONDS = 7 * 86_400;

export class AgentNameTakenError extends Error {
  constructor() {
    super('an agent with this name already exists');
  }
}

function strip(item: Record<string, unknown> | undefined): AgentRecord | undefined {
  if (!item || item.entity !== 'agent') return undefined;
  const { pk: _pk, sk: _sk, gsi1pk: _a, gsi1sk: _b, gsi2pk: _c, gsi2sk: _d, entity: _e, ...rest } = item;
  return rest as unknown as AgentRecord;
}

export class AgentRepository {
  constructor(private readonly store: Store) {}

  async get(agentId: string): Promise<AgentRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: agentKey(agentId), ConsistentRead: true }));
    return strip(out.Item);
  }

  /** All agents (a short list: agents are configured by admins), optionally of one provider. */
  async list(providerId?: string): Promise<AgentRecord[]> {
    const out: AgentRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await queryPage<Record<string, unknown>>(this.store, {
        index: providerId ? 'gsi2' : 'gsi1',
        keyCondition: providerId ? 'gsi2pk = :p' : 'gsi1pk = :p',
        values: { ':p': providerId ? `AGENTS#PROVIDER#${providerId}` : ALL_AGENTS },
        limit: 100,
        startKey,
        ascending: true,
      });
      out.push(...page.items.map((i) => strip(i)!));
      startKey = page.lastKey;
    } while (startKey);
    return out;
  }

  /** One page of agents (by id, oldest first), optionally of one provider and enabled state. */
  async page(filter: { provider_id?: string; enabled?: boolean }, limit: number, startKey?: Record<string, unknown>) {
    const page = await queryPage<Record<string, unknown>>(this.store, {
      index: filter.provider_id ? 'gsi2' : 'gsi1',
      keyCondition: filter.provider_id ? 'gsi2pk = :p' : 'gsi1pk = :p',
      values: { ':p': filter.provider_id ? `AGENTS#PROVIDER#${filter.provider_id}` : ALL_AGENTS, ...(filter.enabled !== undefined ? { ':enabled': filter.enabled } : {}) },
      filter: filter.enabled !== undefined ? 'enabled = :enabled' : undefined,
      limit,
      startKey,
      ascending: true,
    });
    return { items: page.items.map((i) => strip(i)!), lastKey: page.lastKey };
  }

  async create(agent: AgentRecord): Promise<void> {
    try {
      await this.store.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: this.store.table, Item: { ...nameKey(agent.name), agent_id: agent.agent_id }, ConditionExpression: 'attribute_not_exists(pk)' } },
            { Put: { TableName: this.store.table, Item: this.item(agent), ConditionExpression: 'attribute_not_exists(pk)' } },
          ],
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw new AgentNameTakenError();
      throw err;
    }
  }

  /** Replaces the agent as read (`before.updated_at` pins the version), moving its name claim if renamed. */
  async update(before: AgentRecord, after: AgentRecord): Promise<void> {
    const items: NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']> = [
      {
        Put: {
          TableName: this.store.table,
          Item: this.item(after),
          ConditionExpression: 'updated_at = :before',
          ExpressionAttributeValues: { ':before': before.updated_at },
        },
      },
    ];
    const renamed = before.name.toLowerCase() !== after.name.toLowerCase();
    if (renamed) {
      items.push({ Put: { TableName: this.store.table, Item: { ...nameKey(after.name), agent_id: after.agent_id }, ConditionExpression: 'attribute_not_exists(pk)' } });
      items.push({ Delete: { TableName: this.store.table, Key: nameKey(before.name) } });
    }
    try {
      await this.store.doc.send(new TransactWriteCommand({ TransactItems: items }));
    } catch (err) {
      const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
      if (renamed && reasons[1]?.Code === 'ConditionalCheckFailed') throw new AgentNameTakenError();
      throw err;
    }
  }

  async delete(agent: AgentRecord): Promise<void> {
    await this.store.doc.send(
      new TransactWriteCommand({
        TransactItems: [
          { Delete: { TableName: this.store.table, Key: agentKey(agent.agent_id), ConditionExpression: 'attribute_exists(pk)' } },
          { Delete: { TableName: this.store.table, Key: nameKey(agent.name) } },
        ],
      }),
    );
  }

  async touch(agentId: string, now: string): Promise<void> {
    await this.store.doc
      .send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: agentKey(agentId),
          UpdateExpression: 'SET last_used_at = :now',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':now': now },
        }),
      )
      .catch((err) => {
        if (!isConditionFailure(err)) throw err;
      });
  }

  // ---------------------------------------------------------------- quota

  /**
   * Takes one request and `tokens` tokens from the agent's current window, atomically: the ADD only
   * happens if the counters before it leave room, so concurrent workers can never overspend. Answers
   * the reservation, or undefined when the window has no room.
   */
  async reserve(agent: AgentRecord, tokens: number, now: Date): Promise<QuotaReservation | undefined> {
    const bounds = windowOf(agent.quota.window, now);
    const t = reservationThresholds(agent.quota, tokens);
    const conditions: string[] = [];
    const values: Record<string, unknown> = { ':one': 1, ':tokens': t.tokens, ':exp': epochSeconds(bounds.resetsAt) + USAGE_RETENTION_SECONDS, ':now': now.toISOString() };
    if (t.maxRequestsBefore !== null) {
      conditions.push('(attribute_not_exists(requests) OR requests <= :maxReq)');
      values[':maxReq'] = t.maxRequestsBefore;
    }
    if (t.maxTokensBefore !== null) {
      conditions.push('(attribute_not_exists(tokens) OR tokens <= :maxTok)');
      values[':maxTok'] = t.maxTokensBefore;
    }
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: usageKey(agent.agent_id, bounds.key),
          UpdateExpression: 'ADD requests :one, tokens :tokens SET expires_at = :exp, last_used_at = :now',
          ConditionExpression: conditions.length ? conditions.join(' AND ') : undefined,
          ExpressionAttributeValues: values,
        }),
      );
      return { agentId: agent.agent_id, windowKey: bounds.key, tokens: t.tokens };
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  /** Settles a reservation: the actual tokens replace the reserved ones; a call that was never made gives its request back. */
  async settle(reservation: QuotaReservation, actualTokens: number, requestMade: boolean): Promise<void> {
    const tokenDelta = actualTokens - reservation.tokens;
    const requestDelta = requestMade ? 0 : -1;
    if (tokenDelta === 0 && requestDelta === 0) return;
    await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: usageKey(reservation.agentId, reservation.windowKey),
        UpdateExpression: 'ADD requests :r, tokens :t',
        ExpressionAttributeValues: { ':r': requestDelta, ':t': tokenDelta },
      }),
    );
  }

  /** Usage of each agent's current window. */
  async usage(agents: AgentRecord[], now: Date): Promise<Map<string, WindowUsage & { last_used_at?: string }>> {
    const out = new Map<string, WindowUsage & { last_used_at?: string }>();
    const keys = agents.map((a) => usageKey(a.agent_id, windowOf(a.quota.window, now).key));
    for (const item of await getItems(this.store, keys, { consistent: true })) {
      out.set(String(item.pk).slice('AGENT#'.length), {
        requests: Number(item.requests ?? 0),
        tokens: Number(item.tokens ?? 0),
        last_used_at: item.last_used_at as string | undefined,
      });
    }
    for (const a of agents) if (!out.has(a.agent_id)) out.set(a.agent_id, { requests: 0, tokens: 0 });
    return out;
  }

  // ---------------------------------------------------------------- concurrency slots

  /**
   * Takes one of `limit` slots of a concurrency group for a task until `leaseUntil`. A slot is free
   * when absent, when its lease has expired (its worker died) or when it already belongs to the task.
   * Leases, not counters: a counter leaks when a worker dies, a lease expires.
   */
  async acquireSlot(group: string, limit: number, taskId: string, leaseUntil: Date, now: Date): Promise<number | undefined> {
    if (limit < 1) return undefined;
    // A random slot first, with no read: while the group has room it is usually free (the write's
    // condition decides). Only when it is taken are the held slots read to pick among the free ones.
    const guess = Math.floor(Math.random() * limit);
    if (await this.takeSlot(group, guess, taskId, leaseUntil, now)) return guess;
    const held = await this.slots(group);
    const busy = new Set(held.filter((s) => s.task_id !== taskId && s.lease_until > now.toISOString()).map((s) => s.slot));
    const free = Array.from({ length: limit }, (_, i) => i).filter((i) => !busy.has(i) && i !== guess);
    for (let i = free.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [free[i], free[j]] = [free[j], free[i]];
    }
    for (const slot of free.slice(0, 5)) {
      if (await this.takeSlot(group, slot, taskId, leaseUntil, now)) return slot;
    }
    return undefined;
  }

  /** One slot for the task, if it is free (absent, its lease expired, or already the task's). */
  private async takeSlot(group: string, slot: number, taskId: string, leaseUntil: Date, now: Date): Promise<boolean> {
    try {
      await this.store.doc.send(
        new PutCommand({
          TableName: this.store.table,
          Item: { ...slotKey(group, slot), entity: 'slot', slot, task_id: taskId, lease_until: leaseUntil.toISOString(), expires_at: epochSeconds(leaseUntil) + 3600 },
          ConditionExpression: 'attribute_not_exists(pk) OR lease_until < :now OR task_id = :task',
          ExpressionAttributeValues: { ':now': now.toISOString(), ':task': taskId },
        }),
      );
      return true;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return false;
    }
  }

  /**
   * Gives a slot back. With `leaseUntil` (the lease it was taken with), only that very hold is released:
   * a later run of the same task (retried after a cancel) may have taken the slot again since.
   */
  async releaseSlot(group: string, slot: number, taskId: string, leaseUntil?: string): Promise<void> {
    await this.store.doc
      .send(
        new DeleteCommand({
          TableName: this.store.table,
          Key: slotKey(group, slot),
          ConditionExpression: leaseUntil ? 'task_id = :task AND lease_until = :lease' : 'task_id = :task',
          ExpressionAttributeValues: { ':task': taskId, ...(leaseUntil ? { ':lease': leaseUntil } : {}) },
        }),
      )
      .catch((err) => {
        if (!isConditionFailure(err)) throw err;
      });
  }

  /** The slots held in a group (expired ones included; callers compare `lease_until`). */
  async slots(group: string): Promise<{ slot: number; task_id: string; lease_until: string }[]> {
    const out = await this.store.doc.send(
      new QueryCommand({
        TableName: this.store.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `CONCURRENCY#${group}` },
        ConsistentRead: true,
      }),
    );
    return (out.Items ?? []).map((i) => ({ slot: Number(i.slot), task_id: String(i.task_id), lease_until: String(i.lease_until) }));
  }

  private item(agent: AgentRecord) {
    return {
      ...agentKey(agent.agent_id),
      entity: 'agent',
      gsi1pk: ALL_AGENTS,
      gsi1sk: agent.agent_id,
      gsi2pk: `AGENTS#PROVIDER#${agent.provider_id}`,
      gsi2sk: agent.agent_id,
      ...agent,
    };
  }
}
