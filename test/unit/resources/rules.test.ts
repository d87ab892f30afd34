import { describe, expect, it } from 'vitest';
import { amountsFor, blockedBy, detectConflicts, forecast, recommend, seriesOf, TYPE_DEFAULTS, workerRequest, type LedgerEvent, type PoolState, type Waiter } from '../../../shared/resources/rules.js';
import { parseConfig } from '../../../shared/platform/config.js';
import { resourceWaitSeconds } from '../../../shared/resources/service.js';

const pools = (...ps: PoolState[]) => new Map(ps.map((p) => [p.pool, p]));
const pool = (id: string, capacity: number, allocated: number): PoolState => ({ pool: id, capacity, allocated, free: capacity - allocated });
const waiter = (task: string, priority: number, amounts: Record<string, number>, since = '2026-01-01T00:00:00.000Z'): Waiter => ({ task_id: task, priority, amounts, since, expires_at_iso: '2999-01-01T00:00:00.000Z', source: 'worker', created_by: 'u' });

describe('what a request needs', () => {
  it('maps declared resources to pools, a cli_runner host to its own pools, provider slots to the provider', () => {
    expect(amountsFor({ cpu: 2, memory_mb: 4096, gpu: 0 }, null)).toEqual({ cpu: 2, memory: 4096 });
    expect(amountsFor({ cpu: 2, cli_runner: 'h1', network_mbps: 5 }, null)).toEqual({ 'cli_runner:h1:cpu': 2, network: 5 });
    expect(amountsFor({ provider_slots: 1 }, 'p')).toEqual({ 'provider_concurrency:p': 1 });
  });

  it('gives the worker one slot, the type defaults and one provider call', () => {
    expect(workerRequest({ type: 'refactor', resources: null, provider_id: 'anthropic' })).toEqual({ worker_concurrency: 1, cpu: 2, memory: 2048, disk: 1024, 'provider_concurrency:anthropic': 1 });
    expect(workerRequest({ type: 'custom', resources: { gpu: 1 }, provider_id: null })).toEqual({ worker_concurrency: 1, gpu: 1 });
  });
});

describe('priority order', () => {
  it('holds back a request that would leave a higher-priority waiter short, not one that leaves it room', () => {
    const w = waiter('high', 9, { worker_concurrency: 1 });
    expect(blockedBy(pools(pool('worker_concurrency', 2, 1)), { worker_concurrency: 1 }, 5, 'low', [w], Date.now())?.task_id).toBe('high');
    expect(blockedBy(pools(pool('worker_concurrency', 3, 1)), { worker_concurrency: 1 }, 5, 'low', [w], Date.now())).toBeUndefined();
    expect(blockedBy(pools(pool('worker_concurrency', 2, 1)), { worker_concurrency: 1 }, 9, 'same', [w], Date.now())).toBeUndefined();
  });

  it('does not idle a pool for a waiter that is short elsewhere', () => {
    const w = waiter('gpu-task', 9, { worker_concurrency: 1, gpu: 1 });
    expect(blockedBy(pools(pool('worker_concurrency', 2, 1), pool('gpu', 0, 0)), { worker_concurrency: 1 }, 1, 'low', [w], Date.now())).toBeUndefined();
  });
});

describe('conflicts', () => {
  const now = new Date('2026-01-01T01:00:00.000Z');
  const base = { now, taskStatus: new Map([['a', 'running'], ['b', 'running']]), overCommittedSince: new Map(), deferred: new Map() };
  const alloc = (task: string, priority: number, lease = '2026-01-01T02:00:00.000Z') => ({ task_id: task, amounts: { cpu: 1 }, priority, source: 'worker' as const, since: '2026-01-01T00:00:00.000Z', lease_until: lease, created_by: 'u' });

  it('finds over-commitment (lowest priority first), zombies, starvation and contention from state', () => {
    const found = detectConflicts({ ...base, pools: [pool('cpu', 1, 2)], allocations: [alloc('b', 7), alloc('a', 2)], waiters: [] });
    expect(found).toEqual([expect.objectContaining({ kind: 'over_commitment', pool: 'cpu', tasks: ['a', 'b'] })]);
    const zombies = detectConflicts({ ...base, pools: [pool('cpu', 4, 2)], allocations: [alloc('a', 2, '2026-01-01T00:30:00.000Z'), alloc('gone', 2)], waiters: [] });
    expect(zombies.map((c) => [c.kind, c.tasks[0]])).toEqual([['zombie', 'a'], ['zombie', 'gone']]);
    const starving = detectConflicts({ ...base, pools: [pool('cpu', 2, 2)], allocations: [alloc('a', 2), alloc('b', 3)], waiters: [waiter('w', 9, { cpu: 1 }, '2026-01-01T00:50:00.000Z')] });
    expect(starving.map((c) => c.kind).sort()).toEqual(['contention', 'starvation']);
    expect(starving.find((c) => c.kind === 'starvation')).toMatchObject({ severity: 'critical', tasks: ['w', 'a', 'b'] });
  });
});

describe('history', () => {
  it('replays the ledger backwards into peaks per step', () => {
    const from = Date.parse('2026-01-01T00:00:00.000Z');
    const ev = (min: number, d: number, c = 0): LedgerEvent => ({ at: new Date(from + min * 60_000).toISOString(), pool: 'p', delta_allocated: d, delta_capacity: c, kind: d > 0 ? 'allocate' : d < 0 ? 'release' : 'scale' });
    // +1 at 5 min, +1 at 15, -2 at 25, capacity 4 → 2 at 35: now allocated 0, capacity 2.
    const series = seriesOf({ allocated: 0, capacity: 2 }, [ev(5, 1), ev(15, 1), ev(25, -2), ev(35, 0, -2)], from, from + 40 * 60_000, 4);
    expect(series.map((p) => p.allocated)).toEqual([1, 2, 2, 0]);
    expect(series.map((p) => p.capacity)).toEqual([4, 4, 4, 4]);
    expect(series[1].utilisation).toBe(0.5);
  });

  it('forecasts a rising trend with a back-tested error, and refuses without enough data', () => {
    const series = Array.from({ length: 12 }, (_, k) => ({ t: new Date(k * 60_000).toISOString(), allocated: k, capacity: 20, utilisation: k / 20 }));
    const f = forecast(series, 12, 60)!;
    expect(f.points[0].utilisation).toBeCloseTo(0.6, 5);
    expect(f.backtest_mae).toBeCloseTo(0, 5);
    expect(forecast(series, 3, 60)).toBeNull();
  });

  it('recommends only with enough history, sized from the peak', () => {
    const p = pool('worker_concurrency', 4, 4);
    const series = Array.from({ length: 10 }, (_, k) => ({ t: new Date(k * 60_000).toISOString(), allocated: 4, capacity: 4, utilisation: 1 }));
    const events = Array.from({ length: 12 }, (_, k): LedgerEvent => ({ at: new Date(k * 120_000).toISOString(), pool: p.pool, delta_allocated: 1, delta_capacity: 0, kind: 'allocate', waited_ms: k % 2 ? 5000 : 0 }));
    expect(recommend(p, series, events.slice(0, 5), 0, 3600)).toEqual({ insufficient: true });
    const r = recommend(p, series, events, 3, 3600);
    expect(r).toMatchObject({ recommendation: { action: 'scale_up', magnitude: 3, evidence: { peak_demand: 7, p95_wait_ms: 5000, waited: 6 } } });
  });
});

describe('default pools', () => {
  it('are never a bottleneck below worker_concurrency: room for every slot at the largest type default, one provider call per slot', () => {
    const defaults = parseConfig({}).resourcePools;
    expect(defaults).toMatchObject({ worker_concurrency: 100, cpu: 200, memory_mb: 204_800, disk_mb: 102_400, provider_concurrency: 100 });
    const largest = Object.values(TYPE_DEFAULTS).reduce<{ cpu: number; memory_mb: number; disk_mb: number }>((m, d) => ({ cpu: Math.max(m.cpu, d.cpu ?? 0), memory_mb: Math.max(m.memory_mb, d.memory_mb ?? 0), disk_mb: Math.max(m.disk_mb, d.disk_mb ?? 0) }), { cpu: 0, memory_mb: 0, disk_mb: 0 });
    expect(defaults.cpu).toBeGreaterThanOrEqual(defaults.worker_concurrency * largest.cpu);
    expect(defaults.memory_mb).toBeGreaterThanOrEqual(defaults.worker_concurrency * largest.memory_mb);
    expect(defaults.disk_mb).toBeGreaterThanOrEqual(defaults.worker_concurrency * largest.disk_mb);
    const small = parseConfig({ RESOURCE_POOLS: JSON.stringify({ worker_concurrency: 4, cpu: 3 }) }).resourcePools;
    expect(small).toMatchObject({ worker_concurrency: 4, cpu: 3, memory_mb: 8192, provider_concurrency: 4 });
  });

  it('a task waiting for resources comes back within 5-15 s at most (a release wakes it sooner), higher priorities sooner', () => {
    expect(resourceWaitSeconds(10, () => 0)).toBe(5);
    expect(resourceWaitSeconds(1, () => 1)).toBe(14.5);
    expect(resourceWaitSeconds(9, () => 0.5)).toBeLessThan(resourceWaitSeconds(2, () => 0.5));
  });
});
