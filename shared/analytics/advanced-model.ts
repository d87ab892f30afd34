import * as z from 'zod';
import { csv, isoDate } from '../platform/api/schemas.js';
import { AGGREGATIONS, METRIC_NAME } from '../platform/metrics/store.js';
import { metricName, rangeMs, timeRange } from './model.js';

/** `metric` or `metric:aggregation` (default per metric below, else sum). */
export const metricSpec = z
  .string()
  .refine((s) => {
    const [m, a, ...rest] = s.split(':');
    return METRIC_NAME.test(m) && (a === undefined || (AGGREGATIONS as readonly string[]).includes(a)) && !rest.length;
  }, `a metric name, optionally with :aggregation (${AGGREGATIONS.join(', ')}), e.g. task.duration_ms:p95`)
  .transform((s) => {
    const [metric, aggregation] = s.split(':') as [string, (typeof AGGREGATIONS)[number] | undefined];
    return { metric, aggregation: aggregation ?? DEFAULT_AGGREGATION[metric] ?? 'sum' };
  });
export type MetricSpec = z.output<typeof metricSpec>;

export const DEFAULT_AGGREGATION: Record<string, (typeof AGGREGATIONS)[number]> = {
  'task.finished': 'count',
  'task.created': 'count',
  'task.duration_ms': 'p95',
  'task.queue_wait_ms': 'p95',
  'task.cost_usd': 'sum',
  'provider.calls': 'count',
  'provider.latency_ms': 'p95',
  'system.tasks_pending': 'avg',
  'system.tasks_queued': 'avg',
  'system.tasks_running': 'avg',
};
export const DEFAULT_METRICS = ['task.finished', 'task.duration_ms', 'task.cost_usd', 'provider.latency_ms', 'system.tasks_pending'];
const specs = csv(metricSpec).refine((a) => a.length >= 1 && a.length <= 10, '1 to 10 metrics');

// ---------------------------------------------------------------- real-time

export const realTimeQuery = z.strictObject({
  metric_types: specs.optional().describe(`Comma-separated metric[:aggregation] (default ${DEFAULT_METRICS.join(',')})`),
  window_minutes: z.coerce.number().int().min(30).max(1440).default(120).describe('Trailing minutes read (default 120)'),
  prediction_minutes: z.coerce.number().int().min(1).max(60).default(15).describe('How many minutes ahead each forecast reaches (default 15)'),
  check_last: z.coerce.number().int().min(1).max(30).default(5).describe('How many latest minutes are checked for anomalies (default 5)'),
  z_threshold: z.coerce.number().min(2).max(10).default(3.5).describe('Robust z-score above which a value is an anomaly (default 3.5)'),
});

const band = z.object({ median: z.number(), lower: z.number(), upper: z.number() });
const anomaly = z.object({
  timestamp: isoDate,
  value: z.number(),
  band,
  score: z.number().nullable().describe('(value − median) / (MAD / 0.6745); null when the baseline is constant (any other value is then flagged)'),
  baseline_size: z.number().int(),
});

export const realTimeView = z.object({
  generated_at: isoDate,
  window: z.object({ start: isoDate, end: isoDate, bucket: z.literal('minute') }),
  z_threshold: z.number(),
  metrics: z.array(
    z.object({
      metric_type: z.string(),
      aggregation: z.enum(AGGREGATIONS),
      scope: z.enum(['all', 'own']),
      latest: z.object({ timestamp: isoDate, value: z.number() }).nullable().describe('The last complete minute with data'),
      points: z.number().int(),
      prediction: z.object({
        status: z.enum(['ok', 'insufficient_data']),
        method: z.enum(['holt', 'holt_winters']).nullable(),
        needed: z.number().int().nullable(),
        values: z.array(z.object({ timestamp: isoDate, value: z.number(), lower: z.number(), upper: z.number() })),
      }),
      anomalies: z.array(anomaly),
    }),
  ),
  items_read: z.number().int(),
});
export type RealTimeView = z.infer<typeof realTimeView>;

// ---------------------------------------------------------------- advanced insights

export const advancedInsightsQuery = z.strictObject({
  time_range: timeRange
    .default('24h')
    .refine((r) => rangeMs(r) <= 30 * 86_400_000, 'at most 30d')
    .describe('Up to now (default 24h; minute buckets up to 6h, hours beyond)'),
  metric_types: specs.optional().describe('Comma-separated metric[:aggregation]'),
  alpha: z.coerce.number().min(0.0001).max(0.1).default(0.01).describe('Significance each finding must reach (default 0.01)'),
});

export const advancedInsightsView = z.object({
  time_range: z.string(),
  bucket: z.enum(['minute', 'hour']),
  start: isoDate,
  end: isoDate,
  alpha: z.number(),
  anomalies: z.array(
    anomaly.extend({
      metric_type: z.string(),
      aggregation: z.string(),
      confidence: z.number().describe('1 − Bonferroni-adjusted two-sided p of the robust z over the series’ points'),
    }),
  ),
  change_points: z.array(
    z.object({
      metric_type: z.string(),
      aggregation: z.string(),
      timestamp: isoDate,
      before_mean: z.number(),
      after_mean: z.number(),
      statistic: z.number().nullable(),
      confidence: z.number().describe('1 − p of the CUSUM peak (Kolmogorov approximation)'),
      sample_size: z.number().int(),
      method: z.literal('cusum'),
    }),
  ),
  correlations: z.array(
    z.object({
      metrics: z.tuple([z.string(), z.string()]),
      r: z.number(),
      sample_size: z.number().int(),
      p_value: z.number(),
      confidence: z.number(),
      method: z.literal('pearson'),
    }),
  ),
  series_examined: z.array(z.object({ metric_type: z.string(), aggregation: z.string(), points: z.number().int() })),
  items_read: z.number().int(),
});
export type AdvancedInsightsView = z.infer<typeof advancedInsightsView>;

// ---------------------------------------------------------------- export

export const EXPORT_FORMATS = ['json', 'csv', 'xlsx'] as const;
export const MAX_EXPORT_POINTS = 100_000;

export const exportQuery = z.strictObject({
  format: z.enum(EXPORT_FORMATS).default('json'),
  time_range: timeRange.default('24h').describe('Up to now; raw points are kept METRICS_RETENTION_DAYS'),
  metric_types: csv(metricName).refine((a) => a.length >= 1 && a.length <= 50, '1 to 50 metrics').optional().describe('Comma-separated metric names (default: every metric)'),
});

export const exportPoint = z.object({
  timestamp: isoDate,
  metric_type: z.string(),
  value: z.number(),
  labels: z.record(z.string(), z.string()),
  point_id: z.string(),
  recorded_at: isoDate,
});

export const exportMetadata = z.object({
  generated_at: isoDate,
  generated_by: z.string(),
  format: z.enum(EXPORT_FORMATS),
  time_range: z.string(),
  start: isoDate,
  end: isoDate,
  metric_types: z.array(z.string()).nullable(),
  scope: z.enum(['all', 'own']),
  point_count: z.number().int(),
  categories: z.record(z.string(), z.number().int()).describe('Points per metric namespace (one XLSX sheet each)'),
  columns: z.array(z.string()),
});

export const exportView = z.object({ export_metadata: exportMetadata, points: z.array(exportPoint) });
export type ExportView = z.infer<typeof exportView>;

export const exportLinkView = z.object({
  export_metadata: exportMetadata,
  download: z
    .object({
      url: z.string().describe('GET it (no Authorization header) until expires_at: a presigned S3 URL on AWS, a signed link of the local runtime locally'),
      expires_at: isoDate,
      content_type: z.string(),
      filename: z.string(),
      bytes: z.number().int().describe('Size of the file'),
    })
    .describe('The export was larger than EXPORT_INLINE_MAX_BYTES (default 5 MiB): the file is in object storage'),
});
export type ExportLinkView = z.infer<typeof exportLinkView>;
export const exportAnswer = z.union([exportView, exportLinkView]);

// ---------------------------------------------------------------- dashboard data

export const dashboardDataQuery = z.strictObject({
  time_range: timeRange
    .default('24h')
    .refine((r) => rangeMs(r) <= 180 * 86_400_000, 'at most 180d')
    .describe('Up to now (default 24h); compared with the period before it'),
});

export const DASHBOARD_FIGURES = [
  { key: 'tasks_finished', metric: 'task.finished', aggregation: 'count' },
  { key: 'task_duration_p95_ms', metric: 'task.duration_ms', aggregation: 'p95' },
  { key: 'cost_usd', metric: 'task.cost_usd', aggregation: 'sum' },
  { key: 'provider_calls', metric: 'provider.calls', aggregation: 'count' },
] as const;

export const dashboardDataView = z.object({
  time_range: z.string(),
  generated_at: isoDate,
  bucket: z.enum(['minute', 'hour', 'day']),
  summary: z.record(z.string(), z.unknown()).describe('As GET /api/v1/analytics/summary with window = time_range'),
  series: z.array(z.object({ key: z.string(), metric_type: z.string(), aggregation: z.string(), points: z.array(z.object({ timestamp: isoDate, value: z.number().nullable(), count: z.number().int() })) })),
  trends: z.array(
    z.object({
      key: z.string(),
      current: z.number().nullable(),
      previous: z.number().nullable(),
      change: z.number().nullable().describe('current − previous'),
      change_percent: z.number().nullable().describe('null when previous is 0 or null'),
      current_count: z.number().int(),
      previous_count: z.number().int(),
    }),
  ),
  top_failing_task_types: z.array(z.object({ task_type: z.string(), failed: z.number().int(), finished: z.number().int(), failure_rate: z.number() })),
  providers: z.record(z.string(), z.unknown()).describe('As GET /api/v1/analytics/providers/performance-comparison (min_samples 5)'),
  open_alerts: z.null().describe('null: alert rules live in the monitoring function, not deployed with this build'),
  items_read: z.number().int(),
});
export type DashboardDataView = z.infer<typeof dashboardDataView>;
