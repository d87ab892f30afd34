/**
 * The circuit breaker of one provider, as a pure state machine over a stored snapshot.
 *
 * closed ──(N consecutive retryable failures, or failure rate ≥ threshold over the window)──▶ open
 * open ──(cool-down elapsed)──▶ half_open (derived from the clock, never written by a timer)
 * half_open ──success──▶ closed;  half_open ──retryable failure──▶ open (cool-down restarts)
 *
 * Only retryable failures (429, 5xx, network, timeout) count against a provider: a 400 or 401 says the
 * request or the key is wrong, not that the provider is down, so it neither trips nor heals the circuit.
 */
export const CIRCUIT_STATES = ['closed', 'open', 'half_open'] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];

export interface CircuitPolicy {
  /** Consecutive retryable failures that open the circuit. */
  consecutiveFailures: number;
  /** Length of the failure-rate window. */
  windowSeconds: number;
  /** Calls needed in the window before the failure rate is trusted. */
  minCallsInWindow: number;
  /** Failure rate (0..1) over the window that opens the circuit. */
  failureRateThreshold: number;
  /** How long an open circuit refuses calls before one is let through again. */
  cooldownSeconds: number;
}

export const DEFAULT_CIRCUIT_POLICY: CircuitPolicy = {
  consecutiveFailures: 5,
  windowSeconds: 60,
  minCallsInWindow: 10,
  failureRateThreshold: 0.5,
  cooldownSeconds: 30,
};

export interface CircuitSnapshot {
  /** As last written; `open` may have become `half_open` since (see `effectiveState`). */
  state: CircuitState;
  consecutive_failures: number;
  window_started_at: string | null;
  window_calls: number;
  window_failures: number;
  opened_at: string | null;
  /** Why it last changed state. */
  reason: string | null;
  changed_at: string | null;
  last_error_code: string | null;
  /** Optimistic-concurrency version of the stored item. */
  version: number;
}

export const INITIAL_CIRCUIT: CircuitSnapshot = {
  state: 'closed',
  consecutive_failures: 0,
  window_started_at: null,
  window_calls: 0,
  window_failures: 0,
  opened_at: null,
  reason: null,
  changed_at: null,
  last_error_code: null,
  version: 0,
};

export type CallOutcome = { ok: true } | { ok: false; retryable: boolean; errorCode?: string };

export interface Transition {
  next: CircuitSnapshot;
  from: CircuitState;
  to: CircuitState;
  changed: boolean;
}

export function effectiveState(snapshot: CircuitSnapshot, now: Date, policy: CircuitPolicy = DEFAULT_CIRCUIT_POLICY): CircuitState {
  if (snapshot.state !== 'open') return snapshot.state;
  return now.getTime() >= retryAt(snapshot, policy)!.getTime() ? 'half_open' : 'open';
}

/** When an open circuit lets a call through again; null unless open. */
export function retryAt(snapshot: CircuitSnapshot, policy: CircuitPolicy = DEFAULT_CIRCUIT_POLICY): Date | null {
  if (snapshot.state !== 'open' || !snapshot.opened_at) return null;
  return new Date(new Date(snapshot.opened_at).getTime() + policy.cooldownSeconds * 1000);
}

/** Whether calls may go to the provider now (closed, or half-open after the cool-down). */
export function allowsCalls(snapshot: CircuitSnapshot, now: Date, policy: CircuitPolicy = DEFAULT_CIRCUIT_POLICY): boolean {
  return effectiveState(snapshot, now, policy) !== 'open';
}

/** A window that started after this instant is still the current one at `now` (see `isQuietSuccess`). */
export function currentWindowAfter(now: Date, policy: CircuitPolicy = DEFAULT_CIRCUIT_POLICY): string {
  return new Date(now.getTime() - policy.windowSeconds * 1000).toISOString();
}

/**
 * A success that changes nothing but the window's call count (closed, no failures pending, window still
 * current): the store can add it with an atomic ADD instead of a versioned write, so that a busy healthy
 * provider's calls do not contend for the breaker item.
 */
export function isQuietSuccess(snapshot: CircuitSnapshot, outcome: CallOutcome, now: Date, policy: CircuitPolicy = DEFAULT_CIRCUIT_POLICY): boolean {
  return (
    outcome.ok &&
    snapshot.state === 'closed' &&
    snapshot.consecutive_failures === 0 &&
    snapshot.window_started_at !== null &&
    now.getTime() - new Date(snapshot.window_started_at).getTime() < policy.windowSeconds * 1000
  );
}

/** The snapshot after one call's outcome. */
export function recordOutcome(
  snapshot: CircuitSnapshot,
  outcome: CallOutcome,
  now: Date,
  policy: CircuitPolicy = DEFAULT_CIRCUIT_POLICY,
): Transition {
  const from = effectiveState(snapshot, now, policy);
  const at = now.toISOString();
  const windowExpired =
    !snapshot.window_started_at || now.getTime() - new Date(snapshot.window_started_at).getTime() >= policy.windowSeconds * 1000;
  const window = windowExpired
    ? { window_started_at: at, window_calls: 0, window_failures: 0 }
    : { window_started_at: snapshot.window_started_at, window_calls: snapshot.window_calls, window_failures: snapshot.window_failures };
  const countsAsFailure = !outcome.ok && outcome.retryable;
  window.window_calls += 1;
  if (countsAsFailure) window.window_failures += 1;

  const base: CircuitSnapshot = {
    ...snapshot,
    ...window,
    version: snapshot.version + 1,
    last_error_code: outcome.ok ? snapshot.last_error_code : (outcome.errorCode ?? 'error'),
  };

  if (outcome.ok) {
    if (from === 'half_open') return move(base, from, 'closed', 'a call succeeded after the cool-down', at, { consecutive_failures: 0, opened_at: null, ...freshWindow(at) });
    return same(from, { ...base, consecutive_failures: 0 });
  }
  if (!countsAsFailure) return same(from, base);

  const consecutive = snapshot.consecutive_failures + 1;
  if (from === 'half_open') {
    return move(base, from, 'open', `the trial call after the cool-down failed (${outcome.errorCode ?? 'error'})`, at, { consecutive_failures: consecutive, opened_at: at });
  }
  if (from === 'open') return same(from, { ...base, consecutive_failures: consecutive });

  if (consecutive >= policy.consecutiveFailures) {
    return move(base, from, 'open', `${consecutive} consecutive failures (last: ${outcome.errorCode ?? 'error'})`, at, { consecutive_failures: consecutive, opened_at: at });
  }
  const rate = window.window_failures / window.window_calls;
  if (window.window_calls >= policy.minCallsInWindow && rate >= policy.failureRateThreshold) {
    return move(
      base,
      from,
      'open',
      `${window.window_failures} of ${window.window_calls} calls failed within ${policy.windowSeconds} s`,
      at,
      { consecutive_failures: consecutive, opened_at: at },
    );
  }
  return same(from, { ...base, consecutive_failures: consecutive });
}

function freshWindow(at: string) {
  return { window_started_at: at, window_calls: 0, window_failures: 0 };
}

function same(state: CircuitState, next: CircuitSnapshot): Transition {
  // A stored `open` whose cool-down elapsed stays `open` in storage: half-open is derived from the clock.
  return { next, from: state, to: state, changed: false };
}

function move(
  base: CircuitSnapshot,
  from: CircuitState,
  to: CircuitState,
  reason: string,
  at: string,
  fields: Partial<CircuitSnapshot>,
): Transition {
  return { next: { ...base, ...fields, state: to, reason, changed_at: at }, from, to, changed: true };
}
