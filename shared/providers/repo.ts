import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Store } from '../platform/store/client.js';
import { getItems } from '../platform/store/batch-get.js';
import { epochSeconds } from '../platform/store/client.js';
import { queryPage, type StorePage } from '../platform/store/query.js';
import { isConditionFailure, updateVersioned } from '../platform/store/conflicts.js';
import { addToWindow } from '../platform/store/rate-limits.js';
import { buildUpdate } from '../platform/store/update.js';
import type { ProviderRecord } from './types.js';
import { INITIAL_CIRCUIT, type CircuitSnapshot } from './circuit-breaker.js';
import { dayOf, errorCounterOf, hourOf, latencyBucketOf } from './usage.js';

/**
 * Providers, their circuit breakers and their usage counters.
 *
 * | item | pk | sk | indexes |
 * |---|---|---|---|
 * | provider | `PROVIDER#<id>` | `PROVIDER` | gsi1: `PROVIDERS` / `<priority 0000>#<id>` |
 * | circuit breaker | `PROVIDER#<id>` | `CIRCUIT` | |
 * | usage per day | `PROVIDER#<id>` | `USAGE#D#<yyyy-mm-dd>` | gsi2: `PROVIDER_USAGE` / `<yyyy-mm-dd>#<id>` |
 * | usage per hour (8 days) | `PROVIDER#<id>` | `USAGE#H#<yyyy-mm-ddThh>` | TTL `expires_at` |
 * | rate-limit window (requests, tokens) | `PROVIDER#<id>` | `RATE#<epoch minute start>` | TTL `expires_at` |
 */
const providerKey = (id: string) => ({ pk: `PROVIDER#${id}`, sk: 'PROVIDER' });
const circuitKey = (id: string) => ({ pk: `PROVIDER#${id}`, sk: 'CIRCUIT' });
const dayKey = (id: string, day: string) => ({ pk: `PROVIDER#${id}`, sk: `USAGE#D#${day}` });
const hourKey = (id: string, hour: string) => ({ pk: `PROVIDER#${id}`, sk: `USAGE#H#${hour}` });
const LIST_PARTITION = 'PROVIDERS';
const USAGE_PARTITION = 'PROVIDER_USAGE';
const listSortKey = (priority: number, id: string) => `${String(priority).padStart(4, '0')}#${id}`;
const HOURLY_RETENTION_SECONDS = 8 * 24 * 3600;
const RATE_WINDOW_SECONDS = 60;
const rateKey = (id: string, windowStart: number) => ({ pk: `PROVIDER#${id}`, sk: `RATE#${windowStart}` });

export class ProviderExistsError extends Error {
  constructor(readonly providerId: string) {
    super(`provider ${providerId} already exists`);
  }
}

export interface LastCheck {
  ok: boolean;
  latency_ms: number;
  checked_at: string;
  error_code: string | null;
  error_message: string | null;
  /** Absent on checks stored before they were kept. */
  error_status?: number | null;
  error_retryable?: boolean | null;
}

export interface CircuitItem extends CircuitSnapshot {
  last_check: LastCheck | null;
}

export interface ProviderCall {
  providerId: string;
  ok: boolean;
  latencyMs: number;
  tokensIn: number;
  tokensOut: number;
  costUsd: number;
  errorCode?: string;
  retryable?: boolean;
}

export interface UsageItem {
  provider_id: string;
  period: string;
  item: Record<string, unknown>;
}

function strip(item: Record<string, unknown> | undefined): ProviderRecord | undefined {
  if (!item) return undefined;
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g1s, entity: _e, ...rest } = item;
  return rest as unknown as ProviderRecord;
}

function circuitOf(item: Record<string, unknown> | undefined): CircuitItem {
  if (!item) return { ...INITIAL_CIRCUIT, last_check: null };
  return {
    state: (item.state as CircuitSnapshot['state']) ?? 'closed',
    consecutive_failures: Number(item.consecutive_failures ?? 0),
    window_started_at: (item.window_started_at as string | null) ?? null,
    window_calls: Number(item.window_calls ?? 0),
    window_failures: Number(item.window_failures ?? 0),
    opened_at: (item.opened_at as string | null) ?? null,
    reason: (item.reason as string | null) ?? null,
    changed_at: (item.changed_at as string | null) ?? null,
    last_error_code: (item.last_error_code as string | null) ?? null,
    version: Number(item.version ?? 0),
    last_check: (item.last_check as LastCheck | undefined) ?? null,
  };
}

export class ProviderRepository {
  constructor(private readonly store: Store) {}

  async get(id: string): Promise<ProviderRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: providerKey(id) }));
    return strip(out.Item);
  }

  /** Creates the provider; a second provider with the same id is refused. */
  async create(record: ProviderRecord): Promise<void> {
    try {
      await this.store.doc.send(
        new PutCommand({
          TableName: this.store.table,
          Item: {
            ...providerKey(record.provider_id),
            entity: 'provider',
            gsi1pk: LIST_PARTITION,
            gsi1sk: listSortKey(record.priority, record.provider_id),
            ...record,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw new ProviderExistsError(record.provider_id);
      throw err;
    }
  }

  /**
   * Deletes the provider and its circuit breaker; answers the deleted record, or undefined when there
   * was none. Usage counters stay: they are the history of calls that were made and paid for.
   */
  async delete(id: string): Promise<ProviderRecord | undefined> {
    const out = await this.store.doc.send(
      new DeleteCommand({ TableName: this.store.table, Key: providerKey(id), ReturnValues: 'ALL_OLD' }),
    );
    if (!out.Attributes) return undefined;
    await this.store.doc.send(new DeleteCommand({ TableName: this.store.table, Key: circuitKey(id) }));
    return strip(out.Attributes);
  }

  /** Providers by routing priority (lower first), then id. */
  async list(limit: number, startKey?: Record<string, unknown>, type?: string): Promise<StorePage<ProviderRecord>> {
    const page = await queryPage<Record<string, unknown>>(this.store, {
      index: 'gsi1',
      keyCondition: 'gsi1pk = :p',
      values: { ':p': LIST_PARTITION, ...(type ? { ':t': type } : {}) },
      names: type ? { '#type': 'type' } : undefined,
      filter: type ? '#type = :t' : undefined,
      limit,
      startKey,
      ascending: true,
    });
    return { ...page, items: page.items.map((i) => strip(i)!) };
  }

  /** Every provider (a Query of the provider partition, page by page). */
  async all(): Promise<ProviderRecord[]> {
    const out: ProviderRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.list(100, startKey);
      out.push(...page.items);
      startKey = page.lastKey;
    } while (startKey);
    return out;
  }

  async circuit(id: string): Promise<CircuitItem> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: circuitKey(id), ConsistentRead: true }));
    return circuitOf(out.Item);
  }

  /** The provider with its breaker, in one read (the worker's placement needs both). */
  async withCircuit(id: string): Promise<{ provider: ProviderRecord | undefined; circuit: CircuitItem }> {
    const items = await getItems(this.store, [providerKey(id), circuitKey(id)], { consistent: true });
    return { provider: strip(items.find((i) => i.sk === 'PROVIDER')), circuit: circuitOf(items.find((i) => i.sk === 'CIRCUIT')) };
  }

  async circuits(ids: string[]): Promise<Map<string, CircuitItem>> {
    const found = new Map<string, Record<string, unknown>>();
    for (const item of await getItems(this.store, ids.map(circuitKey))) found.set(String(item.pk).slice('PROVIDER#'.length), item);
    return new Map([...new Set(ids)].map((id) => [id, circuitOf(found.get(id))]));
  }

  /**
   * Writes the breaker's next snapshot if nobody else wrote since `current` was read (optimistic
   * concurrency on `version`). The window's counters are added (ADD) rather than set while the window
   * is the same, so that quiet successes added meanwhile (see `addQuietSuccess`) are kept.
   */
  async saveCircuit(id: string, next: CircuitSnapshot, current: CircuitSnapshot): Promise<void> {
    const sameWindow = next.window_started_at === current.window_started_at;
    await updateVersioned(
      this.store,
      circuitKey(id),
      { expected: current.version, orMissing: current.version === 0 },
      {
        set: {
          state: next.state,
          consecutive_failures: next.consecutive_failures,
          opened_at: next.opened_at,
          reason: next.reason,
          changed_at: next.changed_at,
          last_error_code: next.last_error_code,
          version: next.version,
          ...(sameWindow
            ? {}
            : { window_started_at: next.window_started_at, window_calls: next.window_calls, window_failures: next.window_failures }),
        },
        add: sameWindow
          ? { window_calls: next.window_calls - current.window_calls, window_failures: next.window_failures - current.window_failures }
          : undefined,
      },
      'the circuit breaker',
    );
  }

  /**
   * Counts a success that changes nothing else (see `isQuietSuccess`) if the breaker is closed, without
   * pending failures, in a window that started after `windowStartedAfter` (`currentWindowAfter`): one
   * conditional write, no read. Answers false when it was not so (or there is no breaker yet), and nothing was written.
   */
  async addQuietSuccess(id: string, windowStartedAfter: string): Promise<boolean> {
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: circuitKey(id),
          UpdateExpression: 'ADD window_calls :one',
          ConditionExpression: '#state = :closed AND consecutive_failures = :zero AND window_started_at > :after',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':one': 1, ':closed': 'closed', ':zero': 0, ':after': windowStartedAfter },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async saveLastCheck(id: string, check: LastCheck): Promise<void> {
    await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: circuitKey(id),
        UpdateExpression: 'SET last_check = :c',
        ExpressionAttributeValues: { ':c': check },
      }),
    );
  }

  /** Adds one call to the provider's day and hour counters (atomic ADD, safe under concurrency). */
  async addUsage(call: ProviderCall, at: Date): Promise<void> {
    const add: Record<string, number> = { requests: 1 };
    if (call.ok) {
      add.successes = 1;
      add.latency_ms_sum = Math.max(0, Math.round(call.latencyMs));
      add[latencyBucketOf(call.latencyMs)] = 1;
    } else {
      add.failures = 1;
      if (call.retryable) add.retryable_failures = 1;
      add[errorCounterOf(call.errorCode ?? 'error')] = 1;
    }
    if (call.tokensIn) add.tokens_in = Math.max(0, Math.round(call.tokensIn));
    if (call.tokensOut) add.tokens_out = Math.max(0, Math.round(call.tokensOut));
    if (call.costUsd) add.cost_usd = call.costUsd;
    const day = dayOf(at);
    const hour = hourOf(at);
    // Two independent atomic ADDs: a transaction would conflict with every concurrent call on the same counters.
    await Promise.all([
      this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: dayKey(call.providerId, day),
          ...buildUpdate({ set: { provider_id: call.providerId, period: day, gsi2pk: USAGE_PARTITION, gsi2sk: `${day}#${call.providerId}` }, add }),
        }),
      ),
      this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: hourKey(call.providerId, hour),
          ...buildUpdate({ set: { provider_id: call.providerId, period: hour, expires_at: epochSeconds(at) + HOURLY_RETENTION_SECONDS }, add }),
        }),
      ),
    ]);
  }

  /**
   * Counts a request in the provider's current minute and answers the requests and tokens counted in it
   * so far, and when the minute ends (the configured rate limits are enforced against these).
   */
  async countRequestInWindow(id: string, now: Date): Promise<{ requests: number; tokens: number; resetAt: Date }> {
    const out = await addToWindow(this.store, (start) => rateKey(id, start), RATE_WINDOW_SECONDS, now, { requests: 1 });
    return { requests: Number(out.counts.requests ?? 1), tokens: Number(out.counts.tokens ?? 0), resetAt: out.resetAt };
  }

  /** Adds the tokens a call used to the provider's current minute. */
  async addTokensInWindow(id: string, tokens: number, now: Date): Promise<void> {
    if (tokens <= 0) return;
    await addToWindow(this.store, (start) => rateKey(id, start), RATE_WINDOW_SECONDS, now, { tokens: Math.round(tokens) });
  }

  /** Day counters of one provider between two days (inclusive). */
  async usageByDay(id: string, fromDay: string, toDay: string): Promise<UsageItem[]> {
    return this.usageRange(id, `USAGE#D#${fromDay}`, `USAGE#D#${toDay}`);
  }

  /** Hour counters of one provider between two hours (inclusive). */
  async usageByHour(id: string, fromHour: string, toHour: string): Promise<UsageItem[]> {
    return this.usageRange(id, `USAGE#H#${fromHour}`, `USAGE#H#${toHour}`);
  }

  /** Day counters of every provider between two days (one Query of the usage index). */
  async usageOfAllByDay(fromDay: string, toDay: string): Promise<UsageItem[]> {
    const out: UsageItem[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await queryPage<Record<string, unknown>>(this.store, {
        index: 'gsi2',
        keyCondition: 'gsi2pk = :p AND gsi2sk BETWEEN :from AND :to',
        values: { ':p': USAGE_PARTITION, ':from': `${fromDay}#`, ':to': `${toDay}#\uffff` },
        limit: 100,
        startKey,
        ascending: true,
      });
      for (const item of page.items) out.push({ provider_id: String(item.provider_id), period: String(item.period), item });
      startKey = page.lastKey;
    } while (startKey);
    return out;
  }

  private async usageRange(id: string, from: string, to: string): Promise<UsageItem[]> {
    const out: UsageItem[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await queryPage<Record<string, unknown>>(this.store, {
        keyCondition: 'pk = :pk AND sk BETWEEN :from AND :to',
        values: { ':pk': `PROVIDER#${id}`, ':from': from, ':to': to },
        limit: 100,
        startKey,
        ascending: true,
      });
      for (const item of page.items) out.push({ provider_id: id, period: String(item.period), item });
      startKey = page.lastKey;
    } while (startKey);
    return out;
  }
}
