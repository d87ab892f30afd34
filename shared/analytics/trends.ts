/** Forecast of one metric from its hour or day rollups (shared/analytics/forecast.ts does the maths). */
import type { Deps } from '../platform/runtime.js';
import type { Principal } from '../platform/principal.js';
import { aggregateOf, bucketStart, RESOLUTION_MS } from '../platform/metrics/store.js';
import { metricsStore } from './repo.js';
import { rangeMs } from './model.js';
import { scopedLabels } from './service.js';
import { backtest, chooseModel, forecast, Z95 } from './forecast.js';
import { MIN_HISTORY_POINTS, type TrendQuery, type TrendView } from './trends-model.js';

const ADDITIVE = new Set(['count', 'sum', 'rate']);

/** The regular series of a metric: one value per complete bucket from the first bucket with data. */
export async function bucketSeries(
  deps: Deps,
  principal: Principal,
  metric: string,
  q: { bucket: 'minute' | 'hour' | 'day'; aggregation: TrendQuery['aggregation']; from: number; labels?: Record<string, string> },
) {
  const { labels, scope } = scopedLabels(principal, metric, q.labels);
  const now = deps.clock.now().getTime();
  const step = RESOLUTION_MS[q.bucket];
  const current = bucketStart(now, q.bucket);
  const start = bucketStart(q.from, q.bucket);
  const read = await metricsStore(deps).readRollups({ metric, resolution: q.bucket, start, end: current - step, labels });
  const buckets = read.groups[0]?.buckets ?? new Map();
  const times: number[] = [];
  const raw: (number | null)[] = [];
  let first: number | undefined;
  for (let t = start; t < current; t += step) {
    const r = buckets.get(t);
    if (first === undefined && !r?.count) continue;
    first ??= t;
    times.push(t);
    raw.push(r?.count ? aggregateOf(r, q.aggregation, step / 1000) : ADDITIVE.has(q.aggregation) ? 0 : null);
  }
  // Gaps of non-additive figures: linear interpolation between their neighbours (the last point is always data-backed or additive).
  let filled = 0;
  const interpolated: boolean[] = raw.map((v) => v === null);
  while (raw.length && raw[raw.length - 1] === null) {
    raw.pop();
    times.pop();
    interpolated.pop();
  }
  const values = raw.map((v, i) => {
    if (v !== null) return v;
    filled++;
    let a = i - 1;
    while (raw[a] === null) a--;
    let b = i + 1;
    while (raw[b] === null) b++;
    return raw[a]! + ((raw[b]! - raw[a]!) * (i - a)) / (b - a);
  });
  return { times, values, interpolated, filled, scope, itemsRead: read.itemsRead, current, step };
}

export async function trend(deps: Deps, principal: Principal, metric: string, q: TrendQuery): Promise<TrendView> {
  const now = deps.clock.now().getTime();
  const s = await bucketSeries(deps, principal, metric, { bucket: q.bucket, aggregation: q.aggregation, from: now - rangeMs(q.history) });
  const horizon = Math.ceil((q.prediction_hours * 3_600_000) / s.step);
  const period = q.bucket === 'hour' ? 24 : 7;
  const need = Math.max(MIN_HISTORY_POINTS, 2 * horizon);
  const base = {
    metric_type: metric,
    aggregation: q.aggregation,
    bucket: q.bucket,
    scope: s.scope,
    history: {
      start: s.times.length ? new Date(s.times[0]).toISOString() : null,
      end: new Date(s.current).toISOString(),
      points: s.values.length,
      filled_buckets: s.filled,
      values: s.values.map((v, i) => ({ timestamp: new Date(s.times[i]).toISOString(), value: v })),
    },
    interval_level: 0.95,
    items_read: s.itemsRead,
  };
  if (s.values.length < need) {
    return {
      ...base,
      status: 'insufficient_data',
      needed: {
        points: need,
        have: s.values.length,
        message: `a ${q.prediction_hours}-hour forecast at ${q.bucket} buckets needs ${need} complete buckets of history (at least ${MIN_HISTORY_POINTS} and twice the horizon); ${s.values.length} found in ${q.history}`,
      },
      method: null,
      parameters: null,
      season: null,
      residual_sigma: null,
      forecast: [],
      backtest: null,
    };
  }
  const { fit, season } = chooseModel(s.values, period);
  const lastEnd = s.times[s.times.length - 1] + s.step;
  const fc = forecast(fit, horizon, Z95);
  return {
    ...base,
    status: 'ok',
    needed: null,
    method: fit.method,
    parameters: { alpha: fit.alpha, beta: fit.beta, gamma: fit.gamma, season: fit.season },
    season,
    residual_sigma: fit.sigma,
    forecast: fc.map((p, i) => ({ timestamp: new Date(lastEnd + i * s.step).toISOString(), value: p.value, lower: p.lower, upper: p.upper })),
    backtest: backtest(s.values, horizon, fit.method, period),
  };
}
