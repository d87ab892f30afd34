import * as z from 'zod';
import { isoDate } from '../platform/api/schemas.js';
import { RESOLUTIONS } from '../platform/metrics/store.js';
import { providerIdSchema } from '../providers/model.js';
import { timeRange } from './model.js';

/** Below this many finished tasks (per side) nothing is suggested or ranked, unless the caller asks for more. */
export const DEFAULT_MIN_SAMPLES = 20;
export const MIN_SAMPLES_FLOOR = 5;

const minSamples = z.coerce
  .number()
  .int()
  .min(MIN_SAMPLES_FLOOR)
  .max(100_000)
  .default(DEFAULT_MIN_SAMPLES)
  .describe(`Finished tasks each side needs before it is compared (default ${DEFAULT_MIN_SAMPLES}, at least ${MIN_SAMPLES_FLOOR})`);

export const providerRangeQuery = z.strictObject({ time_range: timeRange.default('7d').describe('Up to now (default 7d)') });

export const providerParams = z.strictObject({ provider_id: providerIdSchema });

export const providerSeriesQuery = z.strictObject({
  time_range: timeRange.default('24h').describe('Up to now (default 24h)'),
  bucket: z.enum(RESOLUTIONS).optional().describe('Bucket of the series (default: hour up to 7 days, else day)'),
});

export const costOptimizationQuery = z.strictObject({
  time_range: timeRange.default('30d').describe('Observation window (default 30d)'),
  min_samples: minSamples,
  max_success_drop: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.02)
    .describe('A target may succeed at most this much less often than the current choice (absolute, default 0.02)'),
});

export const comparisonQuery = z.strictObject({ time_range: timeRange.default('7d').describe('Up to now (default 7d)'), min_samples: minSamples });

const quantiles = z.object({ count: z.number().int(), p50: z.number().nullable(), p95: z.number().nullable() });

export const providerFigures = z.object({
  provider_id: z.string(),
  model: z.string().nullable(),
  requests: z.number().int().describe('Provider calls (one per attempt), every outcome'),
  calls_by_outcome: z.record(z.string(), z.number().int()),
  success_rate: z.number().nullable().describe('completed calls / calls that ended (cancelled excluded); null without calls'),
  latency_ms: quantiles,
  time_to_first_token_ms: quantiles.describe('From provider.ttft_ms points where a provider reports them; count 0 and nulls otherwise'),
  tasks_finished: z.number().int(),
  tasks_completed: z.number().int(),
  tokens_in: z.number(),
  tokens_out: z.number(),
  cost_usd: z.number(),
  cost_per_successful_task_usd: z.number().nullable().describe('cost of every finished task / completed tasks; null without a completed task'),
});
export type ProviderFigures = z.infer<typeof providerFigures>;

const scopeView = z.object({
  calls: z.literal('all').describe('Provider calls are provider-level figures, read platform-wide'),
  tasks: z.enum(['all', 'own']).describe('own: tokens, cost and task counts of the caller’s own tasks (without tasks:read_all)'),
});

export const dashboardView = z.object({
  time_range: z.string(),
  start: isoDate,
  end: isoDate,
  resolution: z.enum(RESOLUTIONS),
  scope: scopeView,
  providers: z.array(providerFigures),
  totals: providerFigures.omit({ provider_id: true, model: true }),
  items_read: z.number().int(),
});
export type DashboardView = z.infer<typeof dashboardView>;

const bucketPoint = z.object({
  timestamp: isoDate,
  requests: z.number().int(),
  success_rate: z.number().nullable(),
  latency_p50_ms: z.number().nullable(),
  latency_p95_ms: z.number().nullable(),
  tasks_finished: z.number().int(),
  tokens_in: z.number(),
  tokens_out: z.number(),
  cost_usd: z.number(),
});

export const providerSeriesView = z.object({
  provider_id: z.string(),
  time_range: z.string(),
  bucket: z.enum(RESOLUTIONS),
  start: isoDate,
  end: isoDate,
  scope: scopeView,
  totals: providerFigures.omit({ provider_id: true, model: true }),
  models: z.array(providerFigures),
  series: z.array(bucketPoint),
  items_read: z.number().int(),
});
export type ProviderSeriesView = z.infer<typeof providerSeriesView>;

const candidate = z.object({
  provider_id: z.string(),
  model: z.string().nullable(),
  tasks_finished: z.number().int().describe('Sample size'),
  success_rate: z.number(),
  cost_per_task_usd: z.number(),
  cost_per_successful_task_usd: z.number(),
});

export const costOptimizationView = z.object({
  time_range: z.string(),
  min_samples: z.number().int(),
  max_success_drop: z.number(),
  scope: z.enum(['all', 'own']),
  method: z.string(),
  suggestions: z.array(
    z.object({
      task_type: z.string(),
      from: candidate,
      to: candidate,
      monthly_tasks: z.number().describe('Observed volume of the task type on `from`, scaled to 30 days'),
      expected_monthly_saving_usd: z.number(),
      saving_percent: z.number(),
    }),
  ),
  considered: z.array(
    z.object({ task_type: z.string(), candidates: z.array(candidate), skipped: z.array(z.object({ provider_id: z.string(), model: z.string().nullable(), tasks_finished: z.number().int(), reason: z.string() })) }),
  ),
  items_read: z.number().int(),
});
export type CostOptimizationView = z.infer<typeof costOptimizationView>;

const ranked = z.object({ rank: z.number().int(), provider_id: z.string(), model: z.string().nullable(), value: z.number(), sample_size: z.number().int() });

export const comparisonView = z.object({
  time_range: z.string(),
  min_samples: z.number().int(),
  scope: scopeView,
  table: z.array(providerFigures.extend({ health_score: z.number().nullable(), eligible: z.boolean().describe('Enough samples to be ranked') })),
  rankings: z.object({
    fastest: z.array(ranked).describe('p50 latency, ascending; sample = calls'),
    most_reliable: z.array(ranked).describe('call success rate, descending; sample = calls'),
    cheapest_per_success: z.array(ranked).describe('cost per successful task, ascending; sample = finished tasks'),
    healthiest: z.array(ranked).describe('health score, descending; sample = calls'),
  }),
  health_formula: z.string(),
  items_read: z.number().int(),
});
export type ComparisonView = z.infer<typeof comparisonView>;
