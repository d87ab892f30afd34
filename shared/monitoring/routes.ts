import * as z from 'zod';
import { defineRoutes } from '../platform/api/route.js';
import { pageOf } from '../platform/api/schemas.js';
import { requirePrincipal, type Operations } from '../platform/api/types.js';
import { pageRequest } from '../platform/api/pagination.js';
import * as s from './model.js';
import {
  acknowledgeAlert,
  createRule,
  deleteRule,
  getMonitoringConfig,
  listAlerts,
  listRules,
  monitoringHealth,
  replaceRule,
  setEvaluatorEnabled,
  updateMonitoringConfig,
} from './service.js';

const tags = ['Real-time Monitoring'];
const group = 'monitoring' as const;

/** Alert rules, alerts, the evaluator's configuration and control, and the monitoring health view (the `monitoring` function). */
export const monitoringRoutes = defineRoutes([
  {
    operationId: 'getMonitoringHealth',
    method: 'GET',
    path: '/api/v1/monitoring/health',
    group,
    permission: 'monitoring:read',
    summary: 'Comprehensive health: components with status and latency, alert counts, recent alerts, utilisation, the evaluator',
    description:
      'Components: the table and the event bus (checked now, with latency) and the evaluator (its last run). Alerts: firing ones by severity, label sets pending, acknowledged. ' +
      'Utilisation: tasks queued, pending, running and workflow runs running, from counters kept on write.',
    tags,
    response: s.healthView,
  },
  {
    operationId: 'listAlerts',
    method: 'GET',
    path: '/api/v1/monitoring/alerts',
    group,
    permission: 'monitoring:read',
    summary: 'Alerts, newest first, filtered by status, severity, rule and start time; cursor pagination',
    description: 'An alert is stored when a rule fires (with its pending and firing values) and resolved when the condition has not held for `keep_firing_for_seconds`. Resolved alerts are kept `retention_days`.',
    tags,
    query: s.alertsQuery,
    response: pageOf(s.alertView),
  },
  {
    operationId: 'acknowledgeAlert',
    method: 'POST',
    path: '/api/v1/monitoring/alerts/{alert_id}/acknowledge',
    group,
    permission: 'alerts:manage',
    summary: 'Acknowledge an alert: it keeps its state, further notifications of it are suppressed (idempotent)',
    tags,
    params: s.alertIdParams,
    response: s.alertView,
    resourceType: 'alert',
    resourceIdParam: 'alert_id',
  },
  {
    operationId: 'createAlertRule',
    method: 'POST',
    path: '/api/v1/monitoring/alerts/rules',
    group,
    permission: 'alerts:manage',
    summary: 'Create an alert rule on a metric of the metrics store',
    description:
      'Evaluated every `evaluation_interval_seconds` over the metric\'s minute rollups in the last `window_seconds`, per label set (`group_by`). ' +
      'States as Prometheus: inactive → pending when the condition holds → firing once it has held `for_seconds` → resolved when it has not held for `keep_firing_for_seconds`. ' +
      'An unknown metric is a 422 listing the known ones; a name in use is a 409.',
    tags,
    body: s.createRuleBody,
    response: s.ruleView,
    status: 201,
    maxBodyBytes: 16 * 1024,
    resourceType: 'alert_rule',
  },
  {
    operationId: 'listAlertRules',
    method: 'GET',
    path: '/api/v1/monitoring/alerts/rules',
    group,
    permission: 'monitoring:read',
    summary: 'Every alert rule with its current state (inactive, pending, firing), last value and label sets',
    tags,
    response: z.object({ items: z.array(s.ruleView) }),
  },
  {
    operationId: 'replaceAlertRule',
    method: 'PUT',
    path: '/api/v1/monitoring/alerts/rules/{rule_id}',
    group,
    permission: 'alerts:manage',
    summary: 'Replace an alert rule (default rules included); another metric, labels or group_by, or disabling it, resolves its open alerts',
    tags,
    params: s.ruleIdParams,
    body: s.createRuleBody,
    response: s.ruleView,
    maxBodyBytes: 16 * 1024,
    resourceType: 'alert_rule',
    resourceIdParam: 'rule_id',
  },
  {
    operationId: 'deleteAlertRule',
    method: 'DELETE',
    path: '/api/v1/monitoring/alerts/rules/{rule_id}',
    group,
    permission: 'alerts:manage',
    summary: 'Delete an alert rule; its firing alerts are resolved (`rule_deleted`) and notified',
    tags,
    params: s.ruleIdParams,
    response: z.object({ rule_id: z.string(), deleted: z.literal(true), resolved_alerts: z.number() }),
    resourceType: 'alert_rule',
    resourceIdParam: 'rule_id',
  },
  {
    operationId: 'getMonitoringConfig',
    method: 'GET',
    path: '/api/v1/monitoring/config',
    group,
    permission: 'monitoring:read',
    summary: 'Monitoring configuration: evaluation interval, alert retention, default channels, enabled',
    tags,
    response: s.configView,
  },
  {
    operationId: 'updateMonitoringConfig',
    method: 'PUT',
    path: '/api/v1/monitoring/config',
    group,
    permission: 'monitoring:manage',
    summary: 'Replace the monitoring configuration (audited); 409 when it changed meanwhile',
    tags,
    body: s.monitoringConfig,
    response: s.configView,
    maxBodyBytes: 8 * 1024,
    resourceType: 'monitoring_config',
  },
  {
    operationId: 'startMonitoring',
    method: 'POST',
    path: '/api/v1/monitoring/start',
    group,
    permission: 'monitoring:manage',
    summary: 'Start the evaluator (idempotent; survives restarts). It resumes at the current time: nothing missed is replayed',
    tags,
    response: s.controlView,
    resourceType: 'monitoring_config',
  },
  {
    operationId: 'stopMonitoring',
    method: 'POST',
    path: '/api/v1/monitoring/stop',
    group,
    permission: 'monitoring:manage',
    summary: 'Stop the evaluator (idempotent; survives restarts): scheduled runs do nothing until started',
    tags,
    response: s.controlView,
    resourceType: 'monitoring_config',
  },
]);

export const monitoringOperations: Operations<typeof monitoringRoutes> = {
  async getMonitoringHealth(req) {
    return { data: await monitoringHealth(req.deps) };
  },
  async listAlerts(req) {
    const { limit: _l, cursor: _c, ...filter } = req.query;
    const { startKey, respond } = await pageRequest(req, 'alerts', filter);
    return { data: respond(await listAlerts(req.deps, req.query, startKey)) };
  },
  async acknowledgeAlert(req) {
    const out = await acknowledgeAlert(req.deps, requirePrincipal(req), req.params.alert_id);
    return { data: out.alert, message: out.changed ? 'Alert acknowledged' : 'Alert was already acknowledged' };
  },
  async createAlertRule(req) {
    const rule = await createRule(req.deps, req.body);
    req.audit.resourceId = rule.rule_id;
    return { data: rule, status: 201, message: 'Alert rule created' };
  },
  async listAlertRules(req) {
    return { data: { items: await listRules(req.deps) } };
  },
  async replaceAlertRule(req) {
    return { data: await replaceRule(req.deps, req.params.rule_id, req.body), message: 'Alert rule replaced' };
  },
  async deleteAlertRule(req) {
    return { data: await deleteRule(req.deps, req.params.rule_id), message: 'Alert rule deleted' };
  },
  async getMonitoringConfig(req) {
    return { data: await getMonitoringConfig(req.deps) };
  },
  async updateMonitoringConfig(req) {
    return { data: await updateMonitoringConfig(req.deps, requirePrincipal(req), req.body), message: 'Configuration updated' };
  },
  async startMonitoring(req) {
    const out = await setEvaluatorEnabled(req.deps, requirePrincipal(req), true);
    return { data: out, message: out.changed ? 'Monitoring started' : 'Monitoring was already running' };
  },
  async stopMonitoring(req) {
    const out = await setEvaluatorEnabled(req.deps, requirePrincipal(req), false);
    return { data: out, message: out.changed ? 'Monitoring stopped' : 'Monitoring was already stopped' };
  },
};
