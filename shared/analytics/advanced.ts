/**
 * Advanced analytics over the metrics store: real-time values with short-horizon forecasts and
 * robust anomaly flags, anomalies / change points / correlations over a range, and one-call dashboard data.
 */
import { errorFunction, sampleCorrelation } from 'simple-statistics';
import type { Deps } from '../platform/runtime.js';
import type { Principal } from '../platform/principal.js';
import { RESOLUTION_MS } from '../platform/metrics/store.js';
import { chooseModel, forecast } from './forecast.js';
import { cusumChangePoint, robustBand, robustScore } from './detect.js';
import { bucketSeries } from './trends.js';
import { rangeMs } from './model.js';
import { DASHBOARD_FIGURES, DEFAULT_METRICS, metricSpec, type AdvancedInsightsView, type DashboardDataView, type MetricSpec, type RealTimeView } from './advanced-model.js';
import { runQuery, summary } from './service.js';
import { performanceComparison } from './providers.js';
import type { QueryBody } from './model.js';
import { MIN_HISTORY_POINTS } from './trends-model.js';

/** Anomaly checks need at least this many baseline points. */
export const MIN_BASELINE = 10;

const defaults = (): MetricSpec[] => DEFAULT_METRICS.map((m) => metricSpec.parse(m));
const iso = (t: number) => new Date(t).toISOString();
const finite = (v: number) => (Number.isFinite(v) ? v : null);

export async function realTime(
  deps: Deps,
  principal: Principal,
  q: { metric_types?: MetricSpec[]; window_minutes: number; prediction_minutes: number; check_last: number; z_threshold: number },
): Promise<RealTimeView> {
  const now = deps.clock.now().getTime();
  const from = now - q.window_minutes * 60_000;
  let itemsRead = 0;
  const metrics: RealTimeView['metrics'] = [];
  for (const spec of q.metric_types ?? defaults()) {
    const s = await bucketSeries(deps, principal, spec.metric, { bucket: 'minute', aggregation: spec.aggregation, from });
    itemsRead += s.itemsRead;
    const n = s.values.length;
    const anomalies: RealTimeView['metrics'][number]['anomalies'] = [];
    for (let j = Math.max(MIN_BASELINE, n - q.check_last); j < n; j++) {
      // An interpolated gap is not a measurement: it is never flagged.
      if (s.interpolated[j]) continue;
      const baseline = s.values.slice(0, j);
      const b = robustBand(baseline);
      const score = robustScore(s.values[j], b);
      const scale = b.mad / 0.6745;
      const lower = scale > 0 ? b.median - q.z_threshold * scale : b.lower;
      const upper = scale > 0 ? b.median + q.z_threshold * scale : b.upper;
      if (Math.abs(score) > q.z_threshold) {
        anomalies.push({ timestamp: iso(s.times[j]), value: s.values[j], band: { median: b.median, lower, upper }, score: finite(score), baseline_size: baseline.length });
      }
    }
    let prediction: RealTimeView['metrics'][number]['prediction'] = { status: 'insufficient_data', method: null, needed: MIN_HISTORY_POINTS, values: [] };
    if (n >= MIN_HISTORY_POINTS) {
      const { fit } = chooseModel(s.values, 60);
      const last = s.times[n - 1] + s.step;
      prediction = {
        status: 'ok',
        method: fit.method,
        needed: null,
        values: forecast(fit, q.prediction_minutes).map((p, i) => ({ timestamp: iso(last + i * s.step), value: p.value, lower: p.lower, upper: p.upper })),
      };
    }
    metrics.push({
      metric_type: spec.metric,
      aggregation: spec.aggregation,
      scope: s.scope,
      latest: n ? { timestamp: iso(s.times[n - 1]), value: s.values[n - 1] } : null,
      points: n,
      prediction,
      anomalies,
    });
  }
  const end = Math.floor(now / 60_000) * 60_000;
  return { generated_at: iso(now), window: { start: iso(end - q.window_minutes * 60_000), end: iso(end), bucket: 'minute' }, z_threshold: q.z_threshold, metrics, items_read: itemsRead };
}

/** Two-sided normal p: 1 − erf(|z|/√2) (simple-statistics' table of Φ stops at 0.999, too coarse here). */
const twoSidedP = (z: number) => Math.max(0, Math.min(1, 1 - errorFunction(Math.abs(z) / Math.SQRT2)));

export async function advancedInsights(
  deps: Deps,
  principal: Principal,
  q: { time_range: string; metric_types?: MetricSpec[]; alpha: number },
): Promise<AdvancedInsightsView> {
  const now = deps.clock.now().getTime();
  const span = rangeMs(q.time_range);
  const bucket = span <= 6 * 3_600_000 ? 'minute' : 'hour';
  const from = now - span;
  let itemsRead = 0;
  const series: { spec: MetricSpec; times: number[]; values: number[] }[] = [];
  for (const spec of q.metric_types ?? defaults()) {
    const s = await bucketSeries(deps, principal, spec.metric, { bucket, aggregation: spec.aggregation, from });
    itemsRead += s.itemsRead;
    series.push({ spec, times: s.times, values: s.values });
  }
  const anomalies: AdvancedInsightsView['anomalies'] = [];
  const changePoints: AdvancedInsightsView['change_points'] = [];
  for (const { spec, times, values } of series) {
    if (values.length < MIN_BASELINE + 1) continue;
    const b = robustBand(values);
    values.forEach((v, i) => {
      const score = robustScore(v, b);
      // Bonferroni over the series' points: a longer series needs a larger score.
      const p = Number.isFinite(score) ? Math.min(1, twoSidedP(score) * values.length) : 0;
      if (p < q.alpha) {
        anomalies.push({ metric_type: spec.metric, aggregation: spec.aggregation, timestamp: iso(times[i]), value: v, band: { median: b.median, lower: b.lower, upper: b.upper }, score: finite(score), baseline_size: values.length, confidence: 1 - p });
      }
    });
    const cp = cusumChangePoint(values, 5, q.alpha);
    if (cp) changePoints.push({ metric_type: spec.metric, aggregation: spec.aggregation, timestamp: iso(times[cp.index]), before_mean: cp.before_mean, after_mean: cp.after_mean, statistic: finite(cp.statistic), confidence: cp.confidence, sample_size: values.length, method: 'cusum' });
  }
  const correlations: AdvancedInsightsView['correlations'] = [];
  for (let a = 0; a < series.length; a++) {
    for (let c = a + 1; c < series.length; c++) {
      const byTime = new Map(series[c].times.map((t, i) => [t, series[c].values[i]]));
      const xs: number[] = [];
      const ys: number[] = [];
      series[a].times.forEach((t, i) => {
        const y = byTime.get(t);
        if (y !== undefined) {
          xs.push(series[a].values[i]);
          ys.push(y);
        }
      });
      if (xs.length < MIN_BASELINE) continue;
      const r = sampleCorrelation(xs, ys);
      if (!Number.isFinite(r)) continue;
      // Fisher's z: atanh(r)·√(n − 3) is about standard normal without correlation.
      const z = Math.atanh(Math.max(-0.999999, Math.min(0.999999, r))) * Math.sqrt(xs.length - 3);
      const p = twoSidedP(z);
      if (p < q.alpha) correlations.push({ metrics: [`${series[a].spec.metric}:${series[a].spec.aggregation}`, `${series[c].spec.metric}:${series[c].spec.aggregation}`], r, sample_size: xs.length, p_value: p, confidence: 1 - p, method: 'pearson' });
    }
  }
  const step = RESOLUTION_MS[bucket];
  const end = Math.floor(now / step) * step;
  return {
    time_range: q.time_range,
    bucket,
    start: iso(Math.floor(from / step) * step),
    end: iso(end),
    alpha: q.alpha,
    anomalies,
    change_points: changePoints,
    correlations,
    series_examined: series.map((s) => ({ metric_type: s.spec.metric, aggregation: s.spec.aggregation, points: s.values.length })),
    items_read: itemsRead,
  };
}

export async function dashboardData(deps: Deps, principal: Principal, range: string): Promise<DashboardDataView> {
  const now = deps.clock.now().getTime();
  const span = rangeMs(range);
  const bucket = span <= 6 * 3_600_000 ? 'minute' : span <= 30 * 86_400_000 ? 'hour' : 'day';
  let itemsRead = 0;
  const q = (metric: string, aggregation: QueryBody['aggregation'], extra: Partial<QueryBody>) =>
    runQuery(deps, principal, { metric_type: metric, aggregation, filters: {}, group_by: {}, limit: 1000, ...extra } as QueryBody).then((r) => {
      itemsRead += r.items_read;
      return r;
    });
  const cur = { start: iso(now - span), end: iso(now) };
  const prev = { start: iso(now - 2 * span), end: iso(now - span) };
  const [sum, series, trends, failing, providers] = await Promise.all([
    summary(deps, principal, range),
    Promise.all(DASHBOARD_FIGURES.map(async (f) => ({ key: f.key, metric_type: f.metric, aggregation: f.aggregation, points: (await q(f.metric, f.aggregation, { time_range: range, group_by: { bucket } })).series[0]?.points ?? [] }))),
    Promise.all(
      DASHBOARD_FIGURES.map(async (f) => {
        const [c, p] = await Promise.all([q(f.metric, f.aggregation, cur), q(f.metric, f.aggregation, prev)]);
        const current = c.series[0]?.value ?? null;
        const previous = p.series[0]?.value ?? null;
        const change = current !== null && previous !== null ? current - previous : null;
        return { key: f.key, current, previous, change, change_percent: change !== null && previous ? (100 * change) / previous : null, current_count: c.series[0]?.count ?? 0, previous_count: p.series[0]?.count ?? 0 };
      }),
    ),
    q('task.finished', 'count', { time_range: range, group_by: { labels: ['task_type', 'status'] } }),
    performanceComparison(deps, principal, { time_range: range, min_samples: 5 }),
  ]);
  const byType = new Map<string, { failed: number; finished: number }>();
  for (const s of failing.series) {
    const t = s.labels.task_type;
    if (!t) continue;
    const e = byType.get(t) ?? { failed: 0, finished: 0 };
    byType.set(t, e);
    e.finished += s.count;
    if (s.labels.status === 'failed') e.failed += s.count;
  }
  const top = [...byType.entries()]
    .filter(([, e]) => e.failed > 0)
    .map(([task_type, e]) => ({ task_type, failed: e.failed, finished: e.finished, failure_rate: e.failed / e.finished }))
    .sort((a, b) => b.failed - a.failed || b.failure_rate - a.failure_rate)
    .slice(0, 5);
  return {
    time_range: range,
    generated_at: iso(now),
    bucket,
    summary: sum,
    series,
    trends,
    top_failing_task_types: top,
    providers,
    open_alerts: null,
    items_read: itemsRead + sum.items_read + providers.items_read,
  };
}
