import { newUlid } from '../platform/ids.js';
import type * as z from 'zod';
import type { Deps } from '../platform/runtime.js';
import { conflict, invalidState, notFound, validationError, type FieldError } from '../platform/errors.js';
import { logger } from '../platform/logger.js';
import { percentile } from '../platform/histogram.js';
import { secretStore } from '../platform/use/secrets.js';
import { eventBus } from '../platform/use/events.js';
import { mailSender } from '../platform/use/mail.js';
import { recordAudit } from '../audit/service.js';
import type { Principal } from '../platform/principal.js';
import {
  CATALOG,
  configJsonSchema,
  definitionOf,
  HEALTH_FAILURES_TO_ERROR,
  nextStatus,
  PLUGIN_NAMES,
  SYSTEM_EVENT_TYPES,
  type PluginAction,
  type PluginName,
  type PluginType,
  type PluginStatus,
} from './catalog.js';
import { PluginRepository, type DeliveryRecord, type DeliveryStatus, type EventRecord, type PluginRecord } from './repo.js';
import { attempt, recordAttempt, resolveConfig, startDelivery, takes } from './delivery.js';
import { probeUrl, sendMail, type AttemptResult } from './senders.js';
import type * as s from './model.js';

const repo = (deps: Deps) => new PluginRepository(deps.store);
/** Shown instead of a secret's value. */
export const MASK = '********';

// ---------------------------------------------------------------- views

export function pluginView(p: PluginRecord): z.infer<typeof s.pluginView> {
  const def = CATALOG[p.name];
  return {
    name: p.name,
    version: def.version,
    type: def.type,
    description: def.description,
    status: p.status,
    events: [...def.events],
    permissions: [...def.permissions],
    config_schema: configJsonSchema(def),
    configured: p.config !== null,
    notifies: def.notifies,
    health: { consecutive_failures: p.consecutive_health_failures, last_check_at: p.last_health_check_at, last_error: p.last_health_error },
    discovered_at: p.discovered_at,
    activated_at: p.activated_at,
    updated_at: p.updated_at,
  };
}

async function requirePlugin(deps: Deps, name: string): Promise<PluginRecord> {
  const p = await repo(deps).get(name);
  if (!p) throw notFound(`Plugin '${name}' (run POST /api/v1/plugins/discover first)`);
  return p;
}

// ---------------------------------------------------------------- catalog

/** Stores every built-in plugin not known yet (or unloaded) as `discovered`; idempotent. */
export async function discover(deps: Deps): Promise<{ discovered: string[]; plugins: PluginRecord[] }> {
  const now = deps.clock.now().toISOString();
  const discovered: string[] = [];
  for (const name of PLUGIN_NAMES) {
    const record: PluginRecord = {
      name,
      status: 'discovered',
      rev: 1,
      config: null,
      secret_refs: {},
      consecutive_health_failures: 0,
      last_health_check_at: null,
      last_health_error: null,
      discovered_at: now,
      updated_at: now,
      activated_at: null,
    };
    if (await repo(deps).discover(record)) discovered.push(name);
  }
  return { discovered, plugins: await listPlugins(deps, {}) };
}

export async function listPlugins(deps: Deps, filter: { type?: PluginType; status?: PluginStatus }): Promise<PluginRecord[]> {
  const all = await repo(deps).getMany(PLUGIN_NAMES);
  return all.filter((p) => (!filter.status || p.status === filter.status) && (!filter.type || CATALOG[p.name].type === filter.type));
}

export const getPlugin = requirePlugin;

// ---------------------------------------------------------------- lifecycle

/**
 * Moves the plugin through its lifecycle with a conditional write on the revision read: of two
 * admins acting at once one wins, the other gets a 409. Each transition is also published on the
 * event bus (`plugin.activated` …); unloading removes the plugin's secrets.
 */
export async function transition(deps: Deps, name: string, action: Exclude<PluginAction, 'discover' | 'configure' | 'fail'>): Promise<PluginRecord> {
  const before = await requirePlugin(deps, name);
  const next = nextStatus(before.status, action);
  if (!next) {
    const hint = before.status === 'discovered' && action === 'activate' ? ' (configure it first)' : '';
    throw invalidState(`Cannot ${action} plugin '${name}' while it is ${before.status}${hint}`);
  }
  const now = deps.clock.now().toISOString();
  const after: PluginRecord = {
    ...before,
    status: next,
    updated_at: now,
    ...(action === 'activate' ? { activated_at: now, consecutive_health_failures: 0, last_health_error: null } : {}),
    ...(action === 'unload' ? { config: null, secret_refs: {}, activated_at: null } : {}),
  };
  if (!(await repo(deps).replace(before, after))) throw conflict(`Plugin '${name}' was changed by another request; read it again and retry`);
  if (action === 'unload') await removeSecrets(deps, Object.values(before.secret_refs));
  await announce(deps, after, `plugin.${action === 'unload' ? 'unloaded' : action === 'activate' ? 'activated' : 'deactivated'}`);
  return { ...after, rev: before.rev + 1 };
}

async function announce(deps: Deps, p: PluginRecord, type: string): Promise<void> {
  try {
    await eventBus(deps).publish(type, {
      event_id: newUlid(),
      event_type: type,
      source: 'system',
      target_plugin: null,
      data: { plugin_name: p.name, status: p.status },
      metadata: {},
      published_at: deps.clock.now().toISOString(),
    });
  } catch (err) {
    logger.error('plugin event not published', { type, plugin: p.name, error: err as Error });
  }
}

async function removeSecrets(deps: Deps, refs: string[]): Promise<void> {
  for (const ref of refs) {
    await secretStore(deps)
      .remove(ref)
      .catch((err: unknown) => logger.error('orphaned plugin secret not removed', { error: err as Error }));
  }
}

// ---------------------------------------------------------------- configuration

export function configurationOf(p: PluginRecord): z.infer<typeof s.configurationView> {
  const def = CATALOG[p.name];
  const masked = p.config ? { ...p.config, ...Object.fromEntries(Object.keys(p.secret_refs).map((f) => [f, MASK])) } : null;
  return { plugin_name: p.name, configuration: masked, secret_fields: [...def.secretFields], config_schema: configJsonSchema(def), status: p.status, updated_at: p.updated_at };
}

/**
 * Replaces the configuration after validating it against the plugin's schema. Secret fields go to the
 * secret store (a field left out, or sent as the mask, keeps its stored secret); the record keeps only
 * their references. A discovered plugin becomes `loaded`.
 */
export async function configure(deps: Deps, name: string, input: Record<string, unknown>): Promise<PluginRecord> {
  const before = await requirePlugin(deps, name);
  const def = definitionOf(name)!;
  const next = nextStatus(before.status, 'configure');
  if (!next) throw invalidState(`Plugin '${name}' is ${before.status}: discover it again first`);
  const kept = def.secretFields.filter((f) => (input[f] === undefined || input[f] === MASK) && before.secret_refs[f]);
  const candidate = Object.fromEntries(Object.entries(input).filter(([k]) => !kept.includes(k)));
  const schema = kept.length ? def.config.partial(Object.fromEntries(kept.map((f) => [f, true])) as Record<string, true>) : def.config;
  const parsed = schema.safeParse(candidate);
  if (!parsed.success) {
    const errors: FieldError[] = parsed.error.issues.map((i) => ({ path: ['body', 'configuration', ...i.path.map(String)].join('.'), message: i.message }));
    throw validationError(errors);
  }
  const value = parsed.data as Record<string, unknown>;
  // Only https leaves the machine; plain http only where plugin URLs may be private (tests with local receivers).
  if (!deps.config.pluginsAllowPrivateUrls) {
    const plain = ['url', 'webhook_url', 'api_url'].filter((f) => typeof value[f] === 'string' && (value[f] as string).toLowerCase().startsWith('http:'));
    if (plain.length) throw validationError(plain.map((f) => ({ path: `body.configuration.${f}`, message: 'must be an https URL' })));
  }
  const fresh: Record<string, string> = {};
  try {
    for (const field of def.secretFields) {
      if (kept.includes(field) || value[field] === undefined) continue;
      fresh[field] = await secretStore(deps).put(`plugins/${name}/${field}/${newUlid()}`, String(value[field]));
    }
  } catch (err) {
    await removeSecrets(deps, Object.values(fresh));
    throw err;
  }
  const config = Object.fromEntries(Object.entries(value).filter(([k]) => !def.secretFields.includes(k)));
  const refs = { ...Object.fromEntries(kept.map((f) => [f, before.secret_refs[f]])), ...fresh };
  const after: PluginRecord = { ...before, status: next, config, secret_refs: refs, updated_at: deps.clock.now().toISOString() };
  if (!(await repo(deps).replace(before, after))) {
    await removeSecrets(deps, Object.values(fresh));
    throw conflict(`Plugin '${name}' was changed by another request; read it again and retry`);
  }
  await removeSecrets(
    deps,
    Object.entries(before.secret_refs)
      .filter(([f]) => !kept.includes(f))
      .map(([, ref]) => ref),
  );
  return { ...after, rev: before.rev + 1 };
}

// ---------------------------------------------------------------- health

interface Check {
  name: string;
  ok: boolean;
  detail: string | null;
  duration_ms: number;
}

const fromAttempt = (name: string, r: AttemptResult, okWhen: (r: AttemptResult) => boolean): Check => ({
  name,
  ok: okWhen(r),
  detail: r.error ?? (r.status_code !== null ? `HTTP ${r.status_code}` : null),
  duration_ms: r.duration_ms,
});

/** The real checks of a configured plugin: its endpoint answers (any HTTP status), its credentials where cheap. */
async function runChecks(deps: Deps, p: PluginRecord): Promise<Check[]> {
  if (!p.config) return [{ name: 'configuration', ok: false, detail: 'not configured', duration_ms: 0 }];
  let config: Record<string, unknown>;
  try {
    config = await resolveConfig(deps, p);
  } catch (err) {
    return [{ name: 'secrets', ok: false, detail: `secret unreadable: ${(err as Error).name}`, duration_ms: 0 }];
  }
  const reachable = (r: AttemptResult) => r.status_code !== null;
  switch (p.name) {
    case 'webhook':
      return [fromAttempt('endpoint_reachable', await probeUrl(deps, String(config.url)), reachable)];
    case 'slack':
      return [fromAttempt('endpoint_reachable', await probeUrl(deps, String(config.webhook_url)), reachable)];
    case 'github': {
      const r = await probeUrl(deps, `${String(config.api_url).replace(/\/+$/, '')}/user`, { authorization: `Bearer ${String(config.token)}`, 'user-agent': 'Supervisor', accept: 'application/vnd.github+json' });
      return [fromAttempt('api_reachable', r, reachable), fromAttempt('token_valid', r, (x) => x.status_code === 200)];
    }
    case 'email': {
      const started = Date.now();
      try {
        await mailSender(deps).check();
        return [{ name: 'mail_transport', ok: true, detail: null, duration_ms: Date.now() - started }];
      } catch (err) {
        return [{ name: 'mail_transport', ok: false, detail: (err as Error).message.slice(0, 300), duration_ms: Date.now() - started }];
      }
    }
  }
}

/**
 * Runs the plugin's checks and stores the outcome; the HEALTH_FAILURES_TO_ERROR-th failure in a row
 * puts an active plugin in `error` (a conditional write, audited). A lost race only skips the store.
 */
export async function checkHealth(deps: Deps, name: string, actor?: Principal | null): Promise<z.infer<typeof s.healthCheckView>> {
  const before = await requirePlugin(deps, name);
  const checks = before.status === 'unloaded' ? [{ name: 'loaded', ok: false, detail: 'unloaded', duration_ms: 0 }] : await runChecks(deps, before);
  const healthy = checks.every((c) => c.ok);
  const now = deps.clock.now().toISOString();
  const failures = healthy ? 0 : before.consecutive_health_failures + 1;
  const toError = !healthy && failures >= HEALTH_FAILURES_TO_ERROR ? nextStatus(before.status, 'fail') : undefined;
  const after: PluginRecord = {
    ...before,
    status: toError ?? before.status,
    consecutive_health_failures: failures,
    last_health_check_at: now,
    last_health_error: healthy ? null : checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail ?? 'failed'}`).join('; ').slice(0, 500),
    updated_at: now,
  };
  const stored = before.status !== 'unloaded' && (await repo(deps).replace(before, after));
  if (stored && toError) {
    await recordAudit(deps, {
      audit_id: newUlid(Date.parse(now)),
      timestamp: now,
      actor_id: actor?.userId ?? null,
      actor_username: actor?.username ?? null,
      action: 'plugin.error',
      resource_type: 'plugin',
      resource_id: name,
      outcome: 'success',
      status_code: 200,
      request_id: newUlid(),
      ip: '',
      user_agent: '',
      method: 'GET',
      path: `/api/v1/plugins/${name}/health`,
      details: { from: before.status, to: 'error', consecutive_failures: failures },
    }).catch((err: unknown) => logger.error('plugin error transition not audited', { plugin: name, error: err as Error }));
    await announce(deps, after, 'plugin.error');
  }
  const current = stored ? after : before;
  return { plugin_name: name, healthy, status: current.status, checks, consecutive_failures: stored ? failures : before.consecutive_health_failures, checked_at: now };
}

export async function checkAll(deps: Deps, actor?: Principal | null) {
  const plugins = (await listPlugins(deps, {})).filter((p) => p.status !== 'unloaded');
  const results = await Promise.all(plugins.map((p) => checkHealth(deps, p.name, actor)));
  return { healthy: results.filter((r) => r.healthy).length, unhealthy: results.filter((r) => !r.healthy).length, plugins: results };
}

// ---------------------------------------------------------------- events

/** Publishes a custom event on the bus; the delivery function hands it to the plugins that take it. */
export async function publishEvent(deps: Deps, input: z.infer<typeof s.publishBody>, eventId: string): Promise<z.infer<typeof s.publishView>> {
  if ((SYSTEM_EVENT_TYPES as readonly string[]).includes(input.event_type)) {
    throw validationError([{ path: 'body.event_type', message: `${input.event_type} is published by the platform itself` }]);
  }
  const published_at = deps.clock.now().toISOString();
  const detail = { event_id: eventId, event_type: input.event_type, source: 'api', target_plugin: input.target_plugin ?? null, data: input.data, metadata: input.metadata, published_at };
  if (Buffer.byteLength(JSON.stringify(detail)) > 200 * 1024) throw validationError([{ path: 'body.data', message: 'event is larger than 200 KiB' }]);
  await eventBus(deps).publish(input.event_type, detail);
  return { event_id: eventId, event_type: input.event_type, target_plugin: input.target_plugin ?? null, published_at };
}

export async function history(deps: Deps, filter: { plugin_name?: string; event_type?: string; status?: DeliveryStatus; from?: string; to?: string }, limit: number, startKey?: Record<string, unknown>) {
  return repo(deps).listDeliveries(filter, limit, startKey);
}

/**
 * Redelivers an event by hand, now: to the named plugin or to every plugin it went to (or, if it went
 * nowhere yet, to every active plugin that takes it). Each is one recorded `manual` attempt.
 */
export async function redeliver(deps: Deps, eventId: string, pluginName?: string): Promise<DeliveryRecord[]> {
  const event = await repo(deps).getEvent(eventId);
  if (!event) throw notFound('Event');
  const existing = (await repo(deps).deliveriesOf(eventId)).filter((d) => !pluginName || d.plugin_name === pluginName);
  const out: DeliveryRecord[] = [];
  for (const d of existing) {
    const plugin = await repo(deps).get(d.plugin_name);
    if (!plugin || plugin.status !== 'active') throw invalidState(`Plugin '${d.plugin_name}' is not active`);
    out.push(await attempt(deps, event, plugin, d, 'manual'));
  }
  if (!existing.length) {
    const candidates = pluginName ? [await requirePlugin(deps, pluginName)] : await listPlugins(deps, { status: 'active' });
    for (const plugin of candidates) {
      if (plugin.status !== 'active') throw invalidState(`Plugin '${plugin.name}' is not active`);
      if (!takes(plugin, { ...event, target_plugin: pluginName ?? event.target_plugin })) continue;
      const d = await startDelivery(deps, event, plugin);
      if (d) out.push(d);
    }
  }
  return out;
}

/** Sends a notification through an active notification plugin, now; the answer is its delivery record. */
export async function notify(deps: Deps, input: z.infer<typeof s.notificationBody>, eventId: string): Promise<DeliveryRecord> {
  const plugin = await requirePlugin(deps, input.plugin_name);
  const def = CATALOG[plugin.name];
  if (!def.notifies) throw invalidState(`Plugin '${plugin.name}' does not send notifications`);
  if (plugin.status !== 'active') throw invalidState(`Plugin '${plugin.name}' is ${plugin.status}, not active`);
  if (plugin.name === 'email' && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(input.recipient)) {
    throw validationError([{ path: 'body.recipient', message: 'must be an email address for the email plugin' }]);
  }
  const now = deps.clock.now().toISOString();
  const event: EventRecord = {
    event_id: eventId,
    event_type: 'notification.sent',
    source: 'api',
    target_plugin: plugin.name,
    data: { recipient: input.recipient, subject: input.subject, message: input.message, priority: input.priority, title: input.subject },
    metadata: {},
    published_at: now,
  };
  await repo(deps).putEvent(event);
  const existing = await repo(deps).getDelivery(eventId, plugin.name);
  if (existing) return existing;
  const record: DeliveryRecord = {
    event_id: eventId,
    event_type: event.event_type,
    plugin_name: plugin.name,
    status: 'pending',
    attempts: 0,
    attempt_log: [],
    last_status_code: null,
    last_error: null,
    last_duration_ms: null,
    next_retry_at: null,
    created_at: now,
    updated_at: now,
  };
  if (!(await repo(deps).createDelivery(record))) return (await repo(deps).getDelivery(eventId, plugin.name))!;
  if (plugin.name === 'email') {
    const config = await resolveConfig(deps, plugin);
    const result = await sendMail(deps, config, `${String(config.subject_prefix ?? '')} ${input.subject}`.trim(), `${input.message}\n\npriority: ${input.priority}\n`, [input.recipient]);
    return recordAttempt(deps, record, result, 'automatic');
  }
  return attempt(deps, event, plugin, record, 'automatic');
}

// ---------------------------------------------------------------- metrics

export async function metrics(deps: Deps): Promise<z.infer<typeof s.metricsView>> {
  const plugins = await Promise.all(PLUGIN_NAMES.map(async (name) => ({ name, record: await repo(deps).get(name), stats: await repo(deps).stats(name) })));
  const rows = plugins.map(({ name, record, stats }) => ({
    plugin_name: name,
    status: record?.status ?? null,
    deliveries: stats.deliveries,
    successes: stats.successes,
    failures: stats.failures,
    success_rate: stats.deliveries ? Math.round((stats.successes / stats.deliveries) * 10_000) / 10_000 : null,
    latency_p50_ms: percentile(stats.buckets, 0.5),
    latency_p95_ms: percentile(stats.buckets, 0.95),
    last_error: stats.last_error,
    last_error_at: stats.last_error_at,
    last_delivery_at: stats.last_delivery_at,
  }));
  const deliveries = rows.reduce((a, r) => a + r.deliveries, 0);
  const successes = rows.reduce((a, r) => a + r.successes, 0);
  return {
    totals: {
      plugins: plugins.filter((p) => p.record && p.record.status !== 'unloaded').length,
      active: plugins.filter((p) => p.record?.status === 'active').length,
      deliveries,
      failures: rows.reduce((a, r) => a + r.failures, 0),
      success_rate: deliveries ? Math.round((successes / deliveries) * 10_000) / 10_000 : null,
    },
    plugins: rows,
  };
}

export type { PluginName };
