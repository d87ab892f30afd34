import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CIRCUIT_POLICY as P,
  INITIAL_CIRCUIT,
  allowsCalls,
  effectiveState,
  isQuietSuccess,
  recordOutcome,
  retryAt,
  type CallOutcome,
  type CircuitSnapshot,
} from '../../../shared/providers/circuit-breaker.js';

const t0 = new Date('2026-01-08T12:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
const fail: CallOutcome = { ok: false, retryable: true, errorCode: 'server_error' };
const ok: CallOutcome = { ok: true };

function apply(start: CircuitSnapshot, outcomes: CallOutcome[], stepMs = 100, from = 0) {
  let s = start;
  const transitions: string[] = [];
  outcomes.forEach((o, i) => {
    const t = recordOutcome(s, o, at(from + i * stepMs));
    if (t.changed) transitions.push(`${t.from}->${t.to}`);
    s = t.next;
  });
  return { s, transitions };
}

describe('circuit breaker', () => {
  it('opens after N consecutive retryable failures, not before', () => {
    const before = apply(INITIAL_CIRCUIT, Array(P.consecutiveFailures - 1).fill(fail));
    expect(before.s.state).toBe('closed');
    expect(before.s.consecutive_failures).toBe(P.consecutiveFailures - 1);
    const after = apply(before.s, [fail], 100, 1000);
    expect(after.s.state).toBe('open');
    expect(after.transitions).toEqual(['closed->open']);
    expect(after.s.reason).toContain(`${P.consecutiveFailures} consecutive failures`);
  });

  it('a success resets the consecutive count', () => {
    const { s } = apply(INITIAL_CIRCUIT, [fail, fail, fail, fail, ok, fail, fail, fail, fail], 10_000);
    expect(s.state).toBe('closed');
    expect(s.consecutive_failures).toBe(4);
  });

  it('opens on the failure rate over the window even without N in a row', () => {
    // ok, fail alternating: never 5 in a row, but 50 % of 10 calls within 60 s.
    const outcomes = Array.from({ length: 10 }, (_, i) => (i % 2 ? fail : ok));
    const { s, transitions } = apply(INITIAL_CIRCUIT, outcomes, 1000);
    expect(transitions).toEqual(['closed->open']);
    expect(s.reason).toContain('5 of 10 calls failed');
  });

  it('the failure-rate window rolls over: old calls stop counting', () => {
    const outcomes = Array.from({ length: 10 }, (_, i) => (i % 2 ? fail : ok));
    // 10 s apart: the window of 60 s never holds 10 calls.
    const { s } = apply(INITIAL_CIRCUIT, outcomes, 10_000);
    expect(s.state).toBe('closed');
    expect(s.window_calls).toBeLessThan(P.minCallsInWindow);
  });

  it('non-retryable failures (400, 401) neither trip nor heal it', () => {
    const auth: CallOutcome = { ok: false, retryable: false, errorCode: 'authentication_failed' };
    const { s } = apply(INITIAL_CIRCUIT, Array(20).fill(auth));
    expect(s.state).toBe('closed');
    expect(s.consecutive_failures).toBe(0);
    expect(s.last_error_code).toBe('authentication_failed');
  });

  it('refuses calls while open, becomes half-open after the cool-down, closes on a success', () => {
    const open = apply(INITIAL_CIRCUIT, Array(5).fill(fail)).s;
    const openedAt = new Date(open.opened_at!);
    expect(allowsCalls(open, new Date(openedAt.getTime() + P.cooldownSeconds * 1000 - 1))).toBe(false);
    expect(retryAt(open)!.getTime()).toBe(openedAt.getTime() + P.cooldownSeconds * 1000);
    const later = new Date(openedAt.getTime() + P.cooldownSeconds * 1000);
    expect(effectiveState(open, later)).toBe('half_open');
    expect(allowsCalls(open, later)).toBe(true);
    const healed = recordOutcome(open, ok, later);
    expect(healed).toMatchObject({ changed: true, from: 'half_open', to: 'closed' });
    expect(healed.next).toMatchObject({ state: 'closed', consecutive_failures: 0, opened_at: null, window_calls: 0 });
  });

  it('a failure while half-open opens it again with a fresh cool-down', () => {
    const open = apply(INITIAL_CIRCUIT, Array(5).fill(fail)).s;
    const later = new Date(new Date(open.opened_at!).getTime() + P.cooldownSeconds * 1000 + 5);
    const again = recordOutcome(open, fail, later);
    expect(again).toMatchObject({ changed: true, from: 'half_open', to: 'open' });
    expect(again.next.opened_at).toBe(later.toISOString());
    expect(allowsCalls(again.next, new Date(later.getTime() + 1000))).toBe(false);
  });

  it('outcomes of calls still in flight when it opened do not change an open circuit', () => {
    const open = apply(INITIAL_CIRCUIT, Array(5).fill(fail)).s;
    const t = recordOutcome(open, ok, new Date(new Date(open.opened_at!).getTime() + 1000));
    expect(t.changed).toBe(false);
    expect(t.next.state).toBe('open');
    expect(t.next.opened_at).toBe(open.opened_at);
  });

  it('every outcome bumps the version (optimistic concurrency)', () => {
    const { s } = apply(INITIAL_CIRCUIT, [ok, fail, ok]);
    expect(s.version).toBe(3);
  });

  it('a success is quiet (an atomic count) only when closed, without pending failures, in the current window', () => {
    const fresh = recordOutcome(INITIAL_CIRCUIT, ok, t0).next;
    expect(isQuietSuccess(INITIAL_CIRCUIT, ok, t0)).toBe(false); // no window yet
    expect(isQuietSuccess(fresh, ok, at(1000))).toBe(true);
    expect(isQuietSuccess(fresh, fail, at(1000))).toBe(false);
    expect(isQuietSuccess(fresh, ok, at(P.windowSeconds * 1000))).toBe(false); // the window rolls over
    const pending = recordOutcome(fresh, fail, at(1000)).next;
    expect(isQuietSuccess(pending, ok, at(2000))).toBe(false);
    const open = apply(INITIAL_CIRCUIT, Array(5).fill(fail)).s;
    expect(isQuietSuccess(open, ok, at(1000))).toBe(false);
  });
});
