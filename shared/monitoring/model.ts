import * as z from 'zod';
import { AGGREGATIONS, LABEL_KEY, LABEL_VALUE, MAX_LABELS, METRIC_NAME } from '../platform/metrics/store.js';
import { isoDate, pageQuery, ulidSchema, csv } from '../platform/api/schemas.js';

export const SEVERITIES = ['info', 'warning', 'critical', 'emergency'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const CONDITIONS = ['gt', 'gte', 'lt', 'lte', 'eq', 'ne'] as const;
export type Condition = (typeof CONDITIONS)[number];
/** Per rule and label set, as Prometheus: inactive → pending → firing (→ inactive again when resolved). */
export const RULE_STATES = ['inactive', 'pending', 'firing'] as const;
export type RuleState = (typeof RULE_STATES)[number];
export const ALERT_STATUSES = ['firing', 'resolved'] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

/** A rule reads at most this much history per evaluation (minute rollups are kept 14 days). */
export const MAX_WINDOW_SECONDS = 86_400;
export const MAX_FOR_SECONDS = 7 * 86_400;

const labelsSchema = z
  .record(z.string().regex(LABEL_KEY, 'label keys are lower-case words'), z.string().regex(LABEL_VALUE, 'label values are printable, without separators'))
  .refine((l) => Object.keys(l).length <= MAX_LABELS, { message: `at most ${MAX_LABELS} labels` });
const channelName = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'a plugin or channel name');

const ruleFields = {
  name: z.string().trim().min(1).max(128).describe('Unique among rules (case-insensitive)'),
  description: z.string().max(1000).optional(),
  metric: z.string().regex(METRIC_NAME, 'lower-case dotted words, e.g. task.finished').describe('A metric the metrics store knows (a 422 lists them)'),
  labels: labelsSchema.optional().describe('Exact label matches the points must have'),
  group_by: z.array(z.string().regex(LABEL_KEY)).max(2).optional().describe('One alert per value of these labels (a label set); without it one per rule'),
  aggregation: z.enum(AGGREGATIONS).describe('Figure of the window: count, sum, avg, min, max, p50/p90/p95/p99, rate (points per second)'),
  window_seconds: z.number().int().min(60).max(MAX_WINDOW_SECONDS).describe('Range read at each evaluation (minute rollups)'),
  condition: z.enum(CONDITIONS),
  threshold: z.number().finite(),
  for_seconds: z.number().int().min(0).max(MAX_FOR_SECONDS).describe('How long the condition must hold before pending turns firing'),
  keep_firing_for_seconds: z.number().int().min(0).max(MAX_FOR_SECONDS).default(0).describe('How long a firing alert stays firing after the condition stops holding'),
  severity: z.enum(SEVERITIES),
  channels: z.array(channelName).max(20).default([]).describe('Notification channels (plugin names); the configured default channels when empty'),
  enabled: z.boolean().default(true),
};

export const createRuleBody = z.strictObject(ruleFields);
export type CreateRuleBody = z.infer<typeof createRuleBody>;

export const ruleIdParams = z.strictObject({ rule_id: ulidSchema });
export const alertIdParams = z.strictObject({ alert_id: ulidSchema });

export const ruleSeriesView = z.object({
  labels: z.record(z.string(), z.string().nullable()),
  state: z.enum(RULE_STATES),
  value: z.number().nullable().describe('Last value seen for this label set'),
  active_since: isoDate.nullable(),
  alert_id: z.string().nullable(),
  changed_at: isoDate.describe('The evaluation that last changed this label set\'s state or value (one that changes neither writes nothing)'),
});

export const ruleView = z.object({
  rule_id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  metric: z.string(),
  labels: z.record(z.string(), z.string()),
  group_by: z.array(z.string()),
  aggregation: z.enum(AGGREGATIONS),
  window_seconds: z.number(),
  condition: z.enum(CONDITIONS),
  threshold: z.number(),
  for_seconds: z.number(),
  keep_firing_for_seconds: z.number(),
  severity: z.enum(SEVERITIES),
  channels: z.array(z.string()),
  enabled: z.boolean(),
  builtin: z.boolean().describe('Seeded at first start (may be edited or deleted)'),
  created_at: isoDate,
  updated_at: isoDate,
  state: z.enum(RULE_STATES).describe('The most advanced state of its label sets'),
  last_value: z.number().nullable(),
  last_changed_at: isoDate.nullable().describe('The latest `changed_at` of its label sets; the evaluator\'s last run is in `GET /monitoring/health`'),
  series: z.array(ruleSeriesView),
});
export type RuleView = z.infer<typeof ruleView>;

export const transitionView = z.object({ state: z.enum(['pending', 'firing', 'resolved']), at: isoDate, value: z.number().nullable() });
export const deliveryView = z.object({
  event: z.enum(['alert.fired', 'alert.resolved']),
  channels: z.array(z.string()),
  status: z.enum(['published', 'suppressed', 'failed']),
  at: isoDate,
  detail: z.string().nullable(),
});

export const alertView = z.object({
  alert_id: z.string(),
  rule_id: z.string(),
  rule_name: z.string(),
  metric: z.string(),
  labels: z.record(z.string(), z.string().nullable()),
  severity: z.enum(SEVERITIES),
  status: z.enum(ALERT_STATUSES),
  value: z.number().nullable().describe('Value when it last changed state'),
  threshold: z.number(),
  condition: z.enum(CONDITIONS),
  started_at: isoDate.describe('When the condition first held (pending)'),
  fired_at: isoDate,
  resolved_at: isoDate.nullable(),
  resolved_reason: z.enum(['condition_cleared', 'rule_deleted', 'rule_changed']).nullable(),
  acknowledged_at: isoDate.nullable(),
  acknowledged_by: z.string().nullable(),
  transitions: z.array(transitionView),
  deliveries: z.array(deliveryView),
});
export type AlertView = z.infer<typeof alertView>;

export const alertsQuery = z.strictObject({
  ...pageQuery,
  status: csv(z.enum(ALERT_STATUSES)).optional(),
  severity: csv(z.enum(SEVERITIES)).optional(),
  rule_id: ulidSchema.optional(),
  from: isoDate.optional().describe('Alerts that started at or after'),
  to: isoDate.optional().describe('Alerts that started at or before'),
});
export type AlertsQuery = z.infer<typeof alertsQuery>;

export const monitoringConfig = z.strictObject({
  evaluation_interval_seconds: z
    .number()
    .int()
    .min(1)
    .max(3600)
    .describe('Evaluate at most this often; on AWS the schedule runs every minute, so values under 60 act as 60'),
  retention_days: z.number().int().min(1).max(365).describe('Resolved alerts are kept this many days'),
  default_channels: z.array(channelName).max(20).describe('Channels of rules that name none'),
  enabled: z.boolean().describe('Whether the evaluator runs (POST /start and /stop set it too)'),
});
export type MonitoringConfig = z.infer<typeof monitoringConfig>;
export const configView = monitoringConfig.extend({ updated_at: isoDate.nullable(), updated_by: z.string().nullable() });

export const evaluatorView = z.object({
  enabled: z.boolean(),
  interval_seconds: z.number(),
  last_run_at: isoDate.nullable(),
  last_duration_ms: z.number().nullable(),
  last_rules_evaluated: z.number().nullable(),
  last_error: z.string().nullable(),
  errors_total: z.number(),
  runs_total: z.number(),
  next_run_at: isoDate.nullable(),
});
export type EvaluatorView = z.infer<typeof evaluatorView>;

export const controlView = z.object({ enabled: z.boolean(), changed: z.boolean(), evaluator: evaluatorView });

export const healthView = z.object({
  status: z.enum(['healthy', 'degraded', 'unhealthy']),
  components: z.array(z.object({ name: z.string(), status: z.string(), latency_ms: z.number().nullable(), detail: z.string().nullable() })),
  alerts: z.object({
    firing: z.record(z.string(), z.number()).describe('Firing alerts by severity'),
    pending: z.number().describe('Label sets pending'),
    firing_total: z.number(),
    acknowledged: z.number(),
  }),
  recent_alerts: z.array(alertView),
  utilisation: z.object({
    tasks_queued: z.number(),
    tasks_pending: z.number(),
    tasks_running: z.number(),
    workflows_running: z.number(),
  }),
  rules: z.object({ total: z.number(), enabled: z.number() }),
  evaluator: evaluatorView,
});

/**
 * The metrics the platform itself records (shared/analytics/derive.ts from the change feed,
 * shared/analytics/collector.ts every minute): rules may name them before their first point.
 */
export const PLATFORM_METRICS = [
  'task.created',
  'task.started',
  'task.queue_wait_ms',
  'task.finished',
  'task.duration_ms',
  'task.attempts',
  'task.tokens_in',
  'task.tokens_out',
  'task.cost_usd',
  'provider.calls',
  'provider.latency_ms',
  'workflow.executions_started',
  'workflow.executions_finished',
  'workflow.execution_duration_ms',
  'workflow.steps_finished',
  'workflow.step_duration_ms',
  'auth.logins',
  'realtime.connections',
  'system.tasks_pending',
  'system.tasks_queued',
  'system.tasks_running',
  'system.workflows_running',
  'system.store_latency_ms',
] as const;
