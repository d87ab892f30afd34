import { ulid } from 'ulid';
import type { Deps } from '../platform/runtime.js';
import { ProviderError, type LlmProvider, type ProviderRecord } from './types.js';
import {
  DEFAULT_CIRCUIT_POLICY,
  allowsCalls,
  effectiveState,
  isQuietSuccess,
  recordOutcome,
  retryAt,
  type CircuitSnapshot,
  type CircuitState,
} from './circuit-breaker.js';
import {
  countersFromItem,
  dayRange,
  emptyCounters,
  hourRange,
  rankProviders,
  roundUsd,
  sumCounters,
  summarize,
  type UsageCounters,
} from './usage.js';
import { DEFAULT_EXPECTED_TOKENS, PRIOR_LATENCY_MS, PRIOR_SUCCESS_RATE, PRIOR_WEIGHT_CALLS, WEIGHTS, rankCandidates } from './recommendations.js';
import type { RecommendationBody, RegisterBody } from './model.js';
import { routingOrder } from './routing.js';
import { ProviderExistsError, ProviderRepository, type CircuitItem, type LastCheck, type ProviderCall } from './repo.js';
import { createLlmProvider, cliProvidersEnabled, CLI_PROVIDER_ENV, LOCAL_MODEL, ProviderConfigError } from './llm/index.js';
import { publish } from '../realtime/publisher.js';
import { conflict, notFound, validationError } from '../platform/api/errors.js';
import { logger } from '../platform/logger.js';
import { retryOnConflict, VersionConflictError } from '../platform/store/conflicts.js';
import { probe } from '../platform/probe.js';
import type { Principal } from '../platform/principal.js';

/**
 * Providers as the rest of the system uses them: the worker asks which providers are eligible, gets a
 * client for one, and reports every call; the provider endpoints register, inspect and rank them.
 */

export const LOCAL_PROVIDER_ID = 'local';
/** The local provider routes after any provider an admin registers with the default priority (100). */
export const LOCAL_PROVIDER_PRIORITY = 500;
/** Hours behind "recent" figures of the status endpoint. */
export const RECENT_WINDOW_HOURS = 24;
/** Below this many recent calls, a success rate says too little to call a provider degraded. */
const MIN_CALLS_FOR_DEGRADED = 5;
const DEGRADED_SUCCESS_RATE = 0.9;
const HEALTH_CHECK_TIMEOUT_MS = 10_000;

const repo = (deps: Deps) => new ProviderRepository(deps.store);

// ---------------------------------------------------------------------------------------------
// Used by the worker

export async function getProvider(deps: Deps, providerId: string): Promise<ProviderRecord | undefined> {
  return repo(deps).get(providerId);
}

/**
 * A client for the provider. The API key is read from the secret store by reference (an agent may bring
 * its own key and model). A key that is gone or a provider whose stored configuration cannot make a
 * client fail with a non-retryable ProviderError; a secret store that is down throws its own error.
 */
export async function providerClient(
  deps: Deps,
  record: ProviderRecord,
  override?: { model?: string; api_key_ref?: string },
): Promise<LlmProvider> {
  const ref = override?.api_key_ref ?? record.api_key_ref;
  let apiKey: string | undefined;
  if (ref) {
    try {
      apiKey = await deps.secrets.get(ref);
    } catch (err) {
      if ((err as { name?: string }).name === 'ResourceNotFoundException') {
        throw new ProviderError('api_key_missing', `the API key of provider ${record.provider_id} is no longer in the secret store`, false);
      }
      throw err;
    }
  }
  if (record.type === 'cli' && !cliProvidersEnabled()) {
    throw new ProviderError('cli_disabled', `cli providers are disabled (set ${CLI_PROVIDER_ENV}=true)`, false);
  }
  let client: LlmProvider;
  try {
    client = createLlmProvider(record, { apiKey, model: override?.model });
  } catch (err) {
    if (err instanceof ProviderConfigError) throw new ProviderError('provider_misconfigured', err.message, false);
    throw err;
  }
  const limits = record.rate_limits;
  return limits?.requests_per_minute || limits?.tokens_per_minute ? rateLimited(deps, record, client) : client;
}

/** Error code of a call refused here because the provider's configured rate limit is reached. */
export const RATE_LIMITED_LOCALLY = 'provider_rate_limit';

/**
 * Enforces the provider's configured rate limits (requests and tokens per minute, counted in the table
 * so every worker sees the same count) before the call leaves: a call over the limit fails retryable,
 * with the wait until the minute ends, and without reaching the provider.
 */
function rateLimited(deps: Deps, record: ProviderRecord, client: LlmProvider): LlmProvider {
  const providers = repo(deps);
  const limits = record.rate_limits!;
  return {
    type: client.type,
    check: (signal) => client.check(signal),
    async complete(request) {
      const now = deps.clock.now();
      const window = await providers.countRequestInWindow(record.provider_id, now);
      const wait = Math.max(1, Math.ceil((window.resetAt.getTime() - now.getTime()) / 1000));
      if (limits.requests_per_minute && window.requests > limits.requests_per_minute) {
        throw new ProviderError(RATE_LIMITED_LOCALLY, `provider ${record.provider_id} is limited to ${limits.requests_per_minute} requests per minute`, true, undefined, wait);
      }
      if (limits.tokens_per_minute && window.tokens >= limits.tokens_per_minute) {
        throw new ProviderError(RATE_LIMITED_LOCALLY, `provider ${record.provider_id} is limited to ${limits.tokens_per_minute} tokens per minute`, true, undefined, wait);
      }
      const result = await client.complete(request);
      await providers.addTokensInWindow(record.provider_id, result.tokensIn + result.tokensOut, deps.clock.now());
      return result;
    },
  };
}

/**
 * Providers a task may run on, in routing order (see `routingOrder`: enabled, declaring the capability
 * or none, by priority, the local provider never as a fallback), without those whose circuit is open.
 */
export async function eligibleProviders(deps: Deps, opts: { capability?: string } = {}): Promise<ProviderRecord[]> {
  const routable = routingOrder(await repo(deps).all(), opts.capability);
  if (!routable.length) return [];
  const circuits = await repo(deps).circuits(routable.map((p) => p.provider_id));
  const now = deps.clock.now();
  return routable.filter((p) => allowsCalls(circuits.get(p.provider_id)!, now, DEFAULT_CIRCUIT_POLICY));
}

export async function isCircuitOpen(deps: Deps, providerId: string): Promise<boolean> {
  return !allowsCalls(await repo(deps).circuit(providerId), deps.clock.now(), DEFAULT_CIRCUIT_POLICY);
}

/**
 * Records one provider call: the usage counters of its day and hour (atomic ADD) and the circuit
 * breaker (an optimistic, version-checked write, retried on a concurrent change). A change of the
 * breaker's state is published as `provider.health_changed` on the `providers` channel.
 */
export async function recordProviderCall(deps: Deps, call: ProviderCall): Promise<void> {
  // Refused before it left (the configured rate limit): the provider was not called, nothing to count.
  if (!call.ok && call.errorCode === RATE_LIMITED_LOCALLY) return;
  const now = deps.clock.now();
  const providers = repo(deps);
  await providers.addUsage(call, now);
  const outcome = call.ok ? ({ ok: true } as const) : { ok: false as const, retryable: call.retryable ?? false, errorCode: call.errorCode };
  let transition: ReturnType<typeof recordOutcome> | undefined;
  try {
    transition = await retryOnConflict(async () => {
      const current = await providers.circuit(call.providerId);
      if (isQuietSuccess(current, outcome, now, DEFAULT_CIRCUIT_POLICY) && (await providers.addQuietSuccess(call.providerId, current.window_started_at!))) return undefined;
      const next = recordOutcome(current, outcome, now, DEFAULT_CIRCUIT_POLICY);
      await providers.saveCircuit(call.providerId, next.next, current);
      return next;
    });
  } catch (err) {
    if (!(err instanceof VersionConflictError)) throw err;
    logger.warn('circuit breaker update lost to concurrent writers', { provider_id: call.providerId });
    return;
  }
  if (transition?.changed) {
    await publish(deps, ['providers'], 'provider.health_changed', {
      provider_id: call.providerId,
      from: transition.from,
      to: transition.to,
      reason: transition.next.reason,
      consecutive_failures: transition.next.consecutive_failures,
      opened_at: transition.next.opened_at,
      retry_at: retryAt(transition.next, DEFAULT_CIRCUIT_POLICY)?.toISOString() ?? null,
      at: now.toISOString(),
    });
  }
}

/** Registers the local provider (id `local`) unless it exists: the local runtime's default. */
export async function ensureLocalProvider(deps: Deps): Promise<void> {
  const at = deps.clock.now().toISOString();
  try {
    await repo(deps).create({
      provider_id: LOCAL_PROVIDER_ID,
      type: 'local',
      name: 'Local deterministic provider (offline, for development)',
      model: LOCAL_MODEL,
      pricing: { input_per_million: 0, output_per_million: 0 },
      capabilities: [],
      priority: LOCAL_PROVIDER_PRIORITY,
      enabled: true,
      settings: {},
      created_by: 'system',
      created_at: at,
      updated_at: at,
    });
  } catch (err) {
    if (!(err instanceof ProviderExistsError)) throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Used by the provider endpoints

export function maskKey(last4: string | undefined): string | null {
  if (last4 === undefined) return null;
  return `****${last4}`;
}

export function providerView(p: ProviderRecord) {
  return {
    provider_id: p.provider_id,
    type: p.type,
    name: p.name,
    base_url: p.base_url ?? null,
    model: p.model,
    api_key: maskKey(p.api_key_last4),
    pricing: p.pricing,
    capabilities: p.capabilities,
    rate_limits: p.rate_limits ?? null,
    priority: p.priority,
    enabled: p.enabled,
    settings: p.settings ?? {},
    created_by: p.created_by,
    created_at: p.created_at,
    updated_at: p.updated_at,
  };
}

/** Keys shorter than this show no characters at all when masked. */
const MIN_KEY_LENGTH_FOR_HINT = 12;

/**
 * Stores the provider; its API key goes to the secret store under a name of its own (so that a
 * registration that loses a race removes only its own secret) and only the reference is kept.
 */
export async function registerProvider(deps: Deps, principal: Principal, providerId: string, body: RegisterBody): Promise<ProviderRecord> {
  if (body.type === 'cli' && !cliProvidersEnabled()) {
    throw validationError([{ path: 'type', message: `cli providers are disabled on this deployment (${CLI_PROVIDER_ENV} is not true)` }]);
  }
  const providers = repo(deps);
  if (await providers.get(providerId)) throw conflict(`Provider ${providerId} already exists`);
  const apiKey = body.api_key;
  const at = deps.clock.now().toISOString();
  let apiKeyRef: string | undefined;
  if (apiKey !== undefined) apiKeyRef = await deps.secrets.put(`${providerId}/${ulid()}`, apiKey);
  const record: ProviderRecord = {
    provider_id: providerId,
    type: body.type,
    name: body.name,
    ...(body.base_url ? { base_url: body.base_url } : {}),
    model: body.model,
    ...(apiKeyRef ? { api_key_ref: apiKeyRef } : {}),
    ...(apiKey !== undefined ? { api_key_last4: apiKey.length >= MIN_KEY_LENGTH_FOR_HINT ? apiKey.slice(-4) : '' } : {}),
    pricing: body.pricing,
    capabilities: body.capabilities,
    ...(body.rate_limits ? { rate_limits: body.rate_limits } : {}),
    priority: body.priority,
    enabled: body.enabled,
    settings: body.settings,
    created_by: principal.userId,
    created_at: at,
    updated_at: at,
  };
  try {
    await providers.create(record);
  } catch (err) {
    if (apiKeyRef) await deps.secrets.remove(apiKeyRef).catch(() => undefined);
    if (err instanceof ProviderExistsError) throw conflict(`Provider ${providerId} already exists`);
    throw err;
  }
  return record;
}

/** Deletes the provider and its circuit breaker, then its secret. */
export async function unregisterProvider(deps: Deps, providerId: string): Promise<ProviderRecord> {
  const deleted = await repo(deps).delete(providerId);
  if (!deleted) throw notFound('Provider');
  if (deleted.api_key_ref) {
    await deps.secrets.remove(deleted.api_key_ref).catch((err) => {
      logger.error('provider secret could not be removed', { provider_id: providerId, error: (err as Error).name });
    });
  }
  return deleted;
}

export async function listProviders(deps: Deps, limit: number, startKey?: Record<string, unknown>, type?: string) {
  return repo(deps).list(limit, startKey, type);
}

export async function requireProvider(deps: Deps, providerId: string): Promise<ProviderRecord> {
  const record = await repo(deps).get(providerId);
  if (!record) throw notFound('Provider');
  return record;
}

export function circuitView(c: CircuitSnapshot, now: Date) {
  const state = effectiveState(c, now, DEFAULT_CIRCUIT_POLICY);
  return {
    state,
    consecutive_failures: c.consecutive_failures,
    opened_at: c.opened_at,
    retry_at: state === 'open' ? (retryAt(c, DEFAULT_CIRCUIT_POLICY)?.toISOString() ?? null) : null,
    reason: c.reason,
    changed_at: c.changed_at,
    last_error_code: c.last_error_code,
  };
}

/** A live check of the provider (list models, or the cheapest call the type has), with its latency. */
export async function checkProviderHealth(deps: Deps, providerId: string) {
  const record = await requireProvider(deps, providerId);
  const result = await probe(providerId, async (signal) => (await providerClient(deps, record)).check(signal), { timeoutMs: HEALTH_CHECK_TIMEOUT_MS });
  let error: { code: string; message: string; status: number | null; retryable: boolean } | null = null;
  if (!result.ok) {
    const err = result.timedOut ? new ProviderError('timeout', `${record.name} did not answer within ${HEALTH_CHECK_TIMEOUT_MS} ms`, true) : result.error;
    if (!(err instanceof ProviderError)) throw err;
    error = { code: err.code, message: err.message, status: err.status ?? null, retryable: err.retryable };
  }
  const latencyMs = Math.round(result.latencyMs * 10) / 10;
  const checkedAt = deps.clock.now();
  const check: LastCheck = {
    ok: error === null,
    latency_ms: latencyMs,
    checked_at: checkedAt.toISOString(),
    error_code: error?.code ?? null,
    error_message: error?.message ?? null,
  };
  const providers = repo(deps);
  await providers.saveLastCheck(providerId, check);
  const circuit = await providers.circuit(providerId);
  return {
    provider_id: providerId,
    type: record.type,
    healthy: error === null,
    latency_ms: latencyMs,
    checked_at: check.checked_at,
    error,
    circuit: circuitView(circuit, checkedAt),
  };
}

type HealthState = 'healthy' | 'degraded' | 'unhealthy' | 'unknown' | 'disabled';

export function healthOf(enabled: boolean, circuit: CircuitState, recent: ReturnType<typeof summarize>, lastCheck: LastCheck | null): HealthState {
  if (!enabled) return 'disabled';
  if (circuit === 'open') return 'unhealthy';
  if (circuit === 'half_open') return 'degraded';
  if (recent.requests >= MIN_CALLS_FOR_DEGRADED && (recent.success_rate ?? 1) < DEGRADED_SUCCESS_RATE) return 'degraded';
  // A failed live check with no calls to contradict it means unreachable; with calls, it is one signal among many.
  if (lastCheck && !lastCheck.ok) return recent.requests === 0 ? 'unhealthy' : 'degraded';
  if (recent.requests > 0 || lastCheck?.ok) return 'healthy';
  return 'unknown';
}

/** Every provider with its circuit, its last live check and its figures over the last 24 hours. */
export async function providersStatus(deps: Deps) {
  const providers = repo(deps);
  const all = await providers.all();
  const now = deps.clock.now();
  const hours = hourRange(now, RECENT_WINDOW_HOURS);
  const [circuits, recentUsage] = await Promise.all([
    providers.circuits(all.map((p) => p.provider_id)),
    Promise.all(all.map((p) => providers.usageByHour(p.provider_id, hours[0], hours[hours.length - 1]))),
  ]);
  const summary: Record<HealthState, number> & { total: number } = { total: all.length, healthy: 0, degraded: 0, unhealthy: 0, unknown: 0, disabled: 0 };
  const items = all.map((p, i) => {
    const circuit: CircuitItem = circuits.get(p.provider_id)!;
    const recent = summarize(sumCounters(recentUsage[i].map((u) => countersFromItem(u.item))));
    const view = circuitView(circuit, now);
    const health = healthOf(p.enabled, view.state, recent, circuit.last_check);
    summary[health]++;
    return {
      provider_id: p.provider_id,
      name: p.name,
      type: p.type,
      model: p.model,
      enabled: p.enabled,
      priority: p.priority,
      health,
      circuit: view,
      recent: { ...recent, window_hours: RECENT_WINDOW_HOURS },
      last_check: circuit.last_check,
    };
  });
  return { providers: items, summary, checked_at: now.toISOString() };
}

/** Requests, tokens, cost and errors of one provider per UTC day over the last `days` days. */
export async function providerUsage(deps: Deps, providerId: string, days: number) {
  await requireProvider(deps, providerId);
  const range = dayRange(deps.clock.now(), days);
  const stored = await repo(deps).usageByDay(providerId, range[0], range[range.length - 1]);
  const byPeriod = new Map(stored.map((u) => [u.period, countersFromItem(u.item)]));
  const perDay = range.map((date) => ({ date, counters: byPeriod.get(date) ?? emptyCounters() }));
  return {
    provider_id: providerId,
    days,
    from: range[0],
    to: range[range.length - 1],
    totals: summarize(sumCounters(perDay.map((d) => d.counters))),
    by_day: perDay.map((d) => ({ date: d.date, ...summarize(d.counters) })),
  };
}

/** Totals, per-provider figures and rankings across every provider with usage in the window. */
export async function providersAnalytics(deps: Deps, days: number) {
  const range = dayRange(deps.clock.now(), days);
  const providers = repo(deps);
  const [stored, registered] = await Promise.all([providers.usageOfAllByDay(range[0], range[range.length - 1]), providers.all()]);
  const byProvider = new Map<string, UsageCounters[]>();
  const byDay = new Map<string, UsageCounters[]>();
  for (const u of stored) {
    const counters = countersFromItem(u.item);
    byProvider.set(u.provider_id, [...(byProvider.get(u.provider_id) ?? []), counters]);
    byDay.set(u.period, [...(byDay.get(u.period) ?? []), counters]);
  }
  const usages = [...byProvider.entries()].map(([provider_id, list]) => ({ provider_id, counters: sumCounters(list) }));
  const total = sumCounters(usages.map((u) => u.counters));
  const records = new Map(registered.map((p) => [p.provider_id, p]));
  const share = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 10_000) / 10_000 : null);
  return {
    days,
    from: range[0],
    to: range[range.length - 1],
    totals: { ...summarize(total), providers_with_usage: usages.length },
    providers: usages
      .map((u) => {
        const record = records.get(u.provider_id);
        return {
          provider_id: u.provider_id,
          name: record?.name ?? null,
          type: record?.type ?? null,
          registered: record !== undefined,
          ...summarize(u.counters),
          share_of_requests: share(u.counters.requests, total.requests),
          share_of_cost: share(u.counters.cost_usd, total.cost_usd),
        };
      })
      .sort((a, b) => b.requests - a.requests || a.provider_id.localeCompare(b.provider_id)),
    rankings: rankProviders(usages),
    by_day: range.map((date) => {
      const c = sumCounters(byDay.get(date) ?? []);
      return { date, requests: c.requests, failures: c.failures, tokens_in: c.tokens_in, tokens_out: c.tokens_out, cost_usd: roundUsd(c.cost_usd) };
    }),
  };
}

/**
 * Enabled providers ranked for the request. The capability filter is `capability`, or else the task
 * type when at least one provider declares it; providers that declare no capabilities count as general
 * purpose and always qualify.
 */
export async function recommendProviders(deps: Deps, body: RecommendationBody) {
  const providers = repo(deps);
  const enabled = (await providers.all()).filter((p) => p.enabled);
  let capability = body.capability ?? null;
  if (!capability && body.task_type && enabled.some((p) => p.capabilities.includes(body.task_type!))) capability = body.task_type;
  const candidates = enabled.filter((p) => !capability || p.capabilities.length === 0 || p.capabilities.includes(capability));
  const now = deps.clock.now();
  const range = dayRange(now, body.window_days);
  const [circuits, usage] = await Promise.all([
    providers.circuits(candidates.map((p) => p.provider_id)),
    Promise.all(candidates.map((p) => providers.usageByDay(p.provider_id, range[0], range[range.length - 1]))),
  ]);
  const expected = body.expected_tokens ?? DEFAULT_EXPECTED_TOKENS;
  const ranked = rankCandidates(
    candidates.map((p, i) => ({
      provider_id: p.provider_id,
      name: p.name,
      type: p.type,
      model: p.model,
      priority: p.priority,
      pricing: p.pricing,
      circuit_state: effectiveState(circuits.get(p.provider_id)!, now, DEFAULT_CIRCUIT_POLICY),
      counters: sumCounters(usage[i].map((u) => countersFromItem(u.item))),
    })),
    body.constraints,
    expected,
  );
  return {
    recommendations: ranked.slice(0, body.limit),
    basis: {
      window_days: body.window_days,
      expected_tokens: { input: expected.input, output: expected.output },
      weights: { ...WEIGHTS },
      priors: { success_rate: PRIOR_SUCCESS_RATE, prior_weight_calls: PRIOR_WEIGHT_CALLS, latency_ms: PRIOR_LATENCY_MS },
      capability,
      considered: candidates.length,
    },
  };
}

