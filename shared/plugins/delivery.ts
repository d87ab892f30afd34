import { newUlid } from '../platform/ids.js';
import type { Deps } from '../platform/runtime.js';
import { logger } from '../platform/logger.js';
import { secretStore } from '../platform/use/secrets.js';
import { definitionOf, matchesAny, PLUGIN_NAMES, retryDelayMs, type PluginName } from './catalog.js';
import { PluginRepository, type DeliveryRecord, type EventRecord, type PluginRecord } from './repo.js';
import { applicable, sendEvent, type AttemptResult, type ResolvedConfig } from './senders.js';

/** What the bus hands the delivery function (an EventBridge event, or the local bus's equivalent). */
export interface BusEvent {
  id: string;
  detailType: string;
  source: string;
  time: string;
  detail: Record<string, unknown>;
}

/** How long a claimed retry is held before another sweep may take it (a crashed attempt is retried). */
export const RETRY_LEASE_MS = 120_000;
/** Retries taken per sweep. */
const SWEEP_BATCH = 25;

const repo = (deps: Deps) => new PluginRepository(deps.store);

/** The plugin's configuration with its secrets read back from the secret store. */
export async function resolveConfig(deps: Deps, plugin: PluginRecord): Promise<ResolvedConfig> {
  const out: ResolvedConfig = { ...(plugin.config ?? {}) };
  for (const [field, ref] of Object.entries(plugin.secret_refs ?? {})) out[field] = await secretStore(deps).get(ref);
  return out;
}

/** Whether an active plugin takes this event: its target (if any), its filter and what it can do. */
export function takes(plugin: PluginRecord, event: EventRecord): boolean {
  if (plugin.status !== 'active' || !plugin.config) return false;
  if (event.target_plugin && event.target_plugin !== plugin.name) return false;
  const def = definitionOf(plugin.name);
  if (!def) return false;
  const filter = (plugin.config.events as string[] | undefined) ?? [...def.events];
  if (!matchesAny(def.events, event.event_type) && !event.target_plugin) return false;
  return matchesAny(filter, event.event_type) && applicable(plugin.name, event);
}

/** The stored event a bus event describes (events published through the API carry their own id). */
export function eventOf(bus: BusEvent): EventRecord {
  const d = bus.detail;
  const own = typeof d.event_id === 'string' && typeof d.event_type === 'string' && typeof d.data === 'object' && d.data !== null;
  return own
    ? {
        event_id: d.event_id as string,
        event_type: d.event_type as string,
        source: typeof d.source === 'string' ? d.source : 'api',
        target_plugin: typeof d.target_plugin === 'string' ? d.target_plugin : null,
        data: d.data as Record<string, unknown>,
        metadata: (typeof d.metadata === 'object' && d.metadata !== null ? d.metadata : {}) as Record<string, unknown>,
        published_at: typeof d.published_at === 'string' ? d.published_at : bus.time,
      }
    : { event_id: bus.id, event_type: bus.detailType, source: 'system', target_plugin: null, data: d, metadata: {}, published_at: bus.time };
}

export async function activePlugins(deps: Deps): Promise<PluginRecord[]> {
  return (await repo(deps).getMany(PLUGIN_NAMES)).filter((p) => p.status === 'active');
}

/**
 * Handles one bus event: stores it (once, however often the bus delivers it), then creates one
 * delivery per active plugin that takes it (a conditional put: a duplicate run creates none) and
 * makes its first attempt. Answers the deliveries this run made.
 */
export async function deliverBusEvent(deps: Deps, bus: BusEvent): Promise<DeliveryRecord[]> {
  const event = eventOf(bus);
  const targets = (await activePlugins(deps)).filter((p) => takes(p, event));
  // An event no plugin takes is not kept (most task events when no plugin is active).
  if (!targets.length) return [];
  await repo(deps).putEvent(event);
  const out = await Promise.all(targets.map((plugin) => startDelivery(deps, event, plugin)));
  return out.filter((d): d is DeliveryRecord => d !== undefined);
}

/** Creates the delivery of `event` to `plugin` and makes its first attempt; undefined when it already existed. */
export async function startDelivery(deps: Deps, event: EventRecord, plugin: PluginRecord): Promise<DeliveryRecord | undefined> {
  const now = deps.clock.now().toISOString();
  const record: DeliveryRecord = {
    event_id: event.event_id,
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
  if (!(await repo(deps).createDelivery(record))) return undefined;
  return attempt(deps, event, plugin, record, 'automatic');
}

/**
 * One attempt, recorded: the result goes into the delivery (conditional on the attempt count read, so
 * two runs never record the same attempt) and into the plugin's counters. A failure schedules the
 * next attempt (a stored retry with backoff and jitter) until the attempt limit, then the delivery fails.
 */
export async function attempt(
  deps: Deps,
  event: EventRecord,
  plugin: PluginRecord,
  before: DeliveryRecord,
  trigger: 'automatic' | 'manual',
): Promise<DeliveryRecord> {
  let result: AttemptResult;
  try {
    result = await sendEvent(deps, plugin.name, await resolveConfig(deps, plugin), event);
  } catch (err) {
    result = { ok: false, status_code: null, duration_ms: 0, error: `delivery failed: ${(err as Error).message}`.slice(0, 500), response_excerpt: null };
  }
  return recordAttempt(deps, before, result, trigger);
}

export async function recordAttempt(deps: Deps, before: DeliveryRecord, result: AttemptResult, trigger: 'automatic' | 'manual'): Promise<DeliveryRecord> {
  const now = deps.clock.now();
  const attempts = before.attempts + 1;
  const { pluginRetryBaseMs, pluginMaxAttempts } = deps.config;
  const retry = !result.ok && trigger === 'automatic' && attempts < pluginMaxAttempts;
  const after: DeliveryRecord = {
    ...before,
    attempts,
    attempt_log: [
      ...before.attempt_log,
      {
        attempt: attempts,
        at: now.toISOString(),
        status_code: result.status_code,
        duration_ms: result.duration_ms,
        ok: result.ok,
        error: result.error,
        response_excerpt: result.response_excerpt,
        trigger,
      },
    ],
    status: result.ok ? 'succeeded' : retry ? 'retrying' : 'failed',
    last_status_code: result.status_code,
    last_error: result.error,
    last_duration_ms: result.duration_ms,
    next_retry_at: retry ? new Date(now.getTime() + retryDelayMs(attempts, pluginRetryBaseMs, Math.random())).toISOString() : null,
    updated_at: now.toISOString() === before.updated_at ? new Date(now.getTime() + 1).toISOString() : now.toISOString(),
  };
  const written = await repo(deps).updateDelivery(before, after);
  if (!written) {
    logger.warn('plugin delivery attempt recorded by another run', { event_id: before.event_id, plugin: before.plugin_name });
    return (await repo(deps).getDelivery(before.event_id, before.plugin_name)) ?? after;
  }
  await repo(deps).countAttempt(before.plugin_name, result.ok, result.duration_ms, result.error, now.toISOString());
  logger.info('plugin delivery attempt', {
    event_id: before.event_id,
    event_type: before.event_type,
    plugin: before.plugin_name,
    attempt: attempts,
    ok: result.ok,
    status_code: result.status_code,
    duration_ms: result.duration_ms,
    outcome: after.status,
  });
  return after;
}

/**
 * Runs the retries that are due: each is claimed first (its retry time moved one lease ahead, a
 * conditional write, so a concurrent sweep skips it and a crash only delays it), then attempted.
 * A plugin that is no longer active fails the delivery. Answers how many were attempted.
 */
export async function runDueRetries(deps: Deps): Promise<number> {
  const now = deps.clock.now();
  const due = await repo(deps).dueRetries(now.toISOString(), SWEEP_BATCH);
  let attempted = 0;
  await Promise.all(
    due.map(async (d) => {
      const claimed: DeliveryRecord = {
        ...d,
        next_retry_at: new Date(now.getTime() + RETRY_LEASE_MS).toISOString(),
        updated_at: now.toISOString() === d.updated_at ? new Date(now.getTime() + 1).toISOString() : now.toISOString(),
      };
      if (!(await repo(deps).updateDelivery(d, claimed))) return;
      const [event, plugin] = await Promise.all([repo(deps).getEvent(d.event_id), repo(deps).get(d.plugin_name)]);
      if (!event || !plugin || plugin.status !== 'active') {
        await recordAttempt(deps, claimed, { ok: false, status_code: null, duration_ms: 0, error: 'the plugin is no longer active', response_excerpt: null }, 'manual');
        return;
      }
      attempted++;
      await attempt(deps, event, plugin, claimed, 'automatic');
    }),
  );
  return attempted;
}

/** A new event id (ULID). */
export const newEventId = () => newUlid();

export { type PluginName };
