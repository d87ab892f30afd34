import * as z from 'zod';

/**
 * The built-in plugins: a fixed catalog shipped with the code. Nothing is loaded at run time; a plugin
 * is one of these definitions plus its stored state (status, configuration). Pure data and rules.
 */
export const PLUGIN_TYPES = ['notification', 'integration', 'analytics', 'monitoring', 'workflow', 'security', 'storage'] as const;
export type PluginType = (typeof PLUGIN_TYPES)[number];

export const PLUGIN_NAMES = ['webhook', 'slack', 'github', 'email'] as const;
export type PluginName = (typeof PLUGIN_NAMES)[number];

/** Event types the platform publishes on its bus (custom events may use any other `a.b` name). */
export const SYSTEM_EVENT_TYPES = [
  'task.created',
  'task.completed',
  'task.failed',
  'execution.completed',
  'execution.failed',
  'alert.fired',
  'alert.resolved',
  'plugin.activated',
  'plugin.deactivated',
  'plugin.unloaded',
  'plugin.error',
] as const;

/** `task.*`, `*` or an exact event type. */
export const eventPattern = z
  .string()
  .regex(/^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?)$/, 'must be an event type like task.completed, a prefix like task.*, or *');

export function matchesPattern(pattern: string, eventType: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return eventType.startsWith(pattern.slice(0, -1));
  return pattern === eventType;
}

export const matchesAny = (patterns: readonly string[], eventType: string) => patterns.some((p) => matchesPattern(p, eventType));

const httpUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .max(2048);

/** Standard Webhooks signing secret: `whsec_` and base64 of 24 to 64 random bytes. */
export const webhookSecret = z
  .string()
  .regex(/^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/, 'must be a Standard Webhooks secret: whsec_ followed by base64 of 24-64 bytes');

const webhookConfig = z.strictObject({
  url: httpUrl.describe('Where events are POSTed'),
  signing_secret: webhookSecret.describe('Signs each delivery (webhook-signature); stored in the secret store, shown masked'),
  events: z.array(eventPattern).min(1).max(50).default(['*']).describe('Event filter: exact types, prefixes like task.*, or *'),
  timeout_ms: z.number().int().min(500).max(30_000).default(10_000).describe('Per-attempt timeout'),
});

const slackConfig = z.strictObject({
  webhook_url: httpUrl.describe('Slack incoming-webhook URL; stored in the secret store, shown masked'),
  events: z.array(eventPattern).min(1).max(50).default(['task.*', 'execution.*', 'alert.*']),
  channel_label: z.string().min(1).max(80).optional().describe('Shown in the message header'),
});

const githubConfig = z.strictObject({
  token: z.string().min(10).max(255).describe('GitHub token with pull-request write access; stored in the secret store, shown masked'),
  api_url: httpUrl.default('https://api.github.com').describe('GitHub REST API base URL (GitHub Enterprise: https://host/api/v3)'),
  events: z.array(z.enum(['task.completed', 'task.failed'])).min(1).default(['task.completed', 'task.failed']),
});

const emailConfig = z.strictObject({
  from: z.email().max(254).describe('Sender address (a verified SES identity on AWS)'),
  to: z.array(z.email().max(254)).min(1).max(50).describe('Recipients of event notifications'),
  events: z.array(eventPattern).min(1).max(50).default(['task.failed', 'execution.failed', 'alert.fired']),
  subject_prefix: z.string().max(80).default('[Supervisor]'),
});

export interface PluginDefinition {
  name: PluginName;
  version: string;
  type: PluginType;
  description: string;
  /** What the configuration must look like (published as JSON Schema). */
  config: z.ZodObject;
  /** Configuration fields that are secrets: kept in the secret store, never answered. */
  secretFields: readonly string[];
  /** Event types (patterns) the plugin can handle; its configured filter narrows them. */
  events: readonly string[];
  /** What the plugin needs: outbound hosts, credentials, AWS actions. */
  permissions: readonly string[];
  /** Takes `POST /plugins/notifications/send`. */
  notifies: boolean;
}

export const CATALOG: Record<PluginName, PluginDefinition> = {
  webhook: {
    name: 'webhook',
    version: '1.0.0',
    type: 'integration',
    description: 'POSTs every matching event to a URL, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature), with retries and backoff',
    config: webhookConfig,
    secretFields: ['signing_secret'],
    events: ['*'],
    permissions: ['network:outbound-https', 'secrets:signing_secret'],
    notifies: true,
  },
  slack: {
    name: 'slack',
    version: '1.0.0',
    type: 'notification',
    description: 'Posts a formatted message per event to a Slack incoming webhook',
    config: slackConfig,
    secretFields: ['webhook_url'],
    events: ['task.*', 'execution.*', 'alert.*', 'plugin.*'],
    permissions: ['network:outbound-https', 'secrets:webhook_url'],
    notifies: true,
  },
  github: {
    name: 'github',
    version: '1.0.0',
    type: 'integration',
    description: "Comments a pr_review task's result on the pull request named in its payload, through the GitHub REST API",
    config: githubConfig,
    secretFields: ['token'],
    events: ['task.completed', 'task.failed'],
    permissions: ['network:outbound-https', 'secrets:token', 'github:pull_requests:write'],
    notifies: false,
  },
  email: {
    name: 'email',
    version: '1.0.0',
    type: 'notification',
    description: 'Sends an email per matching event and for notifications: SES v2 on AWS, .eml files under .data/mail/ locally',
    config: emailConfig,
    secretFields: [],
    events: ['task.*', 'execution.*', 'alert.*', 'plugin.*'],
    permissions: ['ses:SendEmail'],
    notifies: true,
  },
};

export function definitionOf(name: string): PluginDefinition | undefined {
  return Object.hasOwn(CATALOG, name) ? CATALOG[name as PluginName] : undefined;
}

/** The configuration schema as JSON Schema (secret fields marked `writeOnly`). */
export function configJsonSchema(def: PluginDefinition): Record<string, unknown> {
  const schema = z.toJSONSchema(def.config, { io: 'input' }) as Record<string, unknown> & { properties?: Record<string, Record<string, unknown>> };
  for (const field of def.secretFields) {
    if (schema.properties?.[field]) schema.properties[field] = { ...schema.properties[field], writeOnly: true };
  }
  delete schema.$schema;
  return schema;
}

// ---------------------------------------------------------------- lifecycle

export const PLUGIN_STATUSES = ['discovered', 'loaded', 'active', 'inactive', 'error', 'unloaded'] as const;
export type PluginStatus = (typeof PLUGIN_STATUSES)[number];

export type PluginAction = 'discover' | 'configure' | 'activate' | 'deactivate' | 'unload' | 'fail';

/**
 * discovered → (configure) loaded → (activate) active ↔ inactive → (unload) unloaded; `error` after
 * repeated failed health checks, left by activating again (or unloading). Answers the next status, or
 * undefined when the action is not allowed from `from`.
 */
export function nextStatus(from: PluginStatus | undefined, action: PluginAction): PluginStatus | undefined {
  switch (action) {
    case 'discover':
      return from === undefined || from === 'unloaded' ? 'discovered' : undefined;
    case 'configure':
      if (from === 'discovered') return 'loaded';
      return from && from !== 'unloaded' ? from : undefined;
    case 'activate':
      return from === 'loaded' || from === 'inactive' || from === 'error' ? 'active' : undefined;
    case 'deactivate':
      return from === 'active' || from === 'error' ? 'inactive' : undefined;
    case 'unload':
      return from && from !== 'unloaded' ? 'unloaded' : undefined;
    case 'fail':
      return from === 'active' ? 'error' : undefined;
  }
}

/** Consecutive failed health checks that put an active plugin in `error`. */
export const HEALTH_FAILURES_TO_ERROR = 3;

// ---------------------------------------------------------------- retries

/**
 * Delay before attempt `attempt + 1` after `attempt` failed: exponential from `baseMs`, capped at
 * one hour, with full jitter in [50 %, 150 %) (`random` in [0, 1)).
 */
export function retryDelayMs(attempt: number, baseMs: number, random: number): number {
  const exp = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), 3_600_000);
  return Math.round(exp * (0.5 + random));
}

/** Bounds (ms) of the delivery latency histogram. */
export const LATENCY_BOUNDS_MS = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000] as const;
