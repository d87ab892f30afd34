import * as z from 'zod';
import { isoDate, pageQuery } from '../platform/api/schemas.js';
import { AGGREGATIONS, LABEL_KEY, LABEL_VALUE, MAX_LABELS, METRIC_NAME, RESOLUTIONS, RESOLUTION_MS } from '../platform/metrics/store.js';

/** Namespaces of the platform's own metrics: /collect may not write into them. */
export const PLATFORM_NAMESPACES = ['task', 'provider', 'workflow', 'schedule', 'auth', 'realtime', 'system'] as const;
/** Metrics of this namespace describe the platform as a whole (no user): every analytics reader sees them. */
export const SYSTEM_NAMESPACE = 'system';

export const MAX_RANGE_MS = 365 * 86_400_000;
/** Buckets one answer may hold per series. */
export const MAX_BUCKETS = 1000;

export const metricName = z.string().regex(METRIC_NAME, 'lower-case dotted words, e.g. task.duration_ms');
const labelKey = z.string().regex(LABEL_KEY, 'label keys are lower-case words (a-z, 0-9, _), at most 32 characters');
const labelValue = z.string().regex(LABEL_VALUE, 'label values are 1-128 of A-Z a-z 0-9 _ . : / @ + -');
const labelsSchema = z.record(labelKey, labelValue).refine((l) => Object.keys(l).length <= MAX_LABELS, `at most ${MAX_LABELS} labels`);

/** "1h".."365d": hours or days. */
export const timeRange = z
  .string()
  .regex(/^[1-9]\d{0,3}[hd]$/, 'a number of hours or days, e.g. 1h, 24h, 7d, 365d')
  .refine((r) => rangeMs(r) <= MAX_RANGE_MS, 'at most 365d');

export function rangeMs(range: string): number {
  return Number(range.slice(0, -1)) * (range.endsWith('h') ? 3_600_000 : 86_400_000);
}

// ---------------------------------------------------------------- collect

export const collectBody = z.strictObject({
  event_id: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, '1-128 of A-Z a-z 0-9 _ . : -').describe('Your id of the event: the same id is recorded once'),
  metric_type: metricName.refine((m) => !PLATFORM_NAMESPACES.includes(m.split('.')[0] as never), {
    message: `the namespaces ${PLATFORM_NAMESPACES.join(', ')} are the platform's own metrics`,
  }),
  value: z.number().refine(Number.isFinite, 'must be a finite number'),
  timestamp: isoDate.optional().describe('When it happened (default: now); at most 5 minutes ahead, not older than the raw retention'),
  labels: labelsSchema
    .refine((l) => !('user' in l), 'the `user` label is set by the server (the caller)')
    .default({}),
});
export type CollectBody = z.infer<typeof collectBody>;

export const pointView = z.object({
  point_id: z.string(),
  metric_type: z.string(),
  value: z.number(),
  timestamp: isoDate,
  labels: z.record(z.string(), z.string()),
  recorded_at: isoDate,
});
export type PointView = z.infer<typeof pointView>;

export const collectView = z.object({
  recorded: z.boolean().describe('false: this event_id was recorded before; nothing was counted again'),
  point: pointView.omit({ point_id: true, recorded_at: true }),
});

// ---------------------------------------------------------------- query

export const queryBody = z
  .strictObject({
    metric_type: metricName,
    time_range: timeRange.optional().describe('Up to now; give this or start/end (default 24h)'),
    start: isoDate.optional(),
    end: isoDate.optional(),
    aggregation: z.enum(AGGREGATIONS).default('count'),
    filters: z
      .strictObject({
        labels: labelsSchema.optional(),
        value_range: z
          .strictObject({ min: z.number().optional(), max: z.number().optional() })
          .refine((v) => v.min !== undefined || v.max !== undefined, 'give min, max or both')
          .refine((v) => v.min === undefined || v.max === undefined || v.min <= v.max, { message: 'min must not exceed max', path: ['max'] })
          .optional()
          .describe('Only points in [min, max]: read from raw points (kept METRICS_RETENTION_DAYS), exact'),
      })
      .default({}),
    group_by: z
      .strictObject({
        bucket: z.enum(RESOLUTIONS).optional().describe('A series per time bucket'),
        labels: z.array(labelKey).max(3).refine((l) => new Set(l).size === l.length, 'labels must be unique').optional(),
      })
      .default({}),
    limit: z.number().int().min(1).max(1000).default(100).describe('Most groups answered (largest value first)'),
  })
  .superRefine((b, ctx) => {
    if (b.time_range && (b.start || b.end)) ctx.addIssue({ code: 'custom', path: ['time_range'], message: 'give time_range or start/end, not both' });
    if (!b.time_range && (b.start || b.end) && !(b.start && b.end)) ctx.addIssue({ code: 'custom', path: [b.start ? 'end' : 'start'], message: 'start and end go together' });
    if (b.start && b.end) {
      const span = Date.parse(b.end) - Date.parse(b.start);
      if (span <= 0) ctx.addIssue({ code: 'custom', path: ['end'], message: 'end must be after start' });
      else if (span > MAX_RANGE_MS) ctx.addIssue({ code: 'custom', path: ['start'], message: 'the range is at most 365 days' });
    }
    const span = b.start && b.end ? Date.parse(b.end) - Date.parse(b.start) : rangeMs(b.time_range ?? '24h');
    if (b.group_by.bucket && span / RESOLUTION_MS[b.group_by.bucket] > MAX_BUCKETS) {
      ctx.addIssue({ code: 'custom', path: ['group_by', 'bucket'], message: `more than ${MAX_BUCKETS} ${b.group_by.bucket} buckets in this range; choose a coarser bucket or a shorter range` });
    }
    for (const k of b.group_by.labels ?? []) {
      if (b.filters.labels && k in b.filters.labels) ctx.addIssue({ code: 'custom', path: ['group_by', 'labels'], message: `${k} is fixed by filters.labels; grouping by it gives one group` });
    }
  });
export type QueryBody = z.infer<typeof queryBody>;

const seriesPoint = z.object({ timestamp: isoDate, value: z.number().nullable(), count: z.number().int() });

export const queryView = z.object({
  metric_type: z.string(),
  aggregation: z.enum(AGGREGATIONS),
  resolution: z.enum([...RESOLUTIONS, 'raw']).describe('What was read: minute/hour/day rollups, or raw points (value_range)'),
  start: isoDate.describe('Start of the first bucket read (the range aligned down to the resolution)'),
  end: isoDate.describe('End of the last bucket read'),
  scope: z.enum(['all', 'own']).describe('own: only points labelled with the caller (without tasks:read_all), and system.* metrics'),
  items_read: z.number().int().describe('Table items read to answer'),
  series: z.array(
    z.object({
      labels: z.record(z.string(), z.string().nullable()),
      value: z.number().nullable().describe('The aggregation over the whole range'),
      count: z.number().int(),
      points: z.array(seriesPoint).optional().describe('Per bucket (with group_by.bucket)'),
    }),
  ),
});
export type QueryView = z.infer<typeof queryView>;

// ---------------------------------------------------------------- raw points

export const metricsQuery = z
  .strictObject({
    ...pageQuery,
    metric_type: metricName.optional(),
    from: isoDate.optional().describe('Default: 24 hours before `to`'),
    to: isoDate.optional().describe('Default: now'),
    label: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,31}=[A-Za-z0-9_.:/@+-]{1,128}$/, 'key=value')
      .optional()
      .describe('Only points with this label value'),
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) <= Date.parse(q.to), { message: 'from must not be later than to', path: ['to'] });
export type MetricsQuery = z.infer<typeof metricsQuery>;

// ---------------------------------------------------------------- summary

export const summaryQuery = z.strictObject({ window: timeRange.default('24h').describe('The window of the in-window figures (default 24h)') });

const quantiles = z.object({ count: z.number().int(), p50: z.number().nullable(), p95: z.number().nullable() });

export const summaryView = z.object({
  scope: z.enum(['all', 'own']),
  window: z.string(),
  generated_at: isoDate,
  tasks: z.object({
    created_today: z.number().int().describe('Since 00:00 UTC'),
    created_in_window: z.number().int(),
    finished_in_window: z.record(z.string(), z.number().int()).describe('By final status'),
    success_rate: z.number().nullable().describe('completed / (completed + failed) in the window; null when none finished'),
    duration_ms: quantiles,
    queue_wait_ms: quantiles,
  }),
  queue: z.object({
    pending: z.number().int(),
    queued: z.number().int(),
    running: z.number().int(),
    depth: z.number().int().describe('pending + queued: tasks waiting for a worker (platform-wide)'),
  }),
  running_workflows: z.number().int().describe('Platform-wide'),
  today: z.object({ cost_usd: z.number(), tokens_in: z.number(), tokens_out: z.number() }),
  health: z.object({
    score: z.number().nullable().describe('0-100; null when no input has data'),
    formula: z.string(),
    inputs: z.record(z.string(), z.number().nullable()),
    weights: z.record(z.string(), z.number()),
  }),
  items_read: z.number().int(),
});
export type SummaryView = z.infer<typeof summaryView>;
