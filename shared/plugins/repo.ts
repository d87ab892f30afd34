import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Store } from '../platform/store/client.js';
import { queryPage } from '../platform/store/query.js';
import { getItems } from '../platform/store/batch-get.js';
import { isConditionFailure } from '../platform/store/conflicts.js';
import { bucketOf, bucketsOf, type HistogramBucket } from '../platform/histogram.js';
import { LATENCY_BOUNDS_MS, type PluginName, type PluginStatus } from './catalog.js';

/** A plugin's stored state (its definition is in the catalog). */
export interface PluginRecord {
  name: PluginName;
  status: PluginStatus;
  /** Bumped by every write: transitions and configuration changes are conditional on it. */
  rev: number;
  /** The configuration without its secret fields. */
  config: Record<string, unknown> | null;
  /** Secret field → secret store reference. */
  secret_refs: Record<string, string>;
  consecutive_health_failures: number;
  last_health_check_at: string | null;
  last_health_error: string | null;
  discovered_at: string;
  updated_at: string;
  activated_at: string | null;
}

export interface EventRecord {
  event_id: string;
  event_type: string;
  source: string;
  target_plugin: string | null;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  published_at: string;
}

export type DeliveryStatus = 'pending' | 'retrying' | 'succeeded' | 'failed';

export interface DeliveryAttempt {
  attempt: number;
  at: string;
  status_code: number | null;
  duration_ms: number;
  ok: boolean;
  error: string | null;
  response_excerpt: string | null;
  /** `automatic` or `manual` (redelivery). */
  trigger: 'automatic' | 'manual';
}

export interface DeliveryRecord {
  event_id: string;
  event_type: string;
  plugin_name: string;
  status: DeliveryStatus;
  attempts: number;
  attempt_log: DeliveryAttempt[];
  last_status_code: number | null;
  last_error: string | null;
  last_duration_ms: number | null;
  next_retry_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface PluginStats {
  deliveries: number;
  successes: number;
  failures: number;
  buckets: HistogramBucket[];
  last_error: string | null;
  last_error_at: string | null;
  last_delivery_at: string | null;
}

/** Events and their deliveries are kept this long (TTL), then DynamoDB removes them. */
export const HISTORY_RETENTION_SECONDS = 30 * 86_400;
const expiresAt = (iso: string) => Math.floor(new Date(iso).getTime() / 1000) + HISTORY_RETENTION_SECONDS;

/** Attempts kept per delivery record (the count goes on). */
const MAX_ATTEMPT_LOG = 25;

const pluginKey = (name: string) => ({ pk: `PLUGIN#${name}`, sk: 'PLUGIN' });
const statsKey = (name: string) => ({ pk: `PLUGIN#${name}`, sk: 'STATS' });
const eventKey = (id: string) => ({ pk: `PEVENT#${id}`, sk: 'EVENT' });
const deliveryKey = (eventId: string, plugin: string) => ({ pk: `PEVENT#${eventId}`, sk: `DELIVERY#${plugin}` });
const ALL_DELIVERIES = 'PDELIVERIES';
const RETRIES = 'PRETRY';

function strip<T>(item: Record<string, unknown> | undefined, entity: string): T | undefined {
  if (!item || item.entity !== entity) return undefined;
  const { pk: _pk, sk: _sk, gsi1pk: _a, gsi1sk: _b, gsi2pk: _c, gsi2sk: _d, gsi3pk: _e, gsi3sk: _f, entity: _g, expires_at: _h, ...rest } = item;
  return rest as T;
}

export class PluginRepository {
  constructor(private readonly store: Store) {}

  // ---------------------------------------------------------------- plugins

  async get(name: string): Promise<PluginRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: pluginKey(name), ConsistentRead: true }));
    return strip<PluginRecord>(out.Item, 'plugin');
  }

  /** The stored plugins among `names`, in that order, in one read. */
  async getMany(names: readonly string[]): Promise<PluginRecord[]> {
    const byName = new Map((await getItems(this.store, names.map(pluginKey), { consistent: true })).map((item) => [String(item.pk), item]));
    return names.map((n) => strip<PluginRecord>(byName.get(pluginKey(n).pk), 'plugin')).filter((p): p is PluginRecord => p !== undefined);
  }

  /** Stores a discovered plugin unless one is there that is not unloaded; answers whether it wrote. */
  async discover(record: PluginRecord): Promise<boolean> {
    try {
      await this.store.doc.send(
        new PutCommand({
          TableName: this.store.table,
          Item: { ...pluginKey(record.name), entity: 'plugin', ...record },
          ConditionExpression: 'attribute_not_exists(pk) OR #s = :unloaded',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':unloaded': 'unloaded' },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** Replaces the plugin as read: only while its `rev` is still `before.rev`; answers false when it lost. */
  async replace(before: PluginRecord, after: PluginRecord): Promise<boolean> {
    try {
      await this.store.doc.send(
        new PutCommand({
          TableName: this.store.table,
          Item: { ...pluginKey(after.name), entity: 'plugin', ...after, rev: before.rev + 1 },
          ConditionExpression: 'rev = :rev',
          ExpressionAttributeValues: { ':rev': before.rev },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  // ---------------------------------------------------------------- events

  /** Stores the event once; answers false when it was already there (the bus delivers at least once). */
  async putEvent(event: EventRecord): Promise<boolean> {
    try {
      await this.store.doc.send(
        new PutCommand({
          TableName: this.store.table,
          Item: { ...eventKey(event.event_id), entity: 'plugin_event', ...event, expires_at: expiresAt(event.published_at) },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async getEvent(eventId: string): Promise<EventRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: eventKey(eventId), ConsistentRead: true }));
    return strip<EventRecord>(out.Item, 'plugin_event');
  }

  // ---------------------------------------------------------------- deliveries

  private deliveryItem(d: DeliveryRecord) {
    const order = `${d.created_at}#${d.event_id}#${d.plugin_name}`;
    return {
      ...deliveryKey(d.event_id, d.plugin_name),
      entity: 'plugin_delivery',
      gsi1pk: ALL_DELIVERIES,
      gsi1sk: order,
      gsi2pk: `${ALL_DELIVERIES}#${d.plugin_name}`,
      gsi2sk: order,
      expires_at: expiresAt(d.created_at),
      ...(d.status === 'retrying' && d.next_retry_at ? { gsi3pk: RETRIES, gsi3sk: `${d.next_retry_at}#${d.event_id}#${d.plugin_name}` } : {}),
      ...d,
    };
  }

  /** Creates the delivery record once per event and plugin; answers false when another run created it. */
  async createDelivery(d: DeliveryRecord): Promise<boolean> {
    try {
      await this.store.doc.send(new PutCommand({ TableName: this.store.table, Item: this.deliveryItem(d), ConditionExpression: 'attribute_not_exists(pk)' }));
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async getDelivery(eventId: string, plugin: string): Promise<DeliveryRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: deliveryKey(eventId, plugin), ConsistentRead: true }));
    return strip<DeliveryRecord>(out.Item, 'plugin_delivery');
  }

  async deliveriesOf(eventId: string): Promise<DeliveryRecord[]> {
    const out = await this.store.doc.send(
      new QueryCommand({
        TableName: this.store.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :d)',
        ExpressionAttributeValues: { ':pk': `PEVENT#${eventId}`, ':d': 'DELIVERY#' },
        ConsistentRead: true,
      }),
    );
    return (out.Items ?? []).map((i) => strip<DeliveryRecord>(i, 'plugin_delivery')!).filter(Boolean);
  }

  /**
   * Writes the delivery as it is after an attempt (or a claim), only if its attempt count and status
   * are still those read (`before`): two runs never record the same attempt. Answers false when it lost.
   */
  async updateDelivery(before: DeliveryRecord, after: DeliveryRecord): Promise<boolean> {
    const log = after.attempt_log.slice(-MAX_ATTEMPT_LOG);
    try {
      await this.store.doc.send(
        new PutCommand({
          TableName: this.store.table,
          Item: this.deliveryItem({ ...after, attempt_log: log }),
          ConditionExpression: 'attempts = :n AND #s = :s AND updated_at = :u',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':n': before.attempts, ':s': before.status, ':u': before.updated_at },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** Deliveries waiting for a retry that is due by `now`, oldest due first. */
  async dueRetries(now: string, limit: number): Promise<DeliveryRecord[]> {
    const out = await this.store.doc.send(
      new QueryCommand({
        TableName: this.store.table,
        IndexName: 'gsi3',
        KeyConditionExpression: 'gsi3pk = :p AND gsi3sk <= :now',
        ExpressionAttributeValues: { ':p': RETRIES, ':now': `${now}#~` },
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map((i) => strip<DeliveryRecord>(i, 'plugin_delivery')!).filter(Boolean);
  }

  /** One page of delivery records, newest first, optionally of one plugin, filtered by type, status and time. */
  async listDeliveries(
    filter: { plugin_name?: string; event_type?: string; status?: DeliveryStatus; from?: string; to?: string },
    limit: number,
    startKey?: Record<string, unknown>,
  ) {
    const index = filter.plugin_name ? 'gsi2' : 'gsi1';
    const conditions: string[] = [];
    const values: Record<string, unknown> = { ':p': filter.plugin_name ? `${ALL_DELIVERIES}#${filter.plugin_name}` : ALL_DELIVERIES };
    const names: Record<string, string> = {};
    let range = '';
    if (filter.from && filter.to) {
      range = ` AND ${index}sk BETWEEN :from AND :to`;
      values[':from'] = filter.from;
      values[':to'] = `${filter.to}#~`;
    } else if (filter.from) {
      range = ` AND ${index}sk >= :from`;
      values[':from'] = filter.from;
    } else if (filter.to) {
      range = ` AND ${index}sk <= :to`;
      values[':to'] = `${filter.to}#~`;
    }
    if (filter.event_type) {
      conditions.push('event_type = :t');
      values[':t'] = filter.event_type;
    }
    if (filter.status) {
      conditions.push('#s = :s');
      names['#s'] = 'status';
      values[':s'] = filter.status;
    }
    const page = await queryPage<Record<string, unknown>>(this.store, {
      index,
      keyCondition: `${index}pk = :p${range}`,
      values,
      names: Object.keys(names).length ? names : undefined,
      filter: conditions.length ? conditions.join(' AND ') : undefined,
      limit,
      startKey,
    });
    return { items: page.items.map((i) => strip<DeliveryRecord>(i, 'plugin_delivery')!), lastKey: page.lastKey };
  }

  // ---------------------------------------------------------------- stats

  /** Counts one attempt in the plugin's counters (atomic ADDs: concurrent deliveries lose nothing). */
  async countAttempt(name: string, ok: boolean, durationMs: number, error: string | null, at: string): Promise<void> {
    const bucket = bucketOf(LATENCY_BOUNDS_MS, durationMs);
    const sets = ['last_delivery_at = :at'];
    const values: Record<string, unknown> = { ':one': 1, ':ok': ok ? 1 : 0, ':fail': ok ? 0 : 1, ':at': at };
    if (!ok) {
      sets.push('last_error = :err', 'last_error_at = :at');
      values[':err'] = error ?? 'failed';
    }
    await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: statsKey(name),
        UpdateExpression: `SET ${sets.join(', ')}, entity = :e ADD deliveries :one, successes :ok, failures :fail, #b :one`,
        ExpressionAttributeNames: { '#b': `b${bucket}` },
        ExpressionAttributeValues: { ...values, ':e': 'plugin_stats' },
      }),
    );
  }

  async stats(name: string): Promise<PluginStats> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: statsKey(name), ConsistentRead: true }));
    const item = out.Item ?? {};
    const counts = [...LATENCY_BOUNDS_MS, null].map((_, i) => Number(item[`b${i}`] ?? 0));
    return {
      deliveries: Number(item.deliveries ?? 0),
      successes: Number(item.successes ?? 0),
      failures: Number(item.failures ?? 0),
      buckets: bucketsOf(LATENCY_BOUNDS_MS, counts),
      last_error: (item.last_error as string | undefined) ?? null,
      last_error_at: (item.last_error_at as string | undefined) ?? null,
      last_delivery_at: (item.last_delivery_at as string | undefined) ?? null,
    };
  }
}
