import { TASK_STATUSES, TASK_TYPES, type TaskStatus, type TaskType } from './status.js';
import { bucketOf, bucketsOf, percentile } from '../platform/histogram.js';

/**
 * Task statistics are counters kept on write: each status change ADDs to the counters in the same
 * transaction. Durations go into a histogram of fixed buckets, so p50/p95 come from the buckets rather
 * than from reading every task. Attribute names are flat because DynamoDB's ADD only works on
 * top-level attributes.
 */

/** Upper bounds (ms) of the duration buckets; the last bucket is open-ended. */
export const DURATION_BUCKETS_MS = [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000] as const;

export type CounterDelta = Record<string, number>;

export const statusCounter = (s: TaskStatus) => `status_${s}`;
export const typeCounter = (t: TaskType) => `type_${t}`;
export const priorityCounter = (p: number) => `priority_${p}`;
export const bucketCounter = (i: number) => `duration_bucket_${i}`;

export function bucketIndex(durationMs: number): number {
  return bucketOf(DURATION_BUCKETS_MS, durationMs);
}

/** Adds `b` into `a` (summing equal keys) and drops zero entries. */
export function mergeDeltas(...deltas: CounterDelta[]): CounterDelta {
  const out: CounterDelta = {};
  for (const d of deltas) for (const [k, v] of Object.entries(d)) out[k] = (out[k] ?? 0) + v;
  for (const [k, v] of Object.entries(out)) if (v === 0) delete out[k];
  return out;
}

export interface CountedTask {
  status: TaskStatus;
  type: TaskType;
  priority: number;
}

export function createdDelta(t: CountedTask): CounterDelta {
  return { tasks_total: 1, [statusCounter(t.status)]: 1, [typeCounter(t.type)]: 1, [priorityCounter(t.priority)]: 1 };
}

export function deletedDelta(t: CountedTask): CounterDelta {
  return { tasks_total: -1, [statusCounter(t.status)]: -1, [typeCounter(t.type)]: -1, [priorityCounter(t.priority)]: -1 };
}

export function changeDelta(before: CountedTask, after: CountedTask): CounterDelta {
  const out: CounterDelta = {};
  if (before.status !== after.status) {
    out[statusCounter(before.status)] = -1;
    out[statusCounter(after.status)] = 1;
  }
  if (before.priority !== after.priority) {
    out[priorityCounter(before.priority)] = -1;
    out[priorityCounter(after.priority)] = 1;
  }
  return out;
}

export interface AttemptUsage {
  tokensIn: number;
  tokensOut: number;
  costUsd: number;
}

export function usageDelta(u: AttemptUsage): CounterDelta {
  return { tokens_in: u.tokensIn, tokens_out: u.tokensOut, cost_usd: u.costUsd, attempts_total: 1 };
}

export function durationDelta(durationMs: number): CounterDelta {
  return { [bucketCounter(bucketIndex(durationMs))]: 1, duration_count: 1, duration_ms_total: durationMs };
}

export interface StatsSummary {
  total: number;
  by_status: Record<string, number>;
  by_type: Record<string, number>;
  by_priority: Record<string, number>;
  success_rate: number | null;
  duration_ms: { count: number; mean: number | null; p50: number | null; p95: number | null; buckets: { le_ms: number | null; count: number }[] };
  tokens: { input: number; output: number; total: number };
  cost_usd: number;
  attempts: { total: number; retried: number };
}

/** Sums the counter shards and derives rates and percentiles. */
export function summarize(shards: Record<string, unknown>[]): StatsSummary {
  const sum = (key: string) => shards.reduce((acc, s) => acc + (typeof s[key] === 'number' ? (s[key] as number) : 0), 0);
  const by_status = Object.fromEntries(TASK_STATUSES.map((s) => [s, sum(statusCounter(s))]));
  const by_type = Object.fromEntries(TASK_TYPES.map((t) => [t, sum(typeCounter(t))]));
  const by_priority = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [String(i + 1), sum(priorityCounter(i + 1))]));
  const finished = by_status.completed + by_status.failed;
  const buckets = bucketsOf(DURATION_BUCKETS_MS, [...DURATION_BUCKETS_MS, null].map((_, i) => sum(bucketCounter(i))));
  const durationCount = sum('duration_count');
  const tokensIn = sum('tokens_in');
  const tokensOut = sum('tokens_out');
  const attemptsTotal = sum('attempts_total');
  return {
    total: sum('tasks_total'),
    by_status,
    by_type,
    by_priority,
    success_rate: finished === 0 ? null : round(by_status.completed / finished, 4),
    duration_ms: {
      count: durationCount,
      mean: durationCount === 0 ? null : Math.round(sum('duration_ms_total') / durationCount),
      p50: percentile(buckets, 0.5),
      p95: percentile(buckets, 0.95),
      buckets,
    },
    tokens: { input: tokensIn, output: tokensOut, total: tokensIn + tokensOut },
    cost_usd: round(sum('cost_usd'), 8),
    attempts: { total: attemptsTotal, retried: sum('attempts_retried') },
  };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/**
 * The same summary computed from tasks themselves (a caller's own, read from the creator index) instead
 * of the counter shards: each task contributes what its writes added to the counters. `attempts.retried`
 * counts the attempts after a task's first (a retried task's attempts start again from zero).
 */
export function summarizeTasks(tasks: Record<string, unknown>[]): StatsSummary {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const deltas: CounterDelta[] = [];
  for (const t of tasks) {
    const attempts = num(t.attempts);
    deltas.push(createdDelta({ status: t.status as TaskStatus, type: t.type as TaskType, priority: num(t.priority) }));
    deltas.push({ tokens_in: num(t.tokens_in), tokens_out: num(t.tokens_out), cost_usd: num(t.cost_usd), attempts_total: attempts, attempts_retried: Math.max(0, attempts - 1) });
    // The counters take a duration when a task completes.
    if (t.status === 'completed' && typeof t.duration_ms === 'number') deltas.push(durationDelta(t.duration_ms));
  }
  return summarize([mergeDeltas(...deltas)]);
}
