import { defineRoutes } from '../platform/api/route.js';
import { requirePrincipal, type Operations } from '../platform/api/types.js';
import * as s from './advanced-model.js';
import { advancedInsights, dashboardData, realTime } from './advanced.js';
import { exportAnalytics } from './export.js';

const tags = ['Advanced Analytics'];
const scopeNote = 'Scope as /analytics/query: without `tasks:read_all` only the caller’s own points and the platform-wide system.* gauges.';

/** The `analytics-advanced` function: real-time values and anomalies, statistical insights, export. */
export const advancedAnalyticsRoutes = defineRoutes([
  {
    operationId: 'getRealTimeMetrics',
    method: 'GET',
    path: '/api/v1/analytics/advanced/metrics/real-time',
    group: 'analytics-advanced',
    permission: 'analytics:read',
    summary: 'Latest values per minute, short-horizon forecasts with intervals, and robust z-score anomaly flags',
    description:
      'Reads minute rollups of the trailing window (the current minute excluded). Each of the latest `check_last` minutes is scored against the minutes before it: ' +
      'robust z = (value − median) / (MAD / 0.6745); a flag gives the value, the band median ± z_threshold·MAD/0.6745 and the score (at least 10 baseline minutes). ' +
      `Forecasts: Holt (or Holt-Winters with an hourly season) once ${24} minutes have data, else insufficient_data. ${scopeNote}`,
    tags,
    query: s.realTimeQuery,
    response: s.realTimeView,
  },
  {
    operationId: 'getDashboardData',
    method: 'GET',
    path: '/api/v1/analytics/advanced/dashboard/data',
    group: 'analytics-advanced',
    permission: 'analytics:read',
    summary: 'One call for a dashboard: summary, series, trends against the previous period, top failing task types, provider comparison',
    description:
      'Series of tasks finished, p95 task duration, cost and provider calls per bucket (minute up to 6h, hour up to 30d, day beyond); the same figures for this period and the one before with the change; ' +
      `the five task types with most failures (with finished counts); the provider comparison (min_samples 5). \`open_alerts\` is null: alerts belong to the monitoring function. ${scopeNote}`,
    tags,
    query: s.dashboardDataQuery,
    response: s.dashboardDataView,
  },
  {
    operationId: 'getAdvancedInsights',
    method: 'GET',
    path: '/api/v1/analytics/advanced/insights',
    group: 'analytics-advanced',
    permission: 'analytics:read',
    summary: 'Anomalies, change points (CUSUM) and correlations between metrics, each with a confidence computed from the data',
    description:
      'Anomalies: robust z over the series, kept when the Bonferroni-adjusted two-sided p is below `alpha`. Change points: the CUSUM peak’s p (Kolmogorov approximation) below `alpha`, at least 5 points each side. ' +
      `Correlations: Pearson r of aligned buckets (at least 10), Fisher z test below \`alpha\`. ${scopeNote}`,
    tags,
    query: s.advancedInsightsQuery,
    response: s.advancedInsightsView,
  },
  {
    operationId: 'exportAnalytics',
    method: 'GET',
    path: '/api/v1/analytics/advanced/export',
    group: 'analytics-advanced',
    permission: 'analytics:export',
    summary: 'Export raw metric points as JSON (with export_metadata), CSV or XLSX (a Metadata sheet and one sheet per metric namespace)',
    description:
      'Honours time_range (within METRICS_RETENTION_DAYS) and metric_types. CSV and XLSX are attachments (Content-Disposition); JSON is the usual envelope. ' +
      `Every export is audited (format, points, bytes, inline or link). An export of more than ${s.MAX_EXPORT_POINTS} points is 422 naming time_range. ` +
      'An answer larger than EXPORT_INLINE_MAX_BYTES (default 5 MiB; a Lambda answer is at most 6 MB) is not inlined: the file goes to object storage ' +
      '(S3 on AWS, kept a day; a folder under the data directory locally) and the answer, in JSON whatever the format, is `{ export_metadata, download: { url, expires_at, content_type, filename, bytes } }`: ' +
      `the URL needs no token and works for an hour (presigned on AWS; HMAC-signed locally, 403 once expired or altered). ${scopeNote}`,
    tags,
    query: s.exportQuery,
    response: s.exportAnswer,
    alsoContentTypes: ['text/csv', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
    audit: true,
    resourceType: 'analytics_export',
  },
]);

export const advancedAnalyticsOperations: Operations<typeof advancedAnalyticsRoutes> = {
  async getRealTimeMetrics(req) {
    return { data: await realTime(req.deps, requirePrincipal(req), req.query) };
  },
  async getDashboardData(req) {
    return { data: await dashboardData(req.deps, requirePrincipal(req), req.query.time_range) };
  },
  async getAdvancedInsights(req) {
    return { data: await advancedInsights(req.deps, requirePrincipal(req), req.query) };
  },
  async exportAnalytics(req) {
    const out = await exportAnalytics(req.deps, requirePrincipal(req), req.query);
    req.audit.details = {
      format: req.query.format,
      points: out.points,
      bytes: out.bytes,
      delivered: out.kind === 'stored' ? 'link' : 'inline',
      time_range: req.query.time_range,
      metric_types: req.query.metric_types ?? null,
    };
    if (out.kind === 'json') return { data: out.view };
    if (out.kind === 'stored') return { data: out.link, message: 'The export is too large for an answer: download it from download.url before download.expires_at' };
    return {
      raw: { contentType: out.file.contentType, body: out.file.body.toString(out.base64 ? 'base64' : 'utf8'), isBase64Encoded: out.base64 },
      headers: { 'Content-Disposition': `attachment; filename="${out.file.filename}"` },
    };
  },
};
