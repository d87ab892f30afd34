import { defineRoutes } from '../platform/api/route.js';
import { pageOf } from '../platform/api/schemas.js';
import { requirePrincipal, type Operations } from '../platform/api/types.js';
import { pageRequest } from '../platform/api/pagination.js';
import * as s from './model.js';
import { collect, listMetrics, runQuery, summary } from './service.js';

const tags = ['Analytics & Metrics'];
const scopeNote =
  'Scope: with `tasks:read_all` every point; without it (a `user`) only points labelled `user=<caller>` (their tasks, runs, logins and collected points) and the platform-wide `system.*` gauges.';

/** The metrics store's HTTP face: collect, query, raw points, summary (the `analytics` function). */
export const analyticsRoutes = defineRoutes([
  {
    operationId: 'collectMetric',
    method: 'POST',
    path: '/api/v1/analytics/collect',
    group: 'analytics',
    permission: 'analytics:write',
    summary: 'Record one metric point (idempotent by event_id)',
    description:
      'Records a point of your own metric (not in the platform namespaces task., provider., workflow., schedule., auth., realtime., system.), labelled `user=<caller>`. ' +
      'The same `event_id` from the same caller is recorded once: a repeat answers 200 with `recorded: false` and counts nothing. ' +
      'The platform records its own metrics itself from its change feed.',
    tags,
    body: s.collectBody,
    response: s.collectView,
    status: 201,
    alsoAnswers: { 200: 'Already recorded: the same event_id from the same caller; nothing was counted again' },
    resourceType: 'metric',
  },
  {
    operationId: 'queryMetrics',
    method: 'POST',
    path: '/api/v1/analytics/query',
    group: 'analytics',
    permission: 'analytics:read',
    summary: 'Aggregate a metric over a range: count, sum, avg, min, max, p50/p90/p95/p99, rate; filtered and grouped',
    description:
      'Reads minute, hour or day rollups: the finest with at most 800 buckets in the range that its retention still holds (minute 14 days, hour 400 days), ' +
      'or `group_by.bucket` when given. Percentiles come from a mergeable sketch (within 1 %). `rate` is points per second. ' +
      '`filters.value_range` reads raw points instead (exact; within METRICS_RETENTION_DAYS). The answer says the resolution and how many items were read. ' +
      'Bad combinations (time_range with start/end, too many buckets, a bucket older than its retention, grouping by a filtered label) are 422 naming the field. ' +
      scopeNote,
    tags,
    body: s.queryBody,
    response: s.queryView,
  },
  {
    operationId: 'listMetricPoints',
    method: 'GET',
    path: '/api/v1/analytics/metrics',
    group: 'analytics',
    permission: 'analytics:read',
    summary: 'Raw metric points, newest first, with filters and cursor pagination',
    description: `Raw points are kept METRICS_RETENTION_DAYS (default 7). ${scopeNote} A label filter may end a page short while next_cursor is set.`,
    tags,
    query: s.metricsQuery,
    response: pageOf(s.pointView),
  },
  {
    operationId: 'getAnalyticsSummary',
    method: 'GET',
    path: '/api/v1/analytics/summary',
    group: 'analytics',
    permission: 'analytics:read',
    summary: 'Dashboard summary: tasks today and in the window, success rate, durations, queue, workflows, cost and tokens today, health score',
    description:
      'Task figures from the metrics store (recorded from the change feed, so a change shows within about a second); queue and running workflows live from counters kept on write (platform-wide). ' +
      'The health score carries its formula, inputs and weights. ' +
      scopeNote,
    tags,
    query: s.summaryQuery,
    response: s.summaryView,
  },
]);

export const analyticsOperations: Operations<typeof analyticsRoutes> = {
  async collectMetric(req) {
    const out = await collect(req.deps, requirePrincipal(req), req.body);
    return { data: out, status: out.recorded ? 201 : 200, message: out.recorded ? 'Recorded' : 'Already recorded' };
  },
  async queryMetrics(req) {
    return { data: await runQuery(req.deps, requirePrincipal(req), req.body) };
  },
  async listMetricPoints(req) {
    const principal = requirePrincipal(req);
    const { limit: _l, cursor: _c, ...filter } = req.query;
    const { startKey, respond } = await pageRequest(req, 'metrics', { ...filter, by: principal.userId });
    return { data: respond(await listMetrics(req.deps, principal, req.query, startKey)) };
  },
  async getAnalyticsSummary(req) {
    return { data: await summary(req.deps, requirePrincipal(req), req.query.window) };
  },
};

