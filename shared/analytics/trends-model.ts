import * as z from 'zod';
import { isoDate } from '../platform/api/schemas.js';
import { AGGREGATIONS } from '../platform/metrics/store.js';
import { metricName, rangeMs, timeRange } from './model.js';

export const TREND_BUCKETS = ['hour', 'day'] as const;
/** A forecast needs at least this many buckets of history, and twice its horizon. */
export const MIN_HISTORY_POINTS = 24;
export const MAX_TREND_BUCKETS = 1000;
const BUCKET_MS = { hour: 3_600_000, day: 86_400_000 } as const;

export const trendParams = z.strictObject({ metric_type: metricName });

export const trendQuery = z
  .strictObject({
    prediction_hours: z.coerce.number().int().min(1).max(720).default(24).describe('How far ahead (1-720 hours, default 24)'),
    history: timeRange.default('7d').describe('History read to fit the model, up to the current bucket (default 7d)'),
    bucket: z.enum(TREND_BUCKETS).default('hour').describe('Spacing of the series; the season looked for is daily (24) for hours, weekly (7) for days'),
    aggregation: z.enum(AGGREGATIONS).default('sum').describe('Figure per bucket (default sum; count/sum/rate buckets without points are 0, others are interpolated)'),
  })
  .superRefine((q, ctx) => {
    const buckets = rangeMs(q.history) / BUCKET_MS[q.bucket];
    if (buckets > MAX_TREND_BUCKETS) ctx.addIssue({ code: 'custom', path: ['history'], message: `more than ${MAX_TREND_BUCKETS} ${q.bucket} buckets; choose bucket=day or a shorter history` });
    if (buckets < 2) ctx.addIssue({ code: 'custom', path: ['history'], message: `shorter than two ${q.bucket} buckets` });
    if (q.bucket === 'hour' && q.history.endsWith('d') && Number(q.history.slice(0, -1)) > 400) ctx.addIssue({ code: 'custom', path: ['history'], message: 'hour rollups are kept 400 days' });
  });
export type TrendQuery = z.infer<typeof trendQuery>;

const point = z.object({ timestamp: isoDate, value: z.number() });

export const trendView = z.object({
  metric_type: z.string(),
  aggregation: z.enum(AGGREGATIONS),
  bucket: z.enum(TREND_BUCKETS),
  scope: z.enum(['all', 'own']),
  status: z.enum(['ok', 'insufficient_data']),
  history: z.object({
    start: isoDate.nullable(),
    end: isoDate.describe('End of the last complete bucket (the current bucket is not used)'),
    points: z.number().int(),
    filled_buckets: z.number().int().describe('Buckets without points, interpolated (non-additive aggregations)'),
    values: z.array(point),
  }),
  needed: z
    .object({ points: z.number().int(), have: z.number().int(), message: z.string() })
    .nullable()
    .describe('With insufficient_data: how much history is needed'),
  method: z.enum(['holt', 'holt_winters']).nullable(),
  parameters: z.object({ alpha: z.number(), beta: z.number(), gamma: z.number().nullable(), season: z.number().int().nullable() }).nullable(),
  season: z
    .object({ period: z.number().int(), detected: z.boolean(), acf: z.number().nullable().describe('Autocorrelation of the differenced series at the season lag'), bound: z.number().nullable() })
    .nullable(),
  interval_level: z.number(),
  residual_sigma: z.number().nullable(),
  forecast: z.array(point.extend({ lower: z.number(), upper: z.number() })),
  backtest: z
    .object({
      holdout: z.number().int().describe('Latest buckets held out'),
      mape: z.number().nullable().describe('Percent; null when a held-out value is 0'),
      mase: z.number().nullable().describe('Against the naive (seasonal naive for holt_winters) one-step error in the training part'),
      coverage: z.number().describe('Share of held-out values inside the 95 % intervals'),
    })
    .nullable(),
  items_read: z.number().int(),
});
export type TrendView = z.infer<typeof trendView>;
