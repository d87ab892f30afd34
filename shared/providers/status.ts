/**
 * What providers do once registered: every call recorded (usage counters and circuit breaker), a live
 * health check, the status of all providers, usage per day, analytics across providers, and the
 * recommendations for a request. Registration, listing and clients are in service.ts.
 */
import type { Deps } from '../platform/runtime.js';
import { ProviderError } from './types.js';
import {
  currentWindowAfter,
  DEFAULT_CIRCUIT_POLICY,
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
import type { RecommendationBody } from './model.js';
import { ProviderRepository, type CircuitItem, type LastCheck, type ProviderCall } from './repo.js';
import { providerClient, RATE_LIMITED_LOCALLY, requireProvider } from './service.js';
import { publish } from '../realtime/publisher.js';
import { logger } from '../platform/logger.js';
import { retryOnConflict, VersionConflictError } from '../platform/store/conflicts.js';
import { probe } from '../platform/probe.js';
import { RateLimitRepository } from '../platform/store/rate-limits.js';
import { forbidden, rateLimited } from '../platform/errors.js';
import { can, type Principal } from '../platform/principal.js';

/** Hours behind "recent" figures of the status endpoint. */
export const RECENT_WINDOW_HOURS = 24;
/** Below this many recent calls, a success rate says too little to call a provider degraded. */
const MIN_CALLS_FOR_DEGRADED = 5;
const DEGRADED_SUCCESS_RATE = 0.9;
const HEALTH_CHECK_TIMEOUT_MS = 10_000;

const repo = (deps: Deps) => new ProviderRepository(deps.store);

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
  await Promise.all([providers.addUsage(call, now), recordInBreaker(deps, call, now)]);
}

/** The breaker's part of `recordProviderCall`. */
async function recordInBreaker(deps: Deps, call: ProviderCall, now: Date): Promise<void> {
  const providers = repo(deps);
  const outcome = call.ok ? ({ ok: true } as const) : { ok: false as const, retryable: call.retryable ?? false, errorCode: call.errorCode };
  // The usual case, a success while all is well, is one conditional write with no read before it.
  const windowAfter = currentWindowAfter(now, DEFAULT_CIRCUIT_POLICY);
  if (outcome.ok && (await providers.addQuietSuccess(call.providerId, windowAfter))) return;
  let transition: ReturnType<typeof recordOutcome> | undefined;
  try {
    transition = await retryOnConflict(async () => {
      const current = await providers.circuit(call.providerId);
      if (isQuietSuccess(current, outcome, now, DEFAULT_CIRCUIT_POLICY) && (await providers.addQuietSuccess(call.providerId, windowAfter))) return undefined;
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

/** One live check per provider per this many seconds; the others get the last check. */
export const HEALTH_CHECK_INTERVAL_SECONDS = 10;

/**
 * A live check of the provider (list models, or the cheapest call the type has), with its latency.
 * At most one live check per provider every HEALTH_CHECK_INTERVAL_SECONDS: a request within the
 * interval gets the last check (`cached: true`), or a 429 when there is none yet. A `cli` provider's
 * check starts a process: only provider managers may run it. The target's own error message is shown
 * to provider managers only; others see its code and status.
 */
export async function checkProviderHealth(deps: Deps, principal: Principal, providerId: string) {
  const record = await requireProvider(deps, providerId);
  const manager = can(principal, 'providers:manage');
  if (record.type === 'cli' && !manager) throw forbidden('Only provider managers may run the health check of a cli provider');
  const providers = repo(deps);
  const now = deps.clock.now();
  const cachedCheck = (circuit: CircuitItem) => {
    const last = circuit.last_check!;
    return {
      provider_id: providerId,
      type: record.type,
      healthy: last.ok,
      latency_ms: last.latency_ms,
      checked_at: last.checked_at,
      cached: true,
      error: last.ok
        ? null
        : { code: last.error_code ?? 'unknown', message: manager ? last.error_message : null, status: last.error_status ?? null, retryable: last.error_retryable ?? false },
      circuit: circuitView(circuit, now),
    };
  };
  // A check younger than the interval is answered as it is; concurrent requests past it race for one slot.
  const before = await providers.circuit(providerId);
  if (before.last_check && now.getTime() - Date.parse(before.last_check.checked_at) < HEALTH_CHECK_INTERVAL_SECONDS * 1000) return cachedCheck(before);
  const slot = await new RateLimitRepository(deps.store).hit(`provider-health#${providerId}`, HEALTH_CHECK_INTERVAL_SECONDS, now);
  if (slot.count > 1) {
    const circuit = await providers.circuit(providerId);
    if (circuit.last_check) return cachedCheck(circuit);
    throw rateLimited((slot.resetAt.getTime() - now.getTime()) / 1000, `One live check per provider every ${HEALTH_CHECK_INTERVAL_SECONDS} s; try again shortly`);
  }
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
    error_status: error?.status ?? null,
    error_retryable: error?.retryable ?? null,
  };
  await providers.saveLastCheck(providerId, check);
  const circuit = await providers.circuit(providerId);
  return {
    provider_id: providerId,
    type: record.type,
    healthy: error === null,
    latency_ms: latencyMs,
    checked_at: check.checked_at,
    cached: false,
    error: error && { ...error, message: manager ? error.message : null },
    circuit: circuitView(circuit, checkedAt),
  };
}

/** A last check as a principal may see it: the target's message only for provider managers. */
function lastCheckFor(check: LastCheck | null, manager: boolean) {
  if (!check) return null;
  return {
    ok: check.ok,
    latency_ms: check.latency_ms,
    checked_at: check.checked_at,
    error_code: check.error_code,
    error_message: manager ? check.error_message : null,
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

/**
 * Every provider with its circuit, its last live check and its figures over the last 24 hours; the
 * last check's error message only for provider managers.
 */
export async function providersStatus(deps: Deps, principal: Principal) {
  const manager = can(principal, 'providers:manage');
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
      last_check: lastCheckFor(circuit.last_check, manager),
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

