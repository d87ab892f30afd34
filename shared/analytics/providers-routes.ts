import { defineRoutes } from '../platform/api/route.js';
import { requirePrincipal, type Operations } from '../platform/api/types.js';
import * as s from './providers-model.js';
import { costOptimization, performanceComparison, providerDashboard, providerSeries } from './providers.js';

const tags = ['Analytics & Metrics'];
const scopeNote =
  'Provider calls (requests, outcomes, latency) are provider-level figures read platform-wide; task figures (finished tasks, tokens, cost) are the caller’s own without `tasks:read_all`.';

/** Provider analytics (the `analytics` function): read from the metrics store's rollups. */
export const providerAnalyticsRoutes = defineRoutes([
  {
    operationId: 'getProviderDashboard',
    method: 'GET',
    path: '/api/v1/analytics/providers/dashboard',
    group: 'analytics',
    permission: 'analytics:read',
    summary: 'Per provider and model over a range: requests, success rate, p50/p95 latency, time to first token, tokens, cost, cost per successful task',
    description: `Figures from the minute/hour/day rollups of provider.calls, provider.latency_ms, provider.ttft_ms and task.* metrics; the answer says the resolution read and the items read. ${scopeNote}`,
    tags,
    query: s.providerRangeQuery,
    response: s.dashboardView,
  },
  {
    operationId: 'getProviderCostOptimization',
    method: 'GET',
    path: '/api/v1/analytics/providers/cost-optimization',
    group: 'analytics',
    permission: 'analytics:read',
    summary: 'Re-routing suggestions per task type with the expected monthly saving, success rates and sample sizes behind them',
    description:
      'Nothing is suggested for a provider/model with fewer than `min_samples` finished tasks of the type (both sides), nor to a target that succeeds more than `max_success_drop` less often. ' +
      '`considered` lists every candidate and why others were skipped. Task figures are the caller’s own without `tasks:read_all`.',
    tags,
    query: s.costOptimizationQuery,
    response: s.costOptimizationView,
  },
  {
    operationId: 'getProviderPerformanceComparison',
    method: 'GET',
    path: '/api/v1/analytics/providers/performance-comparison',
    group: 'analytics',
    permission: 'analytics:read',
    summary: 'Side-by-side table of providers and models, and rankings (fastest, most reliable, cheapest per success, healthiest) with sample sizes',
    description: `Only rows with at least \`min_samples\` in the ranked figure are ranked. The health score's formula is in the answer. ${scopeNote}`,
    tags,
    query: s.comparisonQuery,
    response: s.comparisonView,
  },
  {
    operationId: 'getProviderMetrics',
    method: 'GET',
    path: '/api/v1/analytics/providers/{provider_id}/metrics',
    group: 'analytics',
    permission: 'analytics:read',
    summary: 'One provider over a range: totals, per model, and series per bucket',
    description: `404 for a provider that is not registered. At most 1000 buckets (422 on \`bucket\` otherwise). ${scopeNote}`,
    tags,
    params: s.providerParams,
    query: s.providerSeriesQuery,
    response: s.providerSeriesView,
  },
]);

export const providerAnalyticsOperations: Operations<typeof providerAnalyticsRoutes> = {
  async getProviderDashboard(req) {
    return { data: await providerDashboard(req.deps, requirePrincipal(req), req.query.time_range) };
  },
  async getProviderCostOptimization(req) {
    return { data: await costOptimization(req.deps, requirePrincipal(req), req.query) };
  },
  async getProviderPerformanceComparison(req) {
    return { data: await performanceComparison(req.deps, requirePrincipal(req), req.query) };
  },
  async getProviderMetrics(req) {
    return { data: await providerSeries(req.deps, requirePrincipal(req), req.params.provider_id, req.query.time_range, req.query.bucket) };
  },
};
