/**
 * Analytics use cases over the metrics store (shared/platform/metrics/store.ts), authorization included.
 *
 * Who sees what: a caller with `tasks:read_all` sees every point. Without it (a `user`), a read sees
 * only points labelled `user=<caller>` (their tasks, runs, logins, their collected points) plus the
 * platform-wide `system.*` gauges; a filter naming another user is refused (403).
 */
import type { Deps } from '../platform/runtime.js';
import type { Principal } from '../platform/principal.js';
import { forbidden, validationError } from '../platform/errors.js';
import {
  aggregateOf,
  bucketStart,
  emptyRollup,
  exactQuantile,
  mergeRollup,
  addValue,
  RESOLUTION_MS,
  ROLLUP_RETENTION_DAYS,
  type Labels,
  type Resolution,
  type Rollup,
  type RollupGroup,
  type RollupRead,
  type StoredPoint,
} from '../platform/metrics/store.js';
import { taskStatusCounts } from '../tasks/gauges.js';
import { runningExecutionCount } from '../workflows/gauges.js';
import { metricsStore } from './repo.js';
import { rangeMs, SYSTEM_NAMESPACE, type CollectBody, type MetricsQuery, type PointView, type QueryBody, type QueryView, type SummaryView } from './model.js';

const DAY_MS = 86_400_000;
/** Raw points one value_range query may read. */
export const MAX_RAW_READS = 20_000;
/** Collected points may be this far ahead of the server's clock. */
const MAX_FUTURE_MS = 5 * 60_000;

const readsAll = (p: Pick<Principal, 'permissions'>) => p.permissions.includes('tasks:read_all');
const isSystem = (metric: string) => metric.split('.')[0] === SYSTEM_NAMESPACE;

/** The label filter a read runs with: the caller's own, forced, unless they read everything or the metric is a system gauge. */
export function scopedLabels(principal: Principal, metric: string, labels: Labels = {}): { labels: Labels; scope: 'all' | 'own' } {
  if (readsAll(principal) || isSystem(metric)) return { labels, scope: readsAll(principal) ? 'all' : 'own' };
  if (labels.user && labels.user !== principal.userId) throw forbidden('Without tasks:read_all you can read only your own metrics');
  return { labels: { ...labels, user: principal.userId }, scope: 'own' };
}

// ---------------------------------------------------------------- collect

export async function collect(deps: Deps, principal: Principal, body: CollectBody): Promise<{ recorded: boolean; point: Omit<PointView, 'point_id' | 'recorded_at'> }> {
  const now = deps.clock.now();
  const at = body.timestamp ? new Date(body.timestamp) : now;
  if (at.getTime() > now.getTime() + MAX_FUTURE_MS) throw validationError([{ path: 'timestamp', message: 'at most 5 minutes ahead of the server clock' }]);
  if (at.getTime() < now.getTime() - deps.config.metricsRetentionDays * DAY_MS) {
    throw validationError([{ path: 'timestamp', message: `older than the raw retention (${deps.config.metricsRetentionDays} days)` }]);
  }
  const labels = { ...body.labels, user: principal.userId };
  const recorded = await metricsStore(deps).record(
    { metric: body.metric_type, value: body.value, at, labels, sourceId: `collect:${principal.userId}:${body.event_id}` },
    now,
  );
  return { recorded, point: { metric_type: body.metric_type, value: body.value, timestamp: at.toISOString(), labels } };
}

// ---------------------------------------------------------------- query

/** The resolution of a range: the finest with at most 800 buckets that its retention still covers. */
export function chooseResolution(start: number, end: number, now: number): Resolution {
  const span = end - start;
  const order: Resolution[] = ['minute', 'hour', 'day'];
  for (const res of order) {
    const keep = ROLLUP_RETENTION_DAYS[res];
    if (keep !== null && start < now - keep * DAY_MS) continue;
    if (span / RESOLUTION_MS[res] <= 800) return res;
  }
  return 'day';
}

function rangeOf(deps: Deps, body: Pick<QueryBody, 'time_range' | 'start' | 'end'>): { start: number; end: number } {
  if (body.start && body.end) return { start: Date.parse(body.start), end: Date.parse(body.end) };
  const end = deps.clock.now().getTime();
  return { start: end - rangeMs(body.time_range ?? '24h'), end };
}

function seriesOut(
  group: { labels: Record<string, string | null>; buckets: Map<number, Rollup> },
  aggregation: QueryBody['aggregation'],
  span: { start: number; end: number; step?: number },
) {
  const total = emptyRollup();
  for (const r of group.buckets.values()) mergeRollup(total, r);
  const out: QueryView['series'][number] = {
    labels: group.labels,
    value: aggregateOf(total, aggregation, (span.end - span.start) / 1000),
    count: total.count,
  };
  if (span.step) {
    out.points = [];
    for (let t = span.start; t < span.end; t += span.step) {
      const r = group.buckets.get(t) ?? emptyRollup();
      out.points.push({ timestamp: new Date(t).toISOString(), value: aggregateOf(r, aggregation, span.step / 1000) ?? (r.count === 0 && ['count', 'sum', 'rate'].includes(aggregation) ? 0 : null), count: r.count });
    }
  }
  return out;
}

export async function runQuery(deps: Deps, principal: Principal, body: QueryBody): Promise<QueryView> {
  const { labels, scope } = scopedLabels(principal, body.metric_type, body.filters.labels);
  const range = rangeOf(deps, body);
  const now = deps.clock.now().getTime();
  const groupBy = body.group_by.labels ?? [];
  const store = metricsStore(deps);

  if (body.filters.value_range) {
    if (range.start < now - deps.config.metricsRetentionDays * DAY_MS) {
      throw validationError([{ path: 'filters.value_range', message: `value_range reads raw points, kept ${deps.config.metricsRetentionDays} days; start the range later` }]);
    }
    return rawQuery(deps, principal, body, labels, scope, range);
  }

  const requested = body.group_by.bucket;
  const resolution = requested ?? chooseResolution(range.start, range.end, now);
  const keep = ROLLUP_RETENTION_DAYS[resolution];
  if (requested && keep !== null && range.start < now - keep * DAY_MS) {
    throw validationError([{ path: 'group_by.bucket', message: `${requested} rollups are kept ${keep} days; choose a coarser bucket or a later start` }]);
  }
  const step = RESOLUTION_MS[resolution];
  const start = bucketStart(range.start, resolution);
  const lastBucket = bucketStart(range.end, resolution);
  const read = requested
    ? await store.readRollups({ metric: body.metric_type, resolution, start, end: lastBucket, labels, groupBy })
    : await readSpan(store, { metric: body.metric_type, resolution, start, end: lastBucket, labels, groupBy });
  const series = read.groups
    .map((g) => seriesOut(g, body.aggregation, { start, end: lastBucket + step, step: requested ? step : undefined }))
    .sort((a, b) => (b.value ?? -Infinity) - (a.value ?? -Infinity))
    .slice(0, body.limit);
  return {
    metric_type: body.metric_type,
    aggregation: body.aggregation,
    resolution,
    start: new Date(start).toISOString(),
    end: new Date(lastBucket + step).toISOString(),
    scope,
    items_read: read.itemsRead,
    series,
  };
}

const COARSER: Partial<Record<Resolution, Resolution>> = { minute: 'hour', hour: 'day' };

/**
 * One figure over a whole range (no buckets asked for): the whole coarser buckets inside it are read at
 * the coarser resolution and only the edges at `q.resolution`, which gives the same rollups (a coarser
 * rollup is the merge of its finer ones) from far fewer items: a 30-day range at hour resolution reads
 * 29 day items and at most 46 hour items instead of 720.
 */
async function readSpan(store: ReturnType<typeof metricsStore>, q: RollupRead): Promise<{ groups: RollupGroup[]; itemsRead: number }> {
  const coarse = COARSER[q.resolution];
  const step = RESOLUTION_MS[q.resolution];
  if (!coarse) return store.readRollups(q);
  const coarseStep = RESOLUTION_MS[coarse];
  const endExclusive = q.end + step;
  const firstWhole = Math.ceil(q.start / coarseStep) * coarseStep;
  const lastWholeEnd = Math.floor(endExclusive / coarseStep) * coarseStep;
  if (lastWholeEnd - firstWhole < coarseStep) return store.readRollups(q);
  const parts: RollupRead[] = [{ ...q, resolution: coarse, start: firstWhole, end: lastWholeEnd - coarseStep }];
  if (q.start < firstWhole) parts.push({ ...q, start: q.start, end: firstWhole - step });
  if (lastWholeEnd < endExclusive) parts.push({ ...q, start: lastWholeEnd, end: q.end });
  const reads = await Promise.all(parts.map((part) => store.readRollups(part)));
  const groups = new Map<string, RollupGroup>();
  for (const read of reads) {
    for (const g of read.groups) {
      const key = JSON.stringify(g.labels);
      let into = groups.get(key);
      if (!into) groups.set(key, (into = { labels: g.labels, buckets: new Map() }));
      // Each part's buckets are disjoint in time; the group's total is all that is used.
      for (const [b, r] of g.buckets) {
        const had = into.buckets.get(b);
        if (had) mergeRollup(had, r);
        else into.buckets.set(b, r);
      }
    }
  }
  return { groups: [...groups.values()], itemsRead: reads.reduce((n, r) => n + r.itemsRead, 0) };
}

/** value_range: exact figures from the raw points in range, grouped and bucketed in memory. */
async function rawQuery(deps: Deps, principal: Principal, body: QueryBody, labels: Labels, scope: 'all' | 'own', range: { start: number; end: number }): Promise<QueryView> {
  const { min, max } = body.filters.value_range!;
  const groupBy = body.group_by.labels ?? [];
  const step = body.group_by.bucket ? RESOLUTION_MS[body.group_by.bucket] : undefined;
  const store = metricsStore(deps);
  const user = labels.user;
  const { user: _u, ...otherLabels } = labels;
  const groups = new Map<string, { labels: Record<string, string | null>; buckets: Map<number, Rollup>; values: number[] }>();
  let startKey: Record<string, unknown> | undefined;
  let itemsRead = 0;
  do {
    const page = await store.listPoints({
      metric: body.metric_type,
      user,
      from: new Date(range.start),
      to: new Date(range.end),
      limit: 1000,
      startKey,
      maxReads: 20,
      filter: { labels: otherLabels },
    });
    itemsRead += page.items.length;
    for (const p of page.items) {
      if (p.metric !== body.metric_type) continue;
      if ((min !== undefined && p.value < min) || (max !== undefined && p.value > max)) continue;
      const gl = Object.fromEntries(groupBy.map((k) => [k, p.labels[k] ?? null]));
      const key = JSON.stringify(gl);
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { labels: gl, buckets: new Map(), values: [] }));
      const t = step ? Math.floor(Date.parse(p.at) / step) * step : 0;
      addValue(g.buckets.get(t) ?? (g.buckets.set(t, emptyRollup()), g.buckets.get(t)!), p.value);
      g.values.push(p.value);
    }
    startKey = page.lastKey;
    if (startKey && itemsRead >= MAX_RAW_READS) {
      throw validationError([{ path: 'time_range', message: `more than ${MAX_RAW_READS} raw points in range for value_range; narrow the range or filter by labels` }]);
    }
  } while (startKey);
  const start = step ? Math.floor(range.start / step) * step : range.start;
  const end = step ? Math.floor(range.end / step) * step + step : range.end;
  const exact = (values: number[]) => {
    const q = body.aggregation.startsWith('p') ? Number(body.aggregation.slice(1)) / 100 : undefined;
    return q === undefined ? undefined : exactQuantile([...values].sort((a, b) => a - b), q);
  };
  const series = [...groups.values()]
    .map((g) => {
      const out = seriesOut(step ? g : { labels: g.labels, buckets: new Map([[0, g.buckets.get(0)!]]) }, body.aggregation, { start, end, step });
      const q = exact(g.values);
      if (q !== undefined) out.value = q;
      return out;
    })
    .sort((a, b) => (b.value ?? -Infinity) - (a.value ?? -Infinity))
    .slice(0, body.limit);
  if (!groupBy.length && !series.length) series.push({ labels: {}, value: aggregateOf(emptyRollup(), body.aggregation, (end - start) / 1000), count: 0, ...(step ? { points: [] } : {}) });
  void principal;
  return { metric_type: body.metric_type, aggregation: body.aggregation, resolution: 'raw', start: new Date(start).toISOString(), end: new Date(end).toISOString(), scope, items_read: itemsRead, series };
}

// ---------------------------------------------------------------- raw points

export async function listMetrics(deps: Deps, principal: Principal, q: MetricsQuery, startKey?: Record<string, unknown>): Promise<{ items: PointView[]; lastKey?: Record<string, unknown> }> {
  const to = q.to ? new Date(q.to) : deps.clock.now();
  const from = q.from ? new Date(q.from) : new Date(to.getTime() - DAY_MS);
  const label = q.label ? Object.fromEntries([q.label.split('=') as [string, string]]) : {};
  const own = !readsAll(principal) && !(q.metric_type && isSystem(q.metric_type));
  if (own && label.user && label.user !== principal.userId) throw forbidden('Without tasks:read_all you can read only your own metrics');
  const { user: _u, ...otherLabels } = label;
  const page = await metricsStore(deps).listPoints({
    metric: q.metric_type,
    user: own ? principal.userId : undefined,
    from,
    to,
    limit: q.limit,
    startKey,
    filter: { labels: own ? otherLabels : label },
  });
  return { items: page.items.map(pointOut), lastKey: page.lastKey };
}

function pointOut(p: StoredPoint): PointView {
  return { point_id: p.point_id, metric_type: p.metric, value: p.value, timestamp: p.at, labels: p.labels, recorded_at: p.recorded_at };
}

// ---------------------------------------------------------------- summary

/** Weights of the health score's inputs (each input is 0..1). */
export const HEALTH_WEIGHTS = { success_rate: 0.5, queue_wait: 0.25, backlog: 0.25 } as const;
/** A p95 queue wait at or under this many ms scores full marks; above, the score falls as target / p95. */
export const QUEUE_WAIT_TARGET_MS = 30_000;
/** A backlog that the observed start rate drains within this many minutes scores full marks. */
export const BACKLOG_TARGET_MINUTES = 10;

export async function summary(deps: Deps, principal: Principal, window: string): Promise<SummaryView> {
  const now = deps.clock.now().getTime();
  const windowMs = rangeMs(window);
  const store = metricsStore(deps);
  let itemsRead = 0;
  const own = !readsAll(principal);
  const user: Labels = own ? { user: principal.userId } : {};
  const resolution = chooseResolution(now - windowMs, now, now);
  const windowRead = async (metric: string, groupBy: string[] = []) => {
    const r = await store.readRollups({ metric, resolution, start: bucketStart(now - windowMs, resolution), end: bucketStart(now, resolution), labels: user, groupBy });
    itemsRead += r.itemsRead;
    return r.groups;
  };
  const today = bucketStart(now, 'day');
  const todayRead = async (metric: string) => {
    const r = await store.readRollups({ metric, resolution: 'day', start: today, end: today, labels: user });
    itemsRead += r.itemsRead;
    return total(r.groups);
  };
  const [createdToday, createdWindow, finished, durations, waits, starts, costToday, tinToday, toutToday, counts, runningWorkflows] = await Promise.all([
    todayRead('task.created'),
    windowRead('task.created').then(total),
    windowRead('task.finished', ['status']),
    windowRead('task.duration_ms').then(total),
    windowRead('task.queue_wait_ms').then(total),
    windowRead('task.started').then(total),
    todayRead('task.cost_usd'),
    todayRead('task.tokens_in'),
    todayRead('task.tokens_out'),
    taskStatusCounts(deps),
    runningExecutionCount(deps),
  ]);
  const byStatus = Object.fromEntries(finished.filter((g) => g.labels.status).map((g) => [String(g.labels.status), total([g]).count]));
  const completed = byStatus.completed ?? 0;
  const failed = byStatus.failed ?? 0;
  const successRate = completed + failed > 0 ? completed / (completed + failed) : null;
  const depth = counts.pending + counts.queued;
  const waitP95 = aggregateOf(waits, 'p95', 0);
  const startsPerMinute = starts.count / (windowMs / 60_000);
  const inputs = {
    success_rate: successRate,
    queue_wait_p95_ms: waitP95,
    queue_wait: waitP95 === null ? null : Math.min(1, QUEUE_WAIT_TARGET_MS / Math.max(waitP95, 1)),
    backlog_depth: depth,
    starts_per_minute: startsPerMinute,
    backlog: depth === 0 ? 1 : startsPerMinute === 0 ? 0 : Math.min(1, BACKLOG_TARGET_MINUTES / (depth / startsPerMinute)),
  };
  const parts = (Object.keys(HEALTH_WEIGHTS) as (keyof typeof HEALTH_WEIGHTS)[]).filter((k) => inputs[k] !== null);
  const weightSum = parts.reduce((a, k) => a + HEALTH_WEIGHTS[k], 0);
  const score = weightSum > 0 ? Math.round((100 * parts.reduce((a, k) => a + HEALTH_WEIGHTS[k] * inputs[k]!, 0)) / weightSum) : null;
  return {
    scope: own ? 'own' : 'all',
    window,
    generated_at: new Date(now).toISOString(),
    tasks: {
      created_today: createdToday.count,
      created_in_window: createdWindow.count,
      finished_in_window: byStatus,
      success_rate: successRate,
      duration_ms: { count: durations.count, p50: aggregateOf(durations, 'p50', 0), p95: aggregateOf(durations, 'p95', 0) },
      queue_wait_ms: { count: waits.count, p50: aggregateOf(waits, 'p50', 0), p95: waitP95 },
    },
    queue: { pending: counts.pending, queued: counts.queued, running: counts.running, depth },
    running_workflows: runningWorkflows,
    today: { cost_usd: costToday.sum, tokens_in: tinToday.sum, tokens_out: toutToday.sum },
    health: {
      score,
      formula:
        'score = 100 × Σ(weight × input) / Σ(weights of inputs with data); success_rate = completed / (completed + failed) in the window; ' +
        `queue_wait = min(1, ${QUEUE_WAIT_TARGET_MS} / p95 queue wait ms); backlog = min(1, ${BACKLOG_TARGET_MINUTES} / (depth / starts per minute)), 1 when nothing waits`,
      inputs,
      weights: { ...HEALTH_WEIGHTS },
    },
    items_read: itemsRead,
  };
}

function total(groups: RollupGroup[]): Rollup {
  const out = emptyRollup();
  for (const g of groups) for (const r of g.buckets.values()) mergeRollup(out, r);
  return out;
}
