/**
 * Pure rules of the capacity ledger: which pools the configuration seeds, what a request needs in
 * each pool, which conflicts the state shows, and the figures computed from the ledger's history.
 * No I/O here.
 */
import type { ResourcePoolsConfig } from '../platform/config.js';
import type { TaskType } from '../tasks/status.js';
import type { Amounts, ConflictView, PoolType, ResourceRequest, Strategy } from './model.js';

export const WORKER_POOL = 'worker_concurrency';
export const providerPool = (providerId: string) => `provider_concurrency:${providerId}`;
export const hostPool = (host: string, dim: 'cpu' | 'memory' | 'disk' | 'gpu') => `cli_runner:${host}:${dim}`;

export interface PoolSeed {
  pool: string;
  type: PoolType;
  unit: string;
  capacity: number;
  min_capacity: number;
  max_capacity: number;
}

const UNITS: Record<string, string> = { cpu: 'cores', memory: 'MB', disk: 'MB', network: 'Mbps', gpu: 'gpus' };
/** Tasks running at once: from 1 (the event source mapping's floor of 2 invocations then delivers more, and the ledger gates) to 5000 (1000 invocations of 5). */
export const WORKER_BOUNDS = { min: 1, max: 5000 } as const;
const GENERAL_MAX = 100_000_000;

/** The pools the configuration describes (provider pools are seeded when a provider is first used). */
export function configuredPools(config: ResourcePoolsConfig): PoolSeed[] {
  const seeds: PoolSeed[] = [
    { pool: WORKER_POOL, type: 'worker_concurrency', unit: 'tasks', capacity: config.worker_concurrency, min_capacity: WORKER_BOUNDS.min, max_capacity: WORKER_BOUNDS.max },
    { pool: 'cpu', type: 'cpu', unit: UNITS.cpu, capacity: config.cpu, min_capacity: 0, max_capacity: GENERAL_MAX },
    { pool: 'memory', type: 'memory', unit: UNITS.memory, capacity: config.memory_mb, min_capacity: 0, max_capacity: GENERAL_MAX },
    { pool: 'disk', type: 'disk', unit: UNITS.disk, capacity: config.disk_mb, min_capacity: 0, max_capacity: GENERAL_MAX },
    { pool: 'network', type: 'network', unit: UNITS.network, capacity: config.network_mbps, min_capacity: 0, max_capacity: GENERAL_MAX },
    { pool: 'gpu', type: 'gpu', unit: UNITS.gpu, capacity: config.gpu, min_capacity: 0, max_capacity: GENERAL_MAX },
  ];
  for (const h of config.cli_runners) {
    seeds.push(
      { pool: hostPool(h.host, 'cpu'), type: 'cli_runner', unit: UNITS.cpu, capacity: h.cpu, min_capacity: 0, max_capacity: GENERAL_MAX },
      { pool: hostPool(h.host, 'memory'), type: 'cli_runner', unit: UNITS.memory, capacity: h.memory_mb, min_capacity: 0, max_capacity: GENERAL_MAX },
      { pool: hostPool(h.host, 'disk'), type: 'cli_runner', unit: UNITS.disk, capacity: h.disk_mb, min_capacity: 0, max_capacity: GENERAL_MAX },
      { pool: hostPool(h.host, 'gpu'), type: 'cli_runner', unit: UNITS.gpu, capacity: h.gpu, min_capacity: 0, max_capacity: GENERAL_MAX },
    );
  }
  return seeds;
}

export function providerPoolSeed(providerId: string, capacity: number): PoolSeed {
  return { pool: providerPool(providerId), type: 'provider_concurrency', unit: 'calls', capacity, min_capacity: 0, max_capacity: 10_000 };
}

/** What a task of each type holds while it runs when it declares nothing (it may declare its own). */
export const TYPE_DEFAULTS: Record<TaskType, ResourceRequest> = {
  pr_review: { cpu: 1, memory_mb: 512 },
  issue_summary: { cpu: 1, memory_mb: 256 },
  code_analysis: { cpu: 1, memory_mb: 1024, disk_mb: 512 },
  refactor: { cpu: 2, memory_mb: 2048, disk_mb: 1024 },
  bug_fix: { cpu: 2, memory_mb: 2048, disk_mb: 1024 },
  feature: { cpu: 2, memory_mb: 2048, disk_mb: 1024 },
  documentation: { cpu: 1, memory_mb: 256 },
  testing: { cpu: 2, memory_mb: 2048, disk_mb: 1024 },
  security_audit: { cpu: 1, memory_mb: 1024, disk_mb: 512 },
  custom: { cpu: 1, memory_mb: 256 },
};

/** The request as amounts by pool; zero amounts are left out. */
export function amountsFor(request: ResourceRequest, providerId: string | null): Amounts {
  const out: Amounts = {};
  const put = (pool: string, n: number | undefined) => {
    if (n && n > 0) out[pool] = (out[pool] ?? 0) + n;
  };
  const host = request.cli_runner;
  put(WORKER_POOL, request.worker_slots);
  put(host ? hostPool(host, 'cpu') : 'cpu', request.cpu);
  put(host ? hostPool(host, 'memory') : 'memory', request.memory_mb);
  put(host ? hostPool(host, 'disk') : 'disk', request.disk_mb);
  put(host ? hostPool(host, 'gpu') : 'gpu', request.gpu);
  put('network', request.network_mbps);
  if (providerId) put(providerPool(providerId), request.provider_slots);
  return out;
}

/** What the worker holds for a task: its declared resources (or its type's), one worker slot, one call on a named provider. */
export function workerRequest(task: { type: TaskType; resources?: ResourceRequest | null; provider_id: string | null }): Amounts {
  const declared = task.resources ?? TYPE_DEFAULTS[task.type];
  return amountsFor({ ...declared, worker_slots: Math.max(1, declared.worker_slots ?? 1), provider_slots: task.provider_id ? Math.max(1, declared.provider_slots ?? 1) : 0 }, task.provider_id);
}

export interface PoolState {
  pool: string;
  capacity: number;
  allocated: number;
  free: number;
}

/** What is missing in each pool for these amounts (empty when they fit). */
export function shortfall(pools: ReadonlyMap<string, PoolState>, want: Amounts): Record<string, { wanted: number; free: number; missing: number }> {
  const out: Record<string, { wanted: number; free: number; missing: number }> = {};
  for (const [pool, n] of Object.entries(want)) {
    const free = pools.get(pool)?.free ?? 0;
    if (free < n) out[pool] = { wanted: n, free, missing: n - free };
  }
  return out;
}

export interface Waiter {
  task_id: string;
  amounts: Amounts;
  priority: number;
  since: string;
  expires_at_iso: string;
  source: 'worker' | 'api';
  /** The task's creator: who may see the entry. */
  created_by: string;
  /** A worker waiter's run token: the message that wakes its task when capacity frees carries it. */
  run_token?: string;
}

/** Live waiters, highest priority first, then oldest. */
export function waitOrder(waiters: readonly Waiter[], nowMs: number): Waiter[] {
  return waiters.filter((w) => Date.parse(w.expires_at_iso) > nowMs).sort((a, b) => b.priority - a.priority || a.since.localeCompare(b.since) || a.task_id.localeCompare(b.task_id));
}

/**
 * Priority order: a request is held back while a live waiter of higher priority needs a pool it
 * touches and granting it would leave that waiter short. Capacity the waiter could not use anyway
 * (it needs more than is free, in that pool or another this request does not touch) does not block.
 */
export function blockedBy(pools: ReadonlyMap<string, PoolState>, want: Amounts, priority: number, taskId: string, waiters: readonly Waiter[], nowMs: number): Waiter | undefined {
  for (const w of waitOrder(waiters, nowMs)) {
    if (w.task_id === taskId || w.priority <= priority) continue;
    // A waiter short elsewhere could not use the room now: holding it back would only idle the pool.
    if (Object.entries(w.amounts).some(([pool, n]) => (pools.get(pool)?.free ?? 0) < n && !want[pool])) continue;
    for (const [pool, n] of Object.entries(w.amounts)) {
      const mine = want[pool];
      if (!mine) continue;
      const free = pools.get(pool)?.free ?? 0;
      if (free >= n && free - mine < n) return w;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- conflicts

export interface AllocationState {
  task_id: string;
  amounts: Amounts;
  priority: number;
  source: 'worker' | 'api';
  since: string;
  lease_until: string;
  created_by: string;
}

export interface ConflictInputs {
  now: Date;
  pools: PoolState[];
  allocations: AllocationState[];
  waiters: Waiter[];
  /** Status of each allocation's task; missing = the task no longer exists. */
  taskStatus: ReadonlyMap<string, string>;
  /** When each over-committed pool became so (its forced scale-down). */
  overCommittedSince: ReadonlyMap<string, string>;
  /** Conflicts deferred until a time. */
  deferred: ReadonlyMap<string, string>;
}

/** A high-priority request waiting this long while lower ones hold its pools is starving. */
export const STARVATION_SECONDS = 60;
/** Demand above capacity for longer than this is contention. */
export const CONTENTION_WINDOW_SECONDS = 300;
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

const epoch = (iso: string) => Math.floor(Date.parse(iso) / 1000);

/** The conflicts the state shows now; ids are stable while the conflict lasts and new when it recurs. */
export function detectConflicts(input: ConflictInputs): ConflictView[] {
  const nowMs = input.now.getTime();
  const out: ConflictView[] = [];
  for (const p of input.pools) {
    if (p.allocated <= p.capacity) continue;
    const since = input.overCommittedSince.get(p.pool) ?? input.now.toISOString();
    const holders = input.allocations.filter((a) => a.amounts[p.pool]).sort((a, b) => a.priority - b.priority);
    out.push({
      conflict_id: `over_commitment.${p.pool}.${epoch(since)}`,
      kind: 'over_commitment',
      severity: 'warning',
      pool: p.pool,
      tasks: holders.map((a) => a.task_id),
      since,
      detail: `${p.pool} holds ${p.allocated} against a capacity of ${p.capacity}; it drains as allocations end`,
      proposed_resolution: 'preempt_lower_priority',
    });
  }
  for (const a of input.allocations) {
    const status = input.taskStatus.get(a.task_id);
    const expired = Date.parse(a.lease_until) <= nowMs;
    if (status !== undefined && !TERMINAL.has(status) && !expired) continue;
    const why = status === undefined ? 'its task no longer exists' : TERMINAL.has(status) ? `its task is ${status}` : `its lease expired at ${a.lease_until}`;
    out.push({
      conflict_id: `zombie.${a.task_id}.${epoch(a.since)}`,
      kind: 'zombie',
      severity: 'warning',
      pool: null,
      tasks: [a.task_id],
      since: status === undefined || TERMINAL.has(status) ? a.since : a.lease_until,
      detail: `the allocation of task ${a.task_id} is still held but ${why}`,
      proposed_resolution: 'release_zombies',
    });
  }
  for (const w of waitOrder(input.waiters, nowMs)) {
    if (nowMs - Date.parse(w.since) < STARVATION_SECONDS * 1000) continue;
    const lower = input.allocations.filter((a) => a.priority < w.priority && Object.keys(w.amounts).some((p) => a.amounts[p]));
    if (!lower.length) continue;
    out.push({
      conflict_id: `starvation.${w.task_id}.${epoch(w.since)}`,
      kind: 'starvation',
      severity: w.priority >= 8 ? 'critical' : 'warning',
      pool: Object.keys(w.amounts).find((p) => lower.some((a) => a.amounts[p])) ?? null,
      tasks: [w.task_id, ...lower.map((a) => a.task_id)],
      since: w.since,
      detail: `task ${w.task_id} (priority ${w.priority}) has waited since ${w.since} while ${lower.length} lower-priority allocation(s) hold its pools`,
      proposed_resolution: 'preempt_lower_priority',
    });
  }
  for (const p of input.pools) {
    const waiting = waitOrder(input.waiters, nowMs).filter((w) => w.amounts[p.pool]);
    if (!waiting.length) continue;
    const demand = p.allocated + waiting.reduce((n, w) => n + w.amounts[p.pool], 0);
    const oldest = waiting.map((w) => w.since).sort()[0];
    if (demand <= p.capacity || nowMs - Date.parse(oldest) < CONTENTION_WINDOW_SECONDS * 1000) continue;
    out.push({
      conflict_id: `contention.${p.pool}.${epoch(oldest)}`,
      kind: 'contention',
      severity: 'info',
      pool: p.pool,
      tasks: waiting.map((w) => w.task_id),
      since: oldest,
      detail: `demand on ${p.pool} (${demand}) has been above its capacity (${p.capacity}) since ${oldest}`,
      proposed_resolution: 'scale_up',
    });
  }
  return out.filter((c) => {
    const until = input.deferred.get(c.conflict_id);
    return !until || Date.parse(until) <= nowMs;
  });
}

/** Strategies that make sense for a kind. */
export const STRATEGIES_FOR: Record<ConflictView['kind'], readonly Strategy[]> = {
  over_commitment: ['preempt_lower_priority', 'scale_up', 'defer'],
  starvation: ['preempt_lower_priority', 'scale_up', 'requeue', 'defer'],
  zombie: ['release_zombies', 'requeue', 'defer'],
  contention: ['scale_up', 'preempt_lower_priority', 'defer'],
};

// ---------------------------------------------------------------- history

export interface LedgerEvent {
  at: string;
  pool: string;
  /** Change of `allocated` (+ on allocation, - on release). */
  delta_allocated: number;
  /** Change of `capacity` (scaling). */
  delta_capacity: number;
  kind: 'allocate' | 'release' | 'scale';
  task_id?: string;
  waited_ms?: number;
}

export interface SeriesPoint {
  t: string;
  allocated: number;
  capacity: number;
  utilisation: number;
}

const util = (allocated: number, capacity: number) => (capacity > 0 ? round(allocated / capacity) : allocated > 0 ? 1 : 0);
const round = (n: number, digits = 4) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * The pool's state at the end of each step, replayed backwards from the state now: the value at t is
 * now's value minus every change after t. Each point is the step's peak (what was held at most).
 */
export function seriesOf(now: { allocated: number; capacity: number }, events: readonly LedgerEvent[], fromMs: number, toMs: number, steps: number): SeriesPoint[] {
  const sorted = [...events].sort((a, b) => b.at.localeCompare(a.at)); // newest first
  const step = (toMs - fromMs) / steps;
  let allocated = now.allocated;
  let capacity = now.capacity;
  const peak = new Array<{ allocated: number; capacity: number }>(steps);
  let i = 0;
  // Walk back through time, from the last step to the first.
  for (let s = steps - 1; s >= 0; s--) {
    const start = fromMs + s * step;
    let maxAlloc = allocated;
    let cap = capacity;
    while (i < sorted.length && Date.parse(sorted[i].at) > start) {
      allocated -= sorted[i].delta_allocated;
      capacity -= sorted[i].delta_capacity;
      if (Date.parse(sorted[i].at) > start) maxAlloc = Math.max(maxAlloc, allocated);
      cap = Math.max(cap, capacity);
      i++;
    }
    peak[s] = { allocated: maxAlloc, capacity: cap };
  }
  return peak.map((p, s) => ({ t: new Date(fromMs + (s + 1) * step).toISOString(), allocated: p.allocated, capacity: p.capacity, utilisation: util(p.allocated, p.capacity) }));
}

/** Least-squares line through (x, y). */
function fit(xs: number[], ys: number[]): { a: number; b: number } {
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (let k = 0; k < n; k++) {
    num += (xs[k] - mx) * (ys[k] - my);
    den += (xs[k] - mx) ** 2;
  }
  const b = den === 0 ? 0 : num / den;
  return { a: my - b * mx, b };
}

export const FORECAST_MIN_EVENTS = 6;
export const FORECAST_MIN_POINTS = 8;

/**
 * A short linear-trend forecast of utilisation with a ±1.96σ band from the residuals, and its error
 * back-tested on the last quarter of the series (fitted on the rest). Null without enough history.
 */
export function forecast(series: readonly SeriesPoint[], events: number, stepSeconds: number, horizonSteps = 4) {
  if (events < FORECAST_MIN_EVENTS || series.length < FORECAST_MIN_POINTS) return null;
  const ys = series.map((p) => p.utilisation);
  const xs = ys.map((_, k) => k);
  const { a, b } = fit(xs, ys);
  const residuals = ys.map((y, k) => y - (a + b * k));
  const sigma = Math.sqrt(residuals.reduce((s, r) => s + r * r, 0) / Math.max(1, ys.length - 2));
  const cut = Math.max(2, Math.floor(ys.length * 0.75));
  const train = fit(xs.slice(0, cut), ys.slice(0, cut));
  const test = xs.slice(cut);
  const mae = test.reduce((s, x) => s + Math.abs(ys[x] - (train.a + train.b * x)), 0) / Math.max(1, test.length);
  const last = Date.parse(series[series.length - 1].t);
  const clamp = (v: number) => Math.max(0, round(v));
  return {
    method: 'linear_trend' as const,
    horizon_seconds: horizonSteps * stepSeconds,
    points: Array.from({ length: horizonSteps }, (_, h) => {
      const x = ys.length + h;
      const y = a + b * x;
      return { t: new Date(last + (h + 1) * stepSeconds * 1000).toISOString(), utilisation: clamp(y), lower: clamp(y - 1.96 * sigma), upper: clamp(y + 1.96 * sigma) };
    }),
    backtest_mae: round(mae),
  };
}

export function quantile(values: readonly number[], q: number): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Recommendations need this much history on a pool. */
export const RECOMMEND_MIN_ALLOCATIONS = 10;
export const RECOMMEND_MIN_SPAN_SECONDS = 600;

/**
 * A recommendation for one pool from its history: scale up when requests waited and demand peaked
 * above capacity (by what the peak was short), scale down when utilisation stayed low and nothing
 * waited (to the peak plus a quarter). The expected effect comes from the same data.
 */
export function recommend(pool: PoolState, series: readonly SeriesPoint[], events: readonly LedgerEvent[], peakWaiting: number, windowSeconds: number) {
  const allocations = events.filter((e) => e.kind === 'allocate');
  if (allocations.length < RECOMMEND_MIN_ALLOCATIONS) return { insufficient: true as const };
  const times = allocations.map((e) => Date.parse(e.at));
  if ((Math.max(...times) - Math.min(...times)) / 1000 < RECOMMEND_MIN_SPAN_SECONDS) return { insufficient: true as const };
  const waits = allocations.map((e) => e.waited_ms ?? 0);
  const waited = waits.filter((w) => w > 0).length;
  const p95Wait = Math.round(quantile(waits, 0.95));
  const p95Util = round(quantile(series.map((p) => p.utilisation), 0.95));
  const peakAllocated = Math.max(0, ...series.map((p) => p.allocated));
  const peakDemand = peakAllocated + peakWaiting;
  const evidence = { window_seconds: windowSeconds, allocations: allocations.length, p95_utilisation: p95Util, peak_demand: peakDemand, p95_wait_ms: p95Wait, waited, capacity: pool.capacity };
  if (waited > 0 && p95Util >= 0.8) {
    const magnitude = Math.max(1, peakDemand - pool.capacity, Math.ceil(pool.capacity * 0.25));
    // Requests that waited needed at most the peak; with that much more room the queue would not have formed.
    const afterWait = peakDemand <= pool.capacity + magnitude ? 0 : p95Wait;
    return { recommendation: { pool: pool.pool, action: 'scale_up' as const, magnitude, expected_effect: `p95 wait from ${p95Wait} ms to ${afterWait} ms (peak demand ${peakDemand} against capacity ${pool.capacity + magnitude})`, evidence } };
  }
  const target = Math.ceil(peakAllocated * 1.25);
  if (waited === 0 && p95Util < 0.3 && pool.capacity - target >= 1) {
    return {
      recommendation: {
        pool: pool.pool,
        action: 'scale_down' as const,
        magnitude: pool.capacity - target,
        expected_effect: `p95 utilisation from ${p95Util} to ${target > 0 ? round(Math.min(1, quantile(series.map((p) => p.allocated), 0.95) / target)) : 0}; p95 wait stays 0 ms (peak held ${peakAllocated} of ${target})`,
        evidence,
      },
    };
  }
  return { recommendation: null };
}
