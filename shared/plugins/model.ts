import * as z from 'zod';
import { isoDate, pageQuery } from '../platform/api/schemas.js';
import { PLUGIN_NAMES, PLUGIN_STATUSES, PLUGIN_TYPES } from './catalog.js';

export const pluginNameParams = z.strictObject({ plugin_name: z.enum(PLUGIN_NAMES, { error: `must be one of ${PLUGIN_NAMES.join(', ')}` }) });
export const pluginTypeParams = z.strictObject({ plugin_type: z.enum(PLUGIN_TYPES, { error: `must be one of ${PLUGIN_TYPES.join(', ')}` }) });
export const eventIdParams = z.strictObject({ event_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an event id') });

export const listPluginsQuery = z.strictObject({
  type: z.enum(PLUGIN_TYPES).optional(),
  status: z.enum(PLUGIN_STATUSES).optional(),
});

const healthView = z.object({
  consecutive_failures: z.number().int(),
  last_check_at: isoDate.nullable(),
  last_error: z.string().nullable(),
});

export const pluginView = z.object({
  name: z.string(),
  version: z.string().describe('Semantic version of the built-in plugin'),
  type: z.enum(PLUGIN_TYPES),
  description: z.string(),
  status: z.enum(PLUGIN_STATUSES),
  events: z.array(z.string()).describe('Event types (patterns) the plugin handles'),
  permissions: z.array(z.string()).describe('What the plugin needs'),
  config_schema: z.record(z.string(), z.unknown()).describe('JSON Schema of the configuration'),
  configured: z.boolean(),
  notifies: z.boolean().describe('Takes POST /plugins/notifications/send'),
  health: healthView,
  discovered_at: isoDate,
  activated_at: isoDate.nullable(),
  updated_at: isoDate,
});

export const discoverView = z.object({
  discovered: z.array(z.string()).describe('Plugins stored by this call (none when all were already known)'),
  plugins: z.array(pluginView),
});

export const configurationView = z.object({
  plugin_name: z.string(),
  configuration: z.record(z.string(), z.unknown()).nullable().describe('Secret fields are masked'),
  secret_fields: z.array(z.string()),
  config_schema: z.record(z.string(), z.unknown()),
  status: z.enum(PLUGIN_STATUSES),
  updated_at: isoDate,
});

/** Validated against the plugin's own schema in the service (each plugin has its own). */
export const configurationBody = z.strictObject({
  configuration: z.record(z.string(), z.unknown()).describe("The plugin's configuration (see its config_schema); a secret field left out keeps its stored value"),
});

export const healthCheckView = z.object({
  plugin_name: z.string(),
  healthy: z.boolean(),
  status: z.enum(PLUGIN_STATUSES),
  checks: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string().nullable(), duration_ms: z.number().int() })),
  consecutive_failures: z.number().int(),
  checked_at: isoDate,
});

export const allHealthView = z.object({
  healthy: z.number().int(),
  unhealthy: z.number().int(),
  plugins: z.array(healthCheckView),
});

const eventTypeSchema = z.string().max(100).regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/, 'must be a dotted lower-case name like deploy.finished');

export const publishBody = z.strictObject({
  event_type: eventTypeSchema,
  target_plugin: z.enum(PLUGIN_NAMES).optional(),
  data: z.record(z.string(), z.unknown()).default({}),
  metadata: z.record(z.string(), z.unknown()).default({}),
});

export const publishView = z.object({
  event_id: z.string(),
  event_type: z.string(),
  target_plugin: z.string().nullable(),
  published_at: isoDate,
});

export const attemptView = z.object({
  attempt: z.number().int(),
  at: isoDate,
  status_code: z.number().int().nullable(),
  duration_ms: z.number().int(),
  ok: z.boolean(),
  error: z.string().nullable(),
  response_excerpt: z.string().nullable(),
  trigger: z.enum(['automatic', 'manual']),
});

export const DELIVERY_STATUSES = ['pending', 'retrying', 'succeeded', 'failed'] as const;

export const deliveryView = z.object({
  event_id: z.string(),
  event_type: z.string(),
  plugin_name: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number().int(),
  attempt_log: z.array(attemptView),
  last_status_code: z.number().int().nullable(),
  last_error: z.string().nullable(),
  last_duration_ms: z.number().int().nullable(),
  next_retry_at: isoDate.nullable(),
  created_at: isoDate,
  updated_at: isoDate,
});

export const historyQuery = z.strictObject({
  ...pageQuery,
  event_type: z.string().max(100).optional(),
  plugin_name: z.enum(PLUGIN_NAMES).optional(),
  status: z.enum(DELIVERY_STATUSES).optional(),
  from: isoDate.optional(),
  to: isoDate.optional(),
});

export const redeliverBody = z.strictObject({
  plugin_name: z.enum(PLUGIN_NAMES).optional().describe('Only this plugin (default: every plugin the event went to)'),
});

export const redeliverView = z.object({ event_id: z.string(), deliveries: z.array(deliveryView) });

export const notificationBody = z.strictObject({
  plugin_name: z.enum(PLUGIN_NAMES),
  recipient: z.string().min(1).max(254).describe('An email address for `email`; a label for slack and webhook'),
  subject: z.string().min(1).max(200),
  message: z.string().min(1).max(10_000),
  priority: z.enum(['low', 'normal', 'high', 'urgent']).default('normal'),
});

export const pluginMetricsView = z.object({
  plugin_name: z.string(),
  status: z.enum(PLUGIN_STATUSES).nullable(),
  deliveries: z.number().int(),
  successes: z.number().int(),
  failures: z.number().int(),
  success_rate: z.number().nullable(),
  latency_p50_ms: z.number().nullable(),
  latency_p95_ms: z.number().nullable(),
  last_error: z.string().nullable(),
  last_error_at: isoDate.nullable(),
  last_delivery_at: isoDate.nullable(),
});

export const metricsView = z.object({
  totals: z.object({
    plugins: z.number().int(),
    active: z.number().int(),
    deliveries: z.number().int(),
    failures: z.number().int(),
    success_rate: z.number().nullable(),
  }),
  plugins: z.array(pluginMetricsView),
});
