/**
 * The metrics store: points (a metric name, a number, a time, string labels) recorded exactly once each,
 * kept raw for a retention period and rolled up per minute, hour and day.
 *
 * Writes: `recordMany(points)` writes transactions that put a guard per point (condition: not there
 * yet) and the raw point (TTL), and `ADD` count, sum and the sketch bins to every minute rollup the points
 * belong to (one update per rollup item, summed over the points). The guard is the raw point itself
 * when the event fixes the point's time (`fixedTime`: its key then follows from the source id), else a
 * marker keyed by the `sourceId`. A second delivery of the same source id fails the guard's condition,
 * so nothing is counted twice; a crash before the transaction loses nothing (the feed redelivers). Min and
 * max are set after the transaction by conditional writes, which are idempotent and re-applied on a
 * duplicate, so they heal after a crash in between; points within bounds this process has already seen
 * stored need no read (bounds only widen).
 *
 * Hours and days: `compact` (the collector, every minute) builds an hour's rollups from its minutes once
 * the hour ended `COMPACT_AFTER_MS` ago, and a day's from its hours, and records per metric how far it
 * has come (`CompactionState`); reads take the hours (days) not built yet from their minutes (hours), so
 * they are exact at once. A point stored `LATE_AFTER_MS` or more after its hour (day) ended is added to
 * that hour's (day's) rollup directly as well. So a point costs one rollup write per series instead of
 * three, and the hot hour and day items are written once an hour (day) instead of once per batch.
 *
 * Series: a point with labels L is rolled up into the series `*` (every point of the metric), `L:k=v`
 * for each label, and `F:<all labels>` (its full label set). A read without label filters reads `*`
 * only; one label filter reads its `L:` series; anything else reads the `F:` series that match,
 * found through the series registry. So a 30-day range at hour resolution reads 720 items per series.
 *
 * Reads: `readRollups` merges rollups per (bucket, group) and says how many items it read. The
 * platform knows no area: metric names and labels are plain strings (see shared/analytics for the
 * metrics the platform records).
 */
import { createHash } from 'node:crypto';
import { GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand, type TransactWriteCommandInput, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import type { Store } from '../store/client.js';
import { epochSeconds } from '../store/client.js';
import { cancellationCodes, isConditionFailure, isTransactionConflict, retryOnConflict } from '../store/conflicts.js';
import { queryPage } from '../store/query.js';
import { getItems } from '../store/batch-get.js';
import { writeItems } from '../store/batch-write.js';
import { mergeSketch, sketchKeyOf, sketchQuantile, type SketchBins } from '../histogram.js';

// ---------------------------------------------------------------- facts

export const RESOLUTIONS = ['minute', 'hour', 'day'] as const;
export type Resolution = (typeof RESOLUTIONS)[number];
export const RESOLUTION_MS: Record<Resolution, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
/** How long each rollup is kept (null: forever). */
export const ROLLUP_RETENTION_DAYS: Record<Resolution, number | null> = { minute: 14, hour: 400, day: null };
/** Raw points are kept this many days unless configured otherwise (METRICS_RETENTION_DAYS). */
export const DEFAULT_RAW_RETENTION_DAYS = 7;
/** At most this many labels per point (each adds three rollup writes). */
export const MAX_LABELS = 8;
/** Metric names and label keys: lower-case dotted words; label values: printable, no separators. */
export const METRIC_NAME = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+){0,4}$/;
export const LABEL_KEY = /^[a-z][a-z0-9_]{0,31}$/;
export const LABEL_VALUE = /^[A-Za-z0-9_.:/@+-]{1,128}$/;

const DAY_MS = 86_400_000;

/**
 * A point is late for its hour (day) once that hour (day) ended this long before it is stored: a late
 * point is also added to the hour (day) rollup directly, as the hour may have been compacted already.
 * Any other point is added to its minute rollups only, and compaction builds the hour from them.
 */
export const LATE_AFTER_MS = 5 * 60_000;
/**
 * An hour (day) is compacted from its minutes (hours) once it ended this long ago. The gap to
 * `LATE_AFTER_MS` is the time a write decided "not late" has to be stored before compaction reads the
 * minutes: `recordMany` decides once per call and gives up on a call older than `MAX_DECISION_AGE_MS`.
 */
export const COMPACT_AFTER_MS = 15 * 60_000;
/** How long a `recordMany` call may go on writing on one decision of what is late (well under the gap above). */
const MAX_DECISION_AGE_MS = 5 * 60_000;
/** Hours (days) one metric is compacted in one run at most; a run after a long pause catches up over several runs. */
const COMPACT_BUCKETS_PER_RUN = 48;
/** Queries and writes compaction sends at once. */
const COMPACT_CONCURRENCY = 8;

// ---------------------------------------------------------------- types

export type Labels = Record<string, string>;

export interface MetricPoint {
  metric: string;
  value: number;
  at: Date;
  labels: Labels;
  /** Identifies the event the point comes from: the same id is counted once, however often it is recorded. */
  sourceId: string;
  /**
   * The event fixes `at` (a change's own time, a collector's minute): the same `sourceId` always comes
   * with the same time, so the raw point's key is the same too, and its conditional put is the guard.
   * Otherwise (a client's event, whose resend may carry another time) a marker keyed by the id alone is.
   */
  fixedTime?: boolean;
}

/** A raw point as stored and listed. */
export interface StoredPoint {
  point_id: string;
  metric: string;
  value: number;
  at: string;
  labels: Labels;
  recorded_at: string;
}

/** Count, sum, min, max and a mergeable sketch: what every rollup holds, and what merging them gives. */
export interface Rollup {
  count: number;
  sum: number;
  min: number | null;
  max: number | null;
  bins: SketchBins;
}

export const AGGREGATIONS = ['count', 'sum', 'avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99', 'rate'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

export function emptyRollup(): Rollup {
  return { count: 0, sum: 0, min: null, max: null, bins: {} };
}

export function mergeRollup(into: Rollup, from: Rollup): Rollup {
  into.count += from.count;
  into.sum += from.sum;
  if (from.min !== null) into.min = into.min === null ? from.min : Math.min(into.min, from.min);
  if (from.max !== null) into.max = into.max === null ? from.max : Math.max(into.max, from.max);
  mergeSketch(into.bins, from.bins);
  return into;
}

export function addValue(into: Rollup, value: number): Rollup {
  return mergeRollup(into, { count: 1, sum: value, min: value, max: value, bins: { [sketchKeyOf(value)]: 1 } });
}

/**
 * One figure of a rollup. `rate` is points per second over `seconds` (the bucket or the range); the
 * percentiles come from the sketch (within 1 %, clamped to min/max). Null where there is no data.
 */
export function aggregateOf(r: Rollup, aggregation: Aggregation, seconds: number): number | null {
  switch (aggregation) {
    case 'count':
      return r.count;
    case 'sum':
      return r.sum;
    case 'rate':
      return seconds > 0 ? r.count / seconds : null;
    case 'avg':
      return r.count ? r.sum / r.count : null;
    case 'min':
      return r.min;
    case 'max':
      return r.max;
    default:
      return sketchQuantile(r.bins, Number(aggregation.slice(1)) / 100, r);
  }
}

/** The exact q-quantile of values (nearest rank on sorted values), for reads of raw points. */
export function exactQuantile(sorted: readonly number[], q: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

// ---------------------------------------------------------------- keys

/** Canonical text of a label set: `k=v` sorted by key, joined by commas. */
export function labelsKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** The series a point with these labels is rolled up into. */
export function seriesOf(labels: Labels): string[] {
  return ['*', ...Object.keys(labels).sort().map((k) => `L:${k}=${labels[k]}`), `F:${labelsKey(labels)}`];
}

export function bucketStart(at: Date | number, resolution: Resolution): number {
  const ms = typeof at === 'number' ? at : at.getTime();
  return Math.floor(ms / RESOLUTION_MS[resolution]) * RESOLUTION_MS[resolution];
}

const hashOf = (text: string) => createHash('sha256').update(text).digest('base64url').slice(0, 22);
const rollupPk = (res: Resolution, metric: string, series: string) => `MROLL#${res}#${metric}#${series}`;
const MINUTE_ROLLUP_PREFIX = 'MROLL#minute#';
/** Partition key prefix of the marker written with each recorded point: its change on the table's stream says a point was recorded. */
const markerKey = (sourceId: string) => ({ pk: `METRIC_EVENT#${hashOf(sourceId)}`, sk: 'EVENT' });
/** The partition key prefix of raw points: each newly recorded point is one new item under it. */
export const RAW_POINT_PREFIX = 'METRIC#';
const pointKey = (metric: string, at: string, id: string) => ({ pk: `${RAW_POINT_PREFIX}${metric}`, sk: `${at}#${id}` });
const registryKey = (metric: string, series: string) => ({ pk: `MSERIES#${metric}`, sk: series });
/** Per metric, how far compaction has come: the first hour (day) whose rollup it has not built yet. */
const COMPACTION_PK = 'MCOMPACT';
const compactionKey = (metric: string) => ({ pk: COMPACTION_PK, sk: metric });
const catalogKey = (metric: string) => ({ pk: 'MCATALOG', sk: metric });
/** Index partitions of raw points: every metric (gsi1), one user's (gsi2, label `user`). */
const ALL_POINTS = 'METRICS';
const pointsOfUser = (user: string) => `METRICS_USER#${user}`;

const binAttr = (key: string) => `b_${key}`;

/** Conditional min/max writes settleBounds sends at once. */
const SETTLE_CONCURRENCY = 16;

/** DynamoDB's limit of items in one transaction. */
const MAX_TRANSACTION_ITEMS = 100;

interface RollupKey {
  pk: string;
  sk: string;
  metric: string;
  series: string;
  res: Resolution;
}

/** Whether `at`'s bucket at `resolution` ended at least `LATE_AFTER_MS` before `now` (its rollup may be compacted). */
const isLate = (at: Date, resolution: 'hour' | 'day', now: number) => bucketStart(at, resolution) + RESOLUTION_MS[resolution] + LATE_AFTER_MS <= now;

/**
 * The rollup items a point stored at `now` adds to: each of its series per minute, and per hour and
 * per day only where the point is late for them (else compaction rolls its minutes up).
 */
function rollupKeysOf(p: MetricPoint, now: number): RollupKey[] {
  const series = seriesOf(p.labels);
  const resolutions: Resolution[] = ['minute', ...(isLate(p.at, 'hour', now) ? (['hour'] as const) : []), ...(isLate(p.at, 'day', now) ? (['day'] as const) : [])];
  return resolutions.flatMap((res) => {
    const bucket = new Date(bucketStart(p.at, res)).toISOString();
    return series.map((s) => ({ pk: rollupPk(res, p.metric, s), sk: bucket, metric: p.metric, series: s, res }));
  });
}

function rollupOf(item: Record<string, unknown>): Rollup {
  const bins: SketchBins = {};
  for (const [k, v] of Object.entries(item)) if (k.startsWith('b_')) bins[k.slice(2)] = Number(v);
  return {
    count: Number(item.n ?? 0),
    sum: Number(item.s ?? 0),
    min: item.mn === undefined ? null : Number(item.mn),
    max: item.mx === undefined ? null : Number(item.mx),
    bins,
  };
}

/**
 * The stored form of one rollup item (keys and attributes: what the transactions' `ADD`s and the settled
 * bounds amount to), for loaders that write whole rollups at once, such as the bench. `readSeries`
 * reads it back.
 */
export function rollupItem(metric: string, series: string, resolution: Resolution, bucket: number, r: Rollup): Record<string, unknown> {
  const sk = new Date(bucketStart(bucket, resolution)).toISOString();
  const keep = ROLLUP_RETENTION_DAYS[resolution];
  return {
    pk: rollupPk(resolution, metric, series),
    sk,
    metric,
    series,
    res: resolution,
    bucket: sk,
    n: r.count,
    s_sum: r.sum,
    ...(r.min === null ? {} : { mn: r.min }),
    ...(r.max === null ? {} : { mx: r.max }),
    ...Object.fromEntries(Object.entries(r.bins).map(([k, v]) => [binAttr(k), v])),
    ...(keep === null ? {} : { expires_at: epochSeconds(new Date(Date.parse(sk) + RESOLUTION_MS[resolution] + keep * DAY_MS)) }),
  };
}

/** The stored form of a raw point (it expires `retentionDays` after its time, or after `now` if later). */
export function pointItem(p: MetricPoint, now: Date, retentionDays: number): Record<string, unknown> {
  const atIso = p.at.toISOString();
  const id = hashOf(p.sourceId);
  return {
    ...pointKey(p.metric, atIso, id),
    entity: 'metric_point',
    gsi1pk: ALL_POINTS,
    gsi1sk: `${atIso}#${id}`,
    ...(p.labels.user ? { gsi2pk: pointsOfUser(p.labels.user), gsi2sk: `${atIso}#${id}` } : {}),
    point_id: id,
    metric: p.metric,
    value: p.value,
    at: atIso,
    labels: p.labels,
    recorded_at: now.toISOString(),
    expires_at: pointExpiry(p, now, retentionDays),
  };
}

const pointExpiry = (p: MetricPoint, now: Date, retentionDays: number) => epochSeconds(new Date(Math.max(p.at.getTime(), now.getTime()) + retentionDays * DAY_MS));

// ---------------------------------------------------------------- the store

export interface MetricsStoreOptions {
  rawRetentionDays?: number;
}

export interface RollupRead {
  metric: string;
  resolution: Resolution;
  /** Inclusive bucket starts (ms, aligned to the resolution). */
  start: number;
  end: number;
  /** Exact label matches every point must have. */
  labels?: Labels;
  /** Labels to group by (a point without one groups under null). */
  groupBy?: readonly string[];
}

export interface RollupGroup {
  /** The group's label values (empty without groupBy). */
  labels: Record<string, string | null>;
  /** Rollup per bucket start (ms). */
  buckets: Map<number, Rollup>;
}

export interface RollupResult {
  groups: RollupGroup[];
  itemsRead: number;
  series: string[];
}

/** Transaction items a point takes besides its rollups: its raw point, and a marker unless its time is fixed. */
const itemsPerPoint = (p: MetricPoint) => (p.fixedTime ? 1 : 2);

/**
 * How far compaction has come for one metric. Hours before `hoursNext` (days before `daysNext`) are
 * read from their own rollup items; later ones from the finer rollups they are built from. A metric
 * without a state has had only points late for their day (every resolution written directly): read as stored.
 */
export interface CompactionState {
  metric: string;
  hoursNext: number;
  daysNext: number;
}

export interface CompactionReport {
  /** Hours and days compacted (over all metrics), and the rollup items written for them. */
  hours: number;
  days: number;
  rollups: number;
  /** Hours passed over because their minutes had expired (compaction was off longer than minutes are kept). */
  skippedHours: number;
  /** Metrics left for the next run because the deadline came. */
  unfinished: number;
  /** Metrics whose compaction failed this run (the run then throws, after the others). */
  failed: number;
}

const stateOf = (item: Record<string, unknown>): CompactionState => ({ metric: String(item.sk), hoursNext: Number(item.hours_next), daysNext: Number(item.days_next) });

/** Per table and metric, the lowest first-hour-to-compact this process has made sure of (see ensureCompactionState). */
const compactionEnsured = new Map<string, number>();

/** Series known in-process (the registry write is skipped for them). */
const registered = new Set<string>();

/**
 * Bounds of rollups this process has seen stored, by table and key. A rollup's `mn` only goes down and
 * its `mx` only up, so the stored bounds are at least as wide as any seen here: points within them need
 * no read to settle. Cleared when it grows past `KNOWN_BOUNDS_MAX` (recent buckets are what is written).
 */
const knownBounds = new Map<string, { min: number; max: number }>();
const KNOWN_BOUNDS_MAX = 50_000;

function learnBounds(id: string, min: number, max: number): void {
  const known = knownBounds.get(id);
  if (known) {
    known.min = Math.min(known.min, min);
    known.max = Math.max(known.max, max);
    return;
  }
  if (knownBounds.size >= KNOWN_BOUNDS_MAX) knownBounds.clear();
  knownBounds.set(id, { min, max });
}

export class MetricsStore {
  private readonly rawRetentionDays: number;
  constructor(
    private readonly store: Store,
    options: MetricsStoreOptions = {},
  ) {
    this.rawRetentionDays = options.rawRetentionDays ?? DEFAULT_RAW_RETENTION_DAYS;
  }

  /** Checks a point; returns the reason it cannot be stored, or null. */
  static problemOf(p: MetricPoint): string | null {
    if (!METRIC_NAME.test(p.metric)) return 'metric';
    if (!Number.isFinite(p.value)) return 'value';
    if (Number.isNaN(p.at.getTime())) return 'at';
    const keys = Object.keys(p.labels);
    if (keys.length > MAX_LABELS) return 'labels';
    for (const k of keys) if (!LABEL_KEY.test(k) || !LABEL_VALUE.test(p.labels[k])) return `labels.${k}`;
    return null;
  }

  /**
   * Records a point once: true when this call stored it, false when its `sourceId` was already
   * recorded (nothing is counted again).
   */
  async record(p: MetricPoint, now: Date = new Date()): Promise<boolean> {
    const [recorded] = await this.recordMany([p], now);
    return recorded;
  }

  /**
   * Records points once each (by `sourceId`); answers, in order, whether this call stored each one.
   *
   * The points are grouped into as few transactions as DynamoDB allows: each holds the points' markers
   * (condition: not recorded yet) and raw points, and one `ADD` per rollup item carrying the sum of its
   * points. A batch of changes that land in the same minute thus adds once to the hot `*` rollups
   * instead of once per point, and concurrent consumers contend far less. A transaction cancelled by a
   * marker that exists is run again without the points already recorded; lost races are retried.
   *
   * `now` is when they are stored (the caller's clock): it decides which points are late for their hour
   * or day (see `LATE_AFTER_MS`), so it must be the current time, not an event's.
   */
  async recordMany(points: readonly MetricPoint[], now: Date = new Date()): Promise<boolean[]> {
    const decided = performance.now();
    for (const p of points) {
      const problem = MetricsStore.problemOf(p);
      if (problem) throw new Error(`metric point has an invalid ${problem}`);
    }
    const recorded = points.map(() => false);
    const seen = new Set<string>();
    const pending: number[] = [];
    points.forEach((p, i) => {
      if (seen.has(p.sourceId)) return;
      seen.add(p.sourceId);
      pending.push(i);
    });
    await this.register(pending.map((i) => points[i]));
    // Points that share rollup items (same metric, labels and minute) go into the same transactions: a
    // batch of task completions is then a few transactions instead of one per handful of points.
    const sortKey = (p: MetricPoint) => `${p.metric}|${labelsKey(p.labels)}|${bucketStart(p.at, 'minute')}`;
    const keys = new Map(pending.map((i) => [i, sortKey(points[i])]));
    pending.sort((a, b) => (keys.get(a)! < keys.get(b)! ? -1 : keys.get(a)! > keys.get(b)! ? 1 : a - b));
    const indexOf = new Map(pending.map((i) => [points[i], i]));
    await this.ensureCompactionState(pending.map((i) => points[i]), now);
    for (const chunk of this.chunks(pending.map((i) => points[i]), now)) {
      // A call that stalled this long would store points as "not late" into hours compaction may have built: it fails, and its retry decides again.
      if (performance.now() - decided > MAX_DECISION_AGE_MS) throw new Error('metric points not stored within 5 minutes of deciding which are late; record them again');
      const stored = await this.writeChunk(chunk, now);
      for (const p of stored) recorded[indexOf.get(p)!] = true;
    }
    await this.settleBounds(pending.map((i) => points[i]), now);
    return recorded;
  }

  /** Points cut into groups whose transaction (one or two items per point, one per distinct rollup) fits DynamoDB's limit. */
  private chunks(points: readonly MetricPoint[], now: Date): MetricPoint[][] {
    const out: MetricPoint[][] = [];
    let current: MetricPoint[] = [];
    let rollups = new Set<string>();
    let pointItems = 0;
    for (const p of points) {
      const keys = rollupKeysOf(p, now.getTime()).map((k) => `${k.pk}|${k.sk}`);
      const added = keys.filter((k) => !rollups.has(k)).length;
      const own = itemsPerPoint(p);
      if (current.length && pointItems + own + rollups.size + added > MAX_TRANSACTION_ITEMS) {
        out.push(current);
        current = [];
        rollups = new Set();
        pointItems = 0;
      }
      current.push(p);
      pointItems += own;
      for (const k of keys) rollups.add(k);
    }
    if (current.length) out.push(current);
    return out;
  }

  /** One transaction for the points not recorded yet; answers those this call stored. */
  private async writeChunk(chunk: readonly MetricPoint[], now: Date): Promise<MetricPoint[]> {
    let remaining = [...chunk];
    while (remaining.length) {
      const items = this.transactionOf(remaining, now);
      try {
        await retryOnConflict(() => this.store.doc.send(new TransactWriteCommand({ TransactItems: items })), { isConflict: isTransactionConflict, attempts: 8 });
        return remaining;
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
        // Guards come first, one per point: the points whose guard exists were recorded before.
        const codes = cancellationCodes(err);
        const fresh = remaining.filter((_, i) => codes[i] !== 'ConditionalCheckFailed');
        if (fresh.length === remaining.length) throw err;
        remaining = fresh;
      }
    }
    return [];
  }

  private transactionOf(points: readonly MetricPoint[], now: Date): NonNullable<TransactWriteCommandInput['TransactItems']> {
    const table = this.store.table;
    const expiryOf = (p: MetricPoint) => pointExpiry(p, now, this.rawRetentionDays);
    // One guard per point, in the points' order (conditional: not recorded yet): its raw point when the
    // time is fixed by the event, else a marker keyed by the source id; then the other raw points.
    const guards = points.map((p) =>
      p.fixedTime
        ? { Put: { TableName: table, Item: pointItem(p, now, this.rawRetentionDays), ConditionExpression: 'attribute_not_exists(pk)' } }
        : {
            Put: {
              TableName: table,
              Item: { ...markerKey(p.sourceId), entity: 'metric_event', source_id: p.sourceId, metric: p.metric, expires_at: expiryOf(p) },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
    );
    const raw = points.filter((p) => !p.fixedTime).map((p) => ({ Put: { TableName: table, Item: pointItem(p, now, this.rawRetentionDays) } }));
    const sums = new Map<string, { key: RollupKey; count: number; sum: number; min: number; max: number; bins: Record<string, number> }>();
    for (const p of points) {
      for (const key of rollupKeysOf(p, now.getTime())) {
        const id = `${key.pk}|${key.sk}`;
        const into = sums.get(id) ?? { key, count: 0, sum: 0, min: p.value, max: p.value, bins: {} };
        into.count += 1;
        into.sum += p.value;
        into.min = Math.min(into.min, p.value);
        into.max = Math.max(into.max, p.value);
        const bin = binAttr(sketchKeyOf(p.value));
        into.bins[bin] = (into.bins[bin] ?? 0) + 1;
        sums.set(id, into);
      }
    }
    const updates = [...sums.values()].map(({ key, count, sum, min, max, bins }) => {
      const keep = ROLLUP_RETENTION_DAYS[key.res];
      const binNames = Object.keys(bins);
      return {
        Update: {
          TableName: table,
          Key: { pk: key.pk, sk: key.sk },
          UpdateExpression:
            // A new rollup starts with these points' min and max; an existing one's are settled after the transaction (settleBounds).
            'SET #metric = :m, #series = :s, #res = :r, #bucket = :b, #mn = if_not_exists(#mn, :v), #mx = if_not_exists(#mx, :x)' +
            (keep === null ? '' : ', #exp = :e') +
            // An hour or day rollup counts its direct additions, so compaction's rewrite of it can tell one raced it.
            (key.res === 'minute' ? ' ADD ' : ' ADD #version :one, ') +
            '#n :n, #sum :sum, ' +
            binNames.map((_, i) => `#bin${i} :bin${i}`).join(', '),
          ExpressionAttributeNames: {
            '#metric': 'metric',
            '#series': 'series',
            '#res': 'res',
            '#bucket': 'bucket',
            '#mn': 'mn',
            '#mx': 'mx',
            '#n': 'n',
            '#sum': 's_sum',
            ...Object.fromEntries(binNames.map((name, i) => [`#bin${i}`, name])),
            ...(keep === null ? {} : { '#exp': 'expires_at' }),
            ...(key.res === 'minute' ? {} : { '#version': 'v' }),
          },
          ExpressionAttributeValues: {
            ':m': key.metric,
            ':s': key.series,
            ':r': key.res,
            ':b': key.sk,
            ':v': min,
            ':x': max,
            ':n': count,
            ':sum': sum,
            ...Object.fromEntries(binNames.map((name, i) => [`:bin${i}`, bins[name]])),
            ...(keep === null ? {} : { ':e': epochSeconds(new Date(Date.parse(key.sk) + RESOLUTION_MS[key.res] + keep * DAY_MS)) }),
            ...(key.res === 'minute' ? {} : { ':one': 1 }),
          },
        },
      };
    });
    return [...guards, ...raw, ...updates];
  }

  /**
   * Lowers `mn` / raises `mx` of the rollups where the points lie outside them: idempotent, so it is
   * also run for points already recorded (healing a crash between a transaction and this).
   */
  private async settleBounds(points: readonly MetricPoint[], now: Date): Promise<void> {
    const bounds = new Map<string, { key: Record<string, string>; min: number; max: number }>();
    for (const p of points) {
      for (const key of rollupKeysOf(p, now.getTime())) {
        const id = `${key.pk}|${key.sk}`;
        const b = bounds.get(id) ?? { key: { pk: key.pk, sk: key.sk }, min: p.value, max: p.value };
        b.min = Math.min(b.min, p.value);
        b.max = Math.max(b.max, p.value);
        bounds.set(id, b);
      }
    }
    const knownId = (id: string) => `${this.store.table}|${id}`;
    const unsettled = [...bounds].filter(([id, b]) => {
      const known = knownBounds.get(knownId(id));
      return !known || known.min > b.min || known.max < b.max;
    });
    const keys = unsettled.map(([, b]) => b.key);
    for (let start = 0; start < keys.length; start += 100) {
      const stored = await getItems(this.store, keys.slice(start, start + 100), { projection: 'pk, sk, mn, mx' });
      const changes: { pk: string; sk: string; attr: 'mn' | 'mx'; value: number }[] = [];
      const settled: [string, number, number][] = [];
      for (const item of stored) {
        const id = `${item.pk}|${item.sk}`;
        const b = bounds.get(id)!;
        if (Number(item.mn) > b.min) changes.push({ pk: String(item.pk), sk: String(item.sk), attr: 'mn', value: b.min });
        if (Number(item.mx) < b.max) changes.push({ pk: String(item.pk), sk: String(item.sk), attr: 'mx', value: b.max });
        settled.push([knownId(id), Math.min(Number(item.mn), b.min), Math.max(Number(item.mx), b.max)]);
      }
      // Independent conditional writes: a few at a time rather than one after the other.
      for (let i = 0; i < changes.length; i += SETTLE_CONCURRENCY) {
        await Promise.all(
          changes.slice(i, i + SETTLE_CONCURRENCY).map((c) =>
            this.store.doc
              .send(
                new UpdateCommand({
                  TableName: this.store.table,
                  Key: { pk: c.pk, sk: c.sk },
                  // An hour or day rollup's version moves too, so a compaction that read the old bounds rewrites nothing.
                  UpdateExpression: c.pk.startsWith(MINUTE_ROLLUP_PREFIX) ? 'SET #a = :v' : 'SET #a = :v ADD #version :one',
                  ConditionExpression: c.attr === 'mn' ? '#a > :v' : '#a < :v',
                  ExpressionAttributeNames: { '#a': c.attr, ...(c.pk.startsWith(MINUTE_ROLLUP_PREFIX) ? {} : { '#version': 'v' }) },
                  ExpressionAttributeValues: { ':v': c.value, ...(c.pk.startsWith(MINUTE_ROLLUP_PREFIX) ? {} : { ':one': 1 }) },
                }),
              )
              .catch((err) => {
                if (!isConditionFailure(err)) throw err;
              }),
          ),
        );
      }
      // Stored now (or wider: another writer's bound): learnt only once every write above succeeded.
      for (const [id, min, max] of settled) learnBounds(id, min, max);
    }
  }

  /** Puts the points' metrics in the catalog and their L:/F: series in the registry (once per process each), in batches. */
  private async register(points: readonly MetricPoint[]): Promise<void> {
    const entries = new Map<string, Record<string, unknown>>();
    const add = (key: { pk: string; sk: string }, attrs: Record<string, unknown>) => {
      const id = `${this.store.table}|${key.pk}|${key.sk}`;
      if (!registered.has(id) && !entries.has(id)) entries.set(id, { ...key, ...attrs });
    };
    for (const { metric, labels } of points) {
      add(catalogKey(metric), { entity: 'metric_catalog', metric });
      for (const k of Object.keys(labels)) add(registryKey(metric, `L:${k}=${labels[k]}`), { entity: 'metric_series', metric, labels: { [k]: labels[k] }, kind: 'label' });
      add(registryKey(metric, `F:${labelsKey(labels)}`), { entity: 'metric_series', metric, labels, kind: 'full' });
    }
    if (!entries.size) return;
    await writeItems(this.store, [...entries.values()].map((item) => ({ put: item })));
    for (const id of entries.keys()) registered.add(id);
  }

  /**
   * Before points skip a rollup they belong to (minute only, or minute and hour), their metric's
   * compaction state must exist and start no later than their hours and days: else a read would take
   * those from rollup items that do not hold them. A point not late for its hour at `now` is in an hour
   * from `bucketStart(now - LATE_AFTER_MS)` on (one not late for its day, in a day from that hour's), and
   * compaction never passes an hour that can still get such points (see `COMPACT_AFTER_MS`), so that is
   * where a new state starts. A state found later than it (only a clock set back does that) is moved
   * back, days first: minutes are the truth for any hour they are kept for. One read per process and
   * metric, in practice.
   */
  private async ensureCompactionState(points: readonly MetricPoint[], now: Date): Promise<void> {
    const from = bucketStart(now.getTime() - LATE_AFTER_MS, 'hour');
    const fromDay = bucketStart(from, 'day');
    const metrics = new Set(points.filter((p) => !isLate(p.at, 'day', now.getTime())).map((p) => p.metric));
    await Promise.all(
      [...metrics].map(async (metric) => {
        const id = `${this.store.table}|${metric}`;
        if ((compactionEnsured.get(id) ?? Infinity) <= from) return;
        const Key = compactionKey(metric);
        const state = await this.compactionState(metric);
        if (!state) {
          await this.updateIf({
            Key,
            UpdateExpression: 'SET hours_next = :h, days_next = :d, entity = :e',
            ConditionExpression: 'attribute_not_exists(pk)',
            ExpressionAttributeValues: { ':h': from, ':d': fromDay, ':e': 'metric_compaction' },
          });
        }
        // Created by another writer since the read, or found later than needed: moved back (never on).
        if (!state || state.daysNext > fromDay) await this.updateIf({ Key, UpdateExpression: 'SET days_next = :d', ConditionExpression: 'days_next > :d', ExpressionAttributeValues: { ':d': fromDay } });
        if (!state || state.hoursNext > from) await this.updateIf({ Key, UpdateExpression: 'SET hours_next = :h', ConditionExpression: 'hours_next > :h', ExpressionAttributeValues: { ':h': from } });
        compactionEnsured.set(id, from);
      }),
    );
  }

  /** A conditional update of this table: false when its condition does not hold (nothing is written). */
  private async updateIf(input: Omit<UpdateCommandInput, 'TableName'>): Promise<boolean> {
    try {
      await this.store.doc.send(new UpdateCommand({ TableName: this.store.table, ...input }));
      return true;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return false;
    }
  }

  /** The compaction state of one metric (null: none, its rollups are read as stored). */
  async compactionState(metric: string): Promise<CompactionState | null> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: compactionKey(metric), ConsistentRead: true }));
    return out.Item ? stateOf(out.Item) : null;
  }

  /**
   * Builds the hour rollups of every metric from their minutes, once an hour ended `COMPACT_AFTER_MS`
   * ago, and the day rollups from the hours once a day has; then moves the metric's state on. Run every
   * minute by the metrics collector; runs may repeat or overlap (each rollup is rewritten whole, on the
   * condition that no late point was added to it since it was read, and the state moves on only from
   * where this run found it). The metrics furthest behind go first; at `deadline` (a `performance.now()`
   * time) the run stops between buckets and leaves the rest to the next.
   */
  async compact(now: Date = new Date(), options: { deadline?: number } = {}): Promise<CompactionReport> {
    const report: CompactionReport = { hours: 0, days: 0, rollups: 0, skippedHours: 0, unfinished: 0, failed: 0 };
    const t = now.getTime();
    const timeLeft = () => options.deadline === undefined || performance.now() < options.deadline;
    // Minutes are kept ROLLUP_RETENTION_DAYS.minute days: an hour older than that can no longer be built.
    const minutesKeptFrom = t - ROLLUP_RETENTION_DAYS.minute! * DAY_MS + RESOLUTION_MS.hour;
    const states: CompactionState[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.store.doc.send(
        new QueryCommand({ TableName: this.store.table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': COMPACTION_PK }, ConsistentRead: true, ExclusiveStartKey: startKey }),
      );
      for (const item of page.Items ?? []) states.push(stateOf(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    states.sort((a, b) => a.hoursNext - b.hoursNext);
    let failure: unknown;
    for (const state of states) {
      if (!timeLeft()) {
        report.unfinished++;
        continue;
      }
      // One metric that fails (throttled, say) leaves the others to go on; the run fails after them.
      try {
        let hours = state.hoursNext;
        for (let n = 0; n < COMPACT_BUCKETS_PER_RUN && hours + RESOLUTION_MS.hour + COMPACT_AFTER_MS <= t && timeLeft(); n++) {
          if (hours >= minutesKeptFrom) report.rollups += await this.compactBucket(state.metric, 'hour', hours);
          else report.skippedHours++;
          if (!(await this.advance(state.metric, 'hours_next', hours, hours + RESOLUTION_MS.hour))) break;
          hours += RESOLUTION_MS.hour;
          report.hours++;
        }
        let days = state.daysNext;
        for (let n = 0; n < COMPACT_BUCKETS_PER_RUN && days + DAY_MS + COMPACT_AFTER_MS <= t && days + DAY_MS <= hours && timeLeft(); n++) {
          report.rollups += await this.compactBucket(state.metric, 'day', days);
          if (!(await this.advance(state.metric, 'days_next', days, days + DAY_MS))) break;
          days += DAY_MS;
          report.days++;
        }
      } catch (err) {
        report.failed++;
        failure ??= err;
      }
    }
    if (failure) throw Object.assign(failure as Error, { report });
    return report;
  }

  /**
   * Rewrites the rollups of `metric` for one hour (day) as the merge of its minutes (hours); answers how
   * many it wrote. Only the full-label-set (`F:`) series are read: every point is in exactly one of
   * them, so `*` and each `L:` series are their merges. Each rewrite is conditional on the version read
   * before the merge, and the series registry is read after the versions (a point's series is
   * registered before its transaction): a late point added in between makes the rewrite fail, and the
   * bucket is read and merged again. A rewrite keeps the bounds stored in the item (an hour's min and
   * max only ever come from its own points, and a minute's may not be settled yet).
   */
  private async compactBucket(metric: string, resolution: 'hour' | 'day', bucket: number): Promise<number> {
    const finer: Resolution = resolution === 'hour' ? 'minute' : 'hour';
    const last = bucket + RESOLUTION_MS[resolution] - RESOLUTION_MS[finer];
    const sk = new Date(bucket).toISOString();
    // Nothing in the `*` series: no point at all in this bucket, so no other series has one.
    if (!(await this.readItems(metric, '*', finer, bucket, last, true)).buckets.size) return 0;
    const num = (x: unknown) => (x === undefined ? undefined : Number(x));
    const seriesOfFull = (full: readonly { series: string; labels: Labels }[]) => ['*', ...full.flatMap((f) => [f.series, ...Object.keys(f.labels).map((k) => `L:${k}=${f.labels[k]}`)])];
    for (let attempt = 0; attempt < 8; attempt++) {
      // Versions, then the registry: until the registry holds no series whose version was not read.
      let full = await this.seriesList(metric, 'full', { consistent: true });
      const stored = new Map<string, { v?: number; mn?: number; mx?: number }>();
      for (;;) {
        const unread = [...new Set(seriesOfFull(full))].filter((series) => !stored.has(series));
        if (!unread.length) break;
        const items = await getItems(
          this.store,
          unread.map((series) => ({ pk: rollupPk(resolution, metric, series), sk })),
          { consistent: true, projection: 'pk, v, mn, mx' },
        );
        const byPk = new Map(items.map((item) => [String(item.pk), item]));
        for (const series of unread) {
          const item = byPk.get(rollupPk(resolution, metric, series));
          stored.set(series, { v: num(item?.v), mn: num(item?.mn), mx: num(item?.mx) });
        }
        full = await this.seriesList(metric, 'full', { consistent: true });
      }
      const merged = new Map<string, Rollup>();
      const add = (series: string, r: Rollup) => {
        const into = merged.get(series);
        if (into) mergeRollup(into, r);
        else merged.set(series, mergeRollup(emptyRollup(), r));
      };
      for (let i = 0; i < full.length; i += COMPACT_CONCURRENCY) {
        const reads = await Promise.all(full.slice(i, i + COMPACT_CONCURRENCY).map((f) => this.readItems(metric, f.series, finer, bucket, last, true)));
        reads.forEach((read, k) => {
          if (!read.buckets.size) return;
          const r = [...read.buckets.values()].reduce((into, x) => mergeRollup(into, x), emptyRollup());
          const { series, labels } = full[i + k]!;
          add(series, r);
          add('*', r);
          for (const key of Object.keys(labels)) add(`L:${key}=${labels[key]}`, r);
        });
      }
      let written = 0;
      let lost = false;
      const entries = [...merged];
      for (let i = 0; i < entries.length; i += COMPACT_CONCURRENCY) {
        await Promise.all(
          entries.slice(i, i + COMPACT_CONCURRENCY).map(async ([series, r]) => {
            const was = stored.get(series)!;
            if (was.mn !== undefined) r.min = r.min === null ? was.mn : Math.min(r.min, was.mn);
            if (was.mx !== undefined) r.max = r.max === null ? was.mx : Math.max(r.max, was.mx);
            try {
              await retryOnConflict(
                () =>
                  this.store.doc.send(
                    new PutCommand({
                      TableName: this.store.table,
                      Item: { ...rollupItem(metric, series, resolution, bucket, r), v: (was.v ?? 0) + 1 },
                      ConditionExpression: was.v === undefined ? 'attribute_not_exists(v)' : 'v = :v',
                      ...(was.v === undefined ? {} : { ExpressionAttributeValues: { ':v': was.v } }),
                    }),
                  ),
                { isConflict: isTransactionConflict },
              );
              written++;
            } catch (err) {
              if (!isConditionFailure(err)) throw err;
              lost = true;
            }
          }),
        );
      }
      // A late point was added since the versions were read: the whole bucket again (rewriting what this attempt wrote is harmless).
      if (!lost) return written;
    }
    throw new Error(`compaction of ${metric} at ${sk} kept losing to late points`);
  }

  /** Moves a compaction state's field from `from` to `to`; false when another run already moved it. */
  private advance(metric: string, field: 'hours_next' | 'days_next', from: number, to: number): Promise<boolean> {
    return this.updateIf({
      Key: compactionKey(metric),
      UpdateExpression: 'SET #f = :to',
      ConditionExpression: '#f = :from',
      ExpressionAttributeNames: { '#f': field },
      ExpressionAttributeValues: { ':from': from, ':to': to },
    });
  }

  /** Every metric name recorded so far. */
  async metrics(): Promise<string[]> {
    const out: string[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.store.doc.send(
        new QueryCommand({ TableName: this.store.table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': 'MCATALOG' }, ExclusiveStartKey: startKey }),
      );
      for (const i of page.Items ?? []) out.push(String(i.metric));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return out;
  }

  /** The registered series of a metric of one kind (`label`: one label each; `full`: a point's full label set). */
  async seriesList(metric: string, kind: 'label' | 'full', options: { consistent?: boolean } = {}): Promise<{ series: string; labels: Labels }[]> {
    const out: { series: string; labels: Labels }[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.store.doc.send(
        new QueryCommand({
          TableName: this.store.table,
          KeyConditionExpression: 'pk = :p AND begins_with(sk, :k)',
          ExpressionAttributeValues: { ':p': `MSERIES#${metric}`, ':k': kind === 'label' ? 'L:' : 'F:' },
          ExclusiveStartKey: startKey,
          ...(options.consistent ? { ConsistentRead: true } : {}),
        }),
      );
      for (const i of page.Items ?? []) out.push({ series: String(i.sk), labels: (i.labels ?? {}) as Labels });
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return out;
  }

  /**
   * The rollups of one series between two bucket starts (inclusive), by bucket start. Hours (days) that
   * compaction has not built yet are merged from their minutes (hours): see `CompactionState`. `state`
   * is the metric's, when the caller has read it.
   */
  async readSeries(
    metric: string,
    series: string,
    resolution: Resolution,
    start: number,
    end: number,
    state?: CompactionState | null,
  ): Promise<{ buckets: Map<number, Rollup>; itemsRead: number }> {
    const step = RESOLUTION_MS[resolution];
    // Buckets that start within [start, end]: the bounds as bucket starts.
    start = Math.ceil(start / step) * step;
    end = bucketStart(end, resolution);
    if (start > end) return { buckets: new Map(), itemsRead: 0 };
    if (resolution === 'minute') return this.readItems(metric, series, resolution, start, end);
    const known = state === undefined ? await this.compactionState(metric) : state;
    const built = known ? (resolution === 'hour' ? known.hoursNext : known.daysNext) : Infinity;
    const finer: Resolution = resolution === 'hour' ? 'minute' : 'hour';
    // The last two buckets before `built` may have been rewritten a moment ago: read consistently.
    const recent = Math.max(start, built - 2 * step);
    const parts = await Promise.all([
      start < Math.min(recent, end + step) ? this.readItems(metric, series, resolution, start, Math.min(recent - step, end)) : undefined,
      recent < built && recent <= end ? this.readItems(metric, series, resolution, recent, Math.min(built - step, end), true) : undefined,
      end >= built ? this.readSeries(metric, series, finer, Math.max(start, built), end + step - RESOLUTION_MS[finer], known) : undefined,
    ]);
    const out = { buckets: new Map<number, Rollup>(), itemsRead: 0 };
    for (const part of parts) {
      if (!part) continue;
      out.itemsRead += part.itemsRead;
      for (const [at, r] of part.buckets) {
        const bucket = bucketStart(at, resolution);
        const into = out.buckets.get(bucket);
        if (into) mergeRollup(into, r);
        else out.buckets.set(bucket, r);
      }
    }
    return out;
  }

  /** The rollup items of one series between two bucket starts (inclusive), as stored. */
  private async readItems(metric: string, series: string, resolution: Resolution, start: number, end: number, consistent = false): Promise<{ buckets: Map<number, Rollup>; itemsRead: number }> {
    const buckets = new Map<number, Rollup>();
    let itemsRead = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.store.doc.send(
        new QueryCommand({
          TableName: this.store.table,
          KeyConditionExpression: 'pk = :p AND sk BETWEEN :a AND :b',
          ExpressionAttributeValues: { ':p': rollupPk(resolution, metric, series), ':a': new Date(start).toISOString(), ':b': new Date(end).toISOString() },
          ExclusiveStartKey: startKey,
          ...(consistent ? { ConsistentRead: true } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        itemsRead++;
        const r = rollupOf({ ...item, s: item.s_sum });
        buckets.set(Date.parse(String(item.sk)), r);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return { buckets, itemsRead };
  }

  /**
   * The read primitive: rollups of `metric` between two bucket starts, filtered by exact labels and
   * grouped by labels, with the number of items read. Chooses the fewest series that answer exactly.
   */
  async readRollups(q: RollupRead): Promise<RollupResult> {
    const filter = q.labels ?? {};
    const groupBy = q.groupBy ?? [];
    const filterKeys = Object.keys(filter);
    let plan: { series: string; labels: Labels }[];
    if (!filterKeys.length && !groupBy.length) plan = [{ series: '*', labels: {} }];
    else if (filterKeys.length === 1 && !groupBy.length) plan = [{ series: `L:${filterKeys[0]}=${filter[filterKeys[0]]}`, labels: filter }];
    else if (!filterKeys.length && groupBy.length === 1) plan = (await this.seriesList(q.metric, 'label')).filter((s) => groupBy[0] in s.labels);
    else plan = (await this.seriesList(q.metric, 'full')).filter((s) => filterKeys.every((k) => s.labels[k] === filter[k]));
    const groups = new Map<string, RollupGroup>();
    let itemsRead = 0;
    const state = q.resolution === 'minute' ? null : await this.compactionState(q.metric);
    for (const s of plan) {
      const got = await this.readSeries(q.metric, s.series, q.resolution, q.start, q.end, state);
      itemsRead += got.itemsRead;
      const groupLabels = Object.fromEntries(groupBy.map((k) => [k, s.labels[k] ?? null]));
      const gk = JSON.stringify(groupLabels);
      let g = groups.get(gk);
      if (!g) groups.set(gk, (g = { labels: groupLabels, buckets: new Map() }));
      for (const [b, r] of got.buckets) {
        const into = g.buckets.get(b);
        if (into) mergeRollup(into, r);
        else g.buckets.set(b, r);
      }
    }
    if (!groupBy.length && !groups.size) groups.set('{}', { labels: {}, buckets: new Map() });
    return { groups: [...groups.values()], itemsRead, series: plan.map((s) => s.series) };
  }

  /**
   * Raw points of one metric (or of all, or of one user's) in a time range, newest first, one page.
   * `maxReads` bounds the reads a filtered page may take (see queryPage).
   */
  async listPoints(q: {
    metric?: string;
    user?: string;
    from: Date;
    to: Date;
    limit: number;
    startKey?: Record<string, unknown>;
    ascending?: boolean;
    maxReads?: number;
    filter?: { labels?: Labels; metric?: string };
  }): Promise<{ items: StoredPoint[]; lastKey?: Record<string, unknown> }> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':a': q.from.toISOString(), ':b': `${q.to.toISOString()}#~` };
    const conditions: string[] = [];
    let index: 'gsi1' | 'gsi2' | undefined;
    let keyCondition: string;
    if (q.user) {
      index = 'gsi2';
      keyCondition = 'gsi2pk = :p AND gsi2sk BETWEEN :a AND :b';
      values[':p'] = pointsOfUser(q.user);
      if (q.metric) {
        conditions.push('metric = :metric');
        values[':metric'] = q.metric;
      }
    } else if (q.metric) {
      keyCondition = 'pk = :p AND sk BETWEEN :a AND :b';
      values[':p'] = `METRIC#${q.metric}`;
    } else {
      index = 'gsi1';
      keyCondition = 'gsi1pk = :p AND gsi1sk BETWEEN :a AND :b';
      values[':p'] = ALL_POINTS;
    }
    Object.entries(q.filter?.labels ?? {}).forEach(([k, v], i) => {
      names[`#l${i}`] = k;
      values[`:l${i}`] = v;
      conditions.push(`labels.#l${i} = :l${i}`);
    });
    const page = await queryPage<Record<string, unknown>>(this.store, {
      index,
      keyCondition,
      names,
      values,
      filter: conditions.length ? conditions.join(' AND ') : undefined,
      limit: q.limit,
      ascending: q.ascending,
      startKey: q.startKey,
      maxReads: q.maxReads,
    });
    return {
      items: page.items.map((i) => ({
        point_id: String(i.point_id),
        metric: String(i.metric),
        value: Number(i.value),
        at: String(i.at),
        labels: (i.labels ?? {}) as Labels,
        recorded_at: String(i.recorded_at),
      })),
      lastKey: page.lastKey,
    };
  }
}
