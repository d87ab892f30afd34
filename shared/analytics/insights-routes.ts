import { defineRoutes } from '../platform/api/route.js';
import { requirePrincipal, type Operations } from '../platform/api/types.js';
import * as i from './insights-model.js';
import * as t from './trends-model.js';
import { insights } from './insights.js';
import { trend } from './trends.js';

const tags = ['Analytics & Metrics'];

/** Insights and forecasts (the `analytics` function), computed from the metrics store. */
export const insightRoutes = defineRoutes([
  {
    operationId: 'getAnalyticsInsights',
    method: 'GET',
    path: '/api/v1/analytics/insights',
    group: 'analytics',
    permission: 'analytics:read',
    summary: 'Findings with their evidence: failure-rate spikes, latency regressions, cost anomalies, quotas near exhaustion, provider degradation, queue backlog growth',
    description:
      'Each finding carries the metric, its value, baseline, threshold, both windows, sample sizes and the rule that fired, and a suggested action. ' +
      'Rates and p95 latencies are compared with the previous period of the same length and need `min_samples` on both sides; cost is compared with the previous seven windows (robust z-score); ' +
      'the backlog with its own least-squares trend; quotas are read live. `checked` says what was examined and what had too few samples. ' +
      'Task figures are the caller’s own without `tasks:read_all`; provider, queue and quota figures are platform-wide.',
    tags,
    query: i.insightsQuery,
    response: i.insightsView,
  },
  {
    operationId: 'getMetricTrend',
    method: 'GET',
    path: '/api/v1/analytics/trends/{metric_type}',
    group: 'analytics',
    permission: 'analytics:read',
    summary: "Forecast of a metric: Holt's linear smoothing, or Holt-Winters when a season is detectable, with 95 % prediction intervals and a back-tested error",
    description:
      'Reads hour (or day) rollups of `history`, up to the last complete bucket. The season (daily for hours, weekly for days) is used when three seasons of data show an autocorrelation of the differenced series above max(0.3, 1.96/√n). ' +
      'Parameters come from a grid search on one-step errors; intervals from the residual σ and the method’s h-step variance. ' +
      'The back-test holds out the latest `horizon` buckets and reports MAPE, MASE and interval coverage. ' +
      'With too little history the answer is 200 with `status: insufficient_data` and `needed` (how many buckets). Scope as /analytics/query.',
    tags,
    params: t.trendParams,
    query: t.trendQuery,
    response: t.trendView,
  },
]);

export const insightOperations: Operations<typeof insightRoutes> = {
  async getAnalyticsInsights(req) {
    return { data: await insights(req.deps, requirePrincipal(req), req.query) };
  },
  async getMetricTrend(req) {
    return { data: await trend(req.deps, requirePrincipal(req), req.params.metric_type, req.query) };
  },
};
