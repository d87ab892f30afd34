/**
 * The analytics stream (`/api/v1/analytics/advanced/stream`, or `?stream=analytics` on AWS): every
 * connection subscribed to the `analytics` or `metrics` channel receives, per its preferences,
 *
 * - `metrics.update`: the real-time view of its metric types (as `GET /advanced/metrics/real-time`
 *   computes it, scoped to what the caller may read) plus the minute in progress; at most once per
 *   `refresh_interval_seconds`, and only when it differs from the last one sent;
 * - `anomaly`: each anomaly of the latest minutes (robust z-score against the trailing window, at the
 *   connection's `anomaly_z_threshold`), once.
 *
 * There is no long-lived process on AWS: `pushAnalyticsStream` runs when metric data changed (the
 * change feed's stream consumer sees rollups written: task events, provider calls, the collector's
 * minute gauges, `/collect`) and for one connection when it subscribes or changes its preferences.
 * What a connection was last sent is stored on its record and replaced by a conditional write, so two
 * pushers racing (two feed batches, a feed batch and a preference change) send each update once.
 */
import { createHash } from 'node:crypto';
import type { Deps } from '../platform/runtime.js';
import type { Principal } from '../platform/principal.js';
import type { Permission } from '../platform/permissions.js';
import type { ChangeConsumer } from '../platform/feed.js';
import { aggregateOf, bucketStart, RAW_POINT_PREFIX } from '../platform/metrics/store.js';
import { logger } from '../platform/logger.js';
import type { ConnectionRecord } from '../realtime/repo.js';
import { claimStreamState, sendTo, subscribedConnections } from '../realtime/publisher.js';
import { metricsStore } from './repo.js';
import { scopedLabels } from './service.js';
import { realTime } from './advanced.js';
import { DEFAULT_METRICS, metricSpec, type MetricSpec } from './advanced-model.js';

/** Channels whose subscribers get the analytics stream (the stream path starts subscribed to `analytics`). */
export const ANALYTICS_STREAM_CHANNELS = ['analytics', 'metrics'] as const;
/** Defaults of the preferences a subscriber has not set. */
export const STREAM_DEFAULTS = { refresh_interval_seconds: 5, anomaly_detection: true, anomaly_z_threshold: 3.5 } as const;
/** Trailing minutes each update reads (the anomaly baseline), minutes forecast, latest minutes checked for anomalies. */
export const STREAM_WINDOW_MINUTES = 60;
const PREDICTION_MINUTES = 5;
const CHECK_LAST = 3;
/** Anomaly keys remembered per connection (older ones have left the checked minutes). */
const SENT_KEYS_KEPT = 50;

export interface StreamPreferences {
  metric_types: MetricSpec[];
  refresh_interval_seconds: number;
  anomaly_detection: boolean;
  anomaly_z_threshold: number;
}

/** A connection's stored preferences, with the defaults; metric types that do not parse are left out. */
export function streamPreferences(stored: Record<string, unknown>): StreamPreferences {
  const types = Array.isArray(stored.metric_types) ? stored.metric_types : [];
  const specs = types.flatMap((t) => {
    const r = metricSpec.safeParse(t);
    return r.success ? [r.data] : [];
  });
  const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isFinite(v) ? v : d);
  return {
    metric_types: specs.length ? specs : DEFAULT_METRICS.map((m) => metricSpec.parse(m)),
    refresh_interval_seconds: num(stored.refresh_interval_seconds, STREAM_DEFAULTS.refresh_interval_seconds),
    anomaly_detection: typeof stored.anomaly_detection === 'boolean' ? stored.anomaly_detection : STREAM_DEFAULTS.anomaly_detection,
    anomaly_z_threshold: num(stored.anomaly_z_threshold, STREAM_DEFAULTS.anomaly_z_threshold),
  };
}

export interface StreamPushReport {
  connections: number;
  updates: number;
  anomalies: number;
  /** Connections that were not due, had nothing new, or lost the race to another pusher. */
  skipped: number;
}

type UpdateData = Awaited<ReturnType<typeof computeUpdate>>;

/** The `metrics.update` data of one scope and preference set. */
async function computeUpdate(deps: Deps, principal: Principal, prefs: StreamPreferences) {
  const view = await realTime(deps, principal, {
    metric_types: prefs.metric_types,
    window_minutes: STREAM_WINDOW_MINUTES,
    prediction_minutes: PREDICTION_MINUTES,
    check_last: CHECK_LAST,
    z_threshold: prefs.anomaly_z_threshold,
  });
  const now = deps.clock.now().getTime();
  const minute = bucketStart(now, 'minute');
  const store = metricsStore(deps);
  let itemsRead = view.items_read;
  const metrics = [];
  for (const m of view.metrics) {
    // The minute in progress: what the feed has recorded of it so far.
    const { labels } = scopedLabels(principal, m.metric_type);
    const read = await store.readRollups({ metric: m.metric_type, resolution: 'minute', start: minute, end: minute, labels });
    itemsRead += read.itemsRead;
    const r = read.groups[0]?.buckets.get(minute);
    const elapsed = Math.max(1, (now - minute) / 1000);
    const value = r?.count ? aggregateOf(r, m.aggregation, elapsed) : null;
    metrics.push({
      metric_type: m.metric_type,
      aggregation: m.aggregation,
      scope: m.scope,
      latest: m.latest,
      current: r?.count && value !== null ? { timestamp: new Date(minute).toISOString(), value, count: r.count } : null,
      points: m.points,
      prediction: m.prediction,
      anomalies: m.anomalies,
    });
  }
  return { generated_at: view.generated_at, window: view.window, z_threshold: view.z_threshold, metrics, items_read: itemsRead };
}

/** What makes two updates the same: the figures and the preferences, not when they were computed or what reading them cost. */
function digestOf(update: UpdateData, prefs: StreamPreferences): string {
  const figures = update.metrics.map((m) => [m.metric_type, m.aggregation, m.latest, m.current, m.points]);
  return createHash('sha256').update(JSON.stringify([figures, prefs])).digest('base64url').slice(0, 22);
}

const principalOf = (conn: ConnectionRecord): Principal => ({
  userId: conn.user_id,
  username: conn.username,
  roles: [],
  permissions: conn.permissions as Permission[],
  sessionId: conn.session_id ?? '',
});

/**
 * Pushes the analytics stream to its subscribers (or to one connection): an update to each that is
 * due and whose figures changed, and each new anomaly. `force` sends the current update now (a new
 * subscription or new preferences), whatever the interval, unless the last one sent said the same
 * with the same preferences. Never throws.
 */
export async function pushAnalyticsStream(deps: Deps, options: { connectionId?: string; force?: boolean } = {}): Promise<StreamPushReport> {
  const report: StreamPushReport = { connections: 0, updates: 0, anomalies: 0, skipped: 0 };
  try {
    const now = deps.clock.now().getTime();
    const subscribed = await subscribedConnections(deps, ANALYTICS_STREAM_CHANNELS, { connectionId: options.connectionId });
    // Subscribers who read the same scope with the same preferences share one computation.
    const computed = new Map<string, Promise<UpdateData>>();
    await Promise.all(
      subscribed.map(async ({ conn, channel }) => {
        report.connections++;
        const id = conn.connection_id;
        if (!conn.permissions.includes('analytics:read')) {
          report.skipped++;
          return;
        }
        const prefs = streamPreferences(conn.preferences);
        const state = conn[`stream_${channel}`] ?? { seq: 0 };
        const due = options.force || state.sent_at === undefined || now - state.sent_at >= prefs.refresh_interval_seconds * 1000;
        const principal = principalOf(conn);
        const scope = conn.permissions.includes('tasks:read_all') ? '*' : `user:${conn.user_id}`;
        const key = JSON.stringify([scope, prefs.metric_types, prefs.anomaly_z_threshold]);
        if (!computed.has(key)) computed.set(key, computeUpdate(deps, principal, prefs));
        const update = await computed.get(key)!;
        const digest = digestOf(update, prefs);
        const sendUpdate = due && digest !== state.digest;
        const seen = new Set(state.sent_keys ?? []);
        const fresh = prefs.anomaly_detection
          ? update.metrics.flatMap((m) => m.anomalies.map((a) => ({ key: `${m.metric_type}:${m.aggregation}@${a.timestamp}`, metric: m, anomaly: a }))).filter((a) => !seen.has(a.key))
          : [];
        if (!sendUpdate && !fresh.length) {
          report.skipped++;
          return;
        }
        const sentKeys = [...(state.sent_keys ?? []), ...fresh.map((a) => a.key)].slice(-SENT_KEYS_KEPT);
        const next = sendUpdate ? { sent_at: now, digest, sent_keys: sentKeys } : { sent_at: state.sent_at, digest: state.digest, sent_keys: sentKeys };
        // Claimed before sending: a pusher that lost the race sends nothing.
        if (!(await claimStreamState(deps, id, channel, state.seq, next))) {
          report.skipped++;
          return;
        }
        if (sendUpdate) {
          const data = {
            ...update,
            metrics: update.metrics.map(({ anomalies: _a, ...m }) => m),
            // When this push began: the time the connection's interval is measured from.
            pushed_at: new Date(now).toISOString(),
            refresh_interval_seconds: prefs.refresh_interval_seconds,
            anomaly_detection: prefs.anomaly_detection,
          };
          if (await sendTo(deps, id, channel, 'metrics.update', data)) report.updates++;
        }
        for (const { metric, anomaly } of fresh) {
          const data = { metric_type: metric.metric_type, aggregation: metric.aggregation, scope: metric.scope, ...anomaly, z_threshold: prefs.anomaly_z_threshold, method: 'robust_z_score' };
          if (await sendTo(deps, id, channel, 'anomaly', data)) report.anomalies++;
        }
      }),
    );
  } catch (err) {
    logger.error('analytics stream push failed', { error: err as Error });
  }
  return report;
}

/**
 * The change feed's stream consumer: when a batch carries newly recorded raw points (of any kind:
 * platform events, `/collect`, the collector's samples), the analytics stream is pushed. It never
 * fails the batch: a missed push is made up by the next one.
 */
export const analyticsStreamConsumer: ChangeConsumer = {
  name: 'analytics-stream',
  keyPrefixes: [RAW_POINT_PREFIX],
  async handleBatch(changes, deps) {
    if (!changes.some((c) => c.kind === 'INSERT')) return;
    await pushAnalyticsStream(deps);
  },
};
