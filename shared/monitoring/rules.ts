/**
 * Alert rules, pure: the comparison and the state machine of one rule's label set, with Prometheus'
 * semantics (inactive → pending → firing; firing → resolved once the condition has not held for
 * `keep_firing_for_seconds`, counted from the first evaluation that found it cleared, as Prometheus'
 * `KeepFiringSince`; a pending label set whose condition stops holding goes back to inactive).
 * A label set whose condition keeps holding (or keeps not holding) keeps the same state, so an
 * evaluation that sees no change has nothing to write.
 */
import type { Condition, RuleState } from './model.js';

export function holds(condition: Condition, value: number | null, threshold: number): boolean {
  if (value === null || !Number.isFinite(value)) return false;
  switch (condition) {
    case 'gt':
      return value > threshold;
    case 'gte':
      return value >= threshold;
    case 'lt':
      return value < threshold;
    case 'lte':
      return value <= threshold;
    case 'eq':
      return value === threshold;
    case 'ne':
      return value !== threshold;
  }
}

/** What the evaluator keeps per rule and label set. */
export interface SeriesState {
  state: RuleState;
  /** When the condition started holding (pending since). */
  active_since: string | null;
  /** A firing label set: the first evaluation at which the condition no longer held (null while it holds). */
  cleared_since: string | null;
  /** The open alert (pending or firing). */
  alert_id: string | null;
  value_at_pending: number | null;
}

export const INACTIVE: SeriesState = { state: 'inactive', active_since: null, cleared_since: null, alert_id: null, value_at_pending: null };

export type Transition = 'none' | 'pending' | 'firing' | 'resolved' | 'cleared';

/**
 * The next state of a label set. `cleared`: a pending label set whose condition stopped holding (no
 * alert was fired, nothing to notify). `resolved`: a firing alert ends.
 */
export function step(
  current: SeriesState,
  input: { holds: boolean; now: Date; value: number | null; forSeconds: number; keepFiringForSeconds: number; newAlertId: () => string },
): { next: SeriesState; transition: Transition } {
  const nowIso = input.now.toISOString();
  const now = input.now.getTime();
  if (input.holds) {
    if (current.state === 'inactive') {
      const pending: SeriesState = { state: 'pending', active_since: nowIso, cleared_since: null, alert_id: input.newAlertId(), value_at_pending: input.value };
      if (input.forSeconds === 0) return { next: { ...pending, state: 'firing' }, transition: 'firing' };
      return { next: pending, transition: 'pending' };
    }
    if (current.state === 'pending') {
      const since = Date.parse(current.active_since ?? nowIso);
      if (now - since >= input.forSeconds * 1000) return { next: { ...current, state: 'firing' }, transition: 'firing' };
      return { next: current, transition: 'none' };
    }
    return { next: current.cleared_since ? { ...current, cleared_since: null } : current, transition: 'none' };
  }
  if (current.state === 'pending') return { next: INACTIVE, transition: 'cleared' };
  if (current.state === 'firing') {
    const clearedSince = current.cleared_since ?? nowIso;
    if (now - Date.parse(clearedSince) >= input.keepFiringForSeconds * 1000) return { next: INACTIVE, transition: 'resolved' };
    return { next: current.cleared_since ? current : { ...current, cleared_since: clearedSince }, transition: 'none' };
  }
  return { next: current, transition: 'none' };
}
