import * as z from 'zod';
import { isoDate } from '../platform/api/schemas.js';
import { rangeMs, timeRange } from './model.js';

export const INSIGHT_KINDS = ['failure_rate_spike', 'latency_regression', 'cost_anomaly', 'provider_degradation', 'queue_backlog_growth', 'quota_near_exhaustion'] as const;

export const insightsQuery = z.strictObject({
  window: timeRange
    .default('24h')
    .refine((w) => rangeMs(w) <= 7 * 86_400_000, 'at most 7d (cost baselines read 8 windows)')
    .describe('The period looked at; compared with the one before it (default 24h, at most 7d)'),
  min_samples: z.coerce.number().int().min(5).max(100_000).default(20).describe('Points each side needs before a rate or latency is compared (default 20)'),
});
export type InsightsQuery = z.infer<typeof insightsQuery>;

export const insightView = z.object({
  kind: z.enum(INSIGHT_KINDS),
  severity: z.enum(['info', 'warning', 'critical']),
  subject: z.record(z.string(), z.string()).describe('What it is about, e.g. { task_type } or { provider }'),
  title: z.string(),
  evidence: z.object({
    metric: z.string(),
    value: z.number(),
    baseline: z.number(),
    threshold: z.number(),
    window: z.object({ start: isoDate, end: isoDate }),
    baseline_window: z.object({ start: isoDate, end: isoDate }),
    sample_size: z.number().int(),
    baseline_sample_size: z.number().int(),
    rule: z.string(),
  }),
  suggested_action: z.string(),
});
export type InsightView = z.infer<typeof insightView>;

export const insightsView = z.object({
  window: z.string(),
  generated_at: isoDate,
  scope: z.object({ tasks: z.enum(['all', 'own']), providers: z.literal('all'), system: z.literal('all') }),
  insights: z.array(insightView),
  checked: z.array(z.object({ kind: z.enum(INSIGHT_KINDS), subjects: z.number().int(), skipped_for_samples: z.number().int() })).describe('What was examined, including what had too few samples'),
  items_read: z.number().int(),
});
export type InsightsView = z.infer<typeof insightsView>;
