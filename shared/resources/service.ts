import type { Deps } from '../platform/runtime.js';
import type { Principal } from '../platform/principal.js';
import { canRead } from '../platform/principal.js';
import { logger } from '../platform/logger.js';
import { conflict, DomainError, invalidState, notFound, validationError } from '../platform/errors.js';
import { retryOnConflict, VersionConflictError } from '../platform/store/conflicts.js';
import { getTask, preemptTask, sendRun } from '../tasks/service.js';
import type { TaskRecord } from '../tasks/repo.js';
import { workerScaling } from '../platform/use/worker-scaling.js';
import { ResourceRepository, type AllocationRecord, type PoolRecord } from './repo.js';
import { TIME_RANGES, type AllocateBody, type Amounts, type ConflictView, type ResolutionView, type ScaleBody, type Strategy } from './model.js';
import {
  amountsFor,
  blockedBy,
  configuredPools,
  detectConflicts,
  forecast,
  FORECAST_MIN_EVENTS,
  providerPoolSeed,
  recommend,
  seriesOf,
  shortfall,
  STRATEGIES_FOR,
  waitOrder,
  WORKER_POOL,
  workerRequest,
  type PoolState,
  type Waiter,
} from './rules.js';

const repoOf = (deps: Deps) => new ResourceRepository(deps.store);

/** A waiting request is forgotten this long after it was last refreshed (its task stopped asking). */
const WAITER_TTL_SECONDS = 120;
/** An API allocation's lease when its task has no running lease: the task's timeout plus this grace. */
const API_LEASE_GRACE_SECONDS = 60;

// ---------------------------------------------------------------- pools

const seeded = new WeakMap<object, Promise<void>>();

/** Seeds the configured pools (once per process and table; existing pools keep their capacity). */
export function ensurePools(deps: Deps): Promise<void> {
  let done = seeded.get(deps.store);
  if (!done) {
    done = (async () => {
      const repo = repoOf(deps);
      const nowIso = deps.clock.now().toISOString();
      for (const seed of configuredPools(deps.config.resourcePools)) await repo.seed(seed, nowIso);
    })();
    done.catch(() => seeded.delete(deps.store));
    seeded.set(deps.store, done);
  }
  return done;
}

/** Pools by id and the waiting requests (one Query), seeding a provider's pool the first time a request names it. */
async function poolsFor(deps: Deps, want: Amounts): Promise<{ pools: Map<string, PoolRecord>; waiters: Waiter[] }> {
  await ensurePools(deps);
  const repo = repoOf(deps);
  let read = await repo.poolsAndWaiters();
  const missing = Object.keys(want).filter((p) => !read.pools.some((x) => x.pool === p) && p.startsWith('provider_concurrency:'));
  if (missing.length) {
    for (const p of missing) await repo.seed(providerPoolSeed(p.slice('provider_concurrency:'.length), providerCapacity(deps)), deps.clock.now().toISOString());
    read = await repo.poolsAndWaiters();
  }
  return { pools: new Map(read.pools.map((p) => [p.pool, p])), waiters: read.waiters };
}

/** A provider's pool when first seeded: the configured provider_concurrency (by default as many calls as tasks may run at once). */
const providerCapacity = (deps: Deps) => deps.config.resourcePools.provider_concurrency;

// ---------------------------------------------------------------- allocate / release

export type Grant =
  | { status: 'allocated'; allocation: AllocationRecord; replayed: boolean }
  | { status: 'short'; missing: Record<string, { wanted: number; free: number; missing: number }>; blockedBy?: string }
  | { status: 'unknown_pools'; pools: string[] };

interface GrantInput {
  taskId: string;
  createdBy: string;
  amounts: Amounts;
  priority: number;
  source: 'worker' | 'api';
  leaseUntil: Date;
}

/**
 * How many times an allocation that lost a race is tried again at once while the pools, read again,
 * still have room for it (contention, not shortage), with a short random pause between tries.
 */
export const CONTENDED_ALLOCATION_TRIES = 4;
const contentionPause = (attempt: number) => new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * attempt));

/**
 * Takes the amounts for the task if every pool has room and no higher-priority waiter needs it;
 * idempotent per task: a task that holds an allocation gets it back (its lease moved on when the
 * holder's lease had expired, i.e. a new attempt took over). The common case costs one Query (pools and
 * waiters) and one transaction.
 */
async function grant(deps: Deps, input: GrantInput): Promise<Grant> {
  const repo = repoOf(deps);
  for (let attempt = 1; ; attempt++) {
    const now = deps.clock.now();
    const { pools, waiters } = await poolsFor(deps, input.amounts);
    const unknown = Object.keys(input.amounts).filter((p) => !pools.has(p));
    if (unknown.length) return { status: 'unknown_pools', pools: unknown };

    const ahead = blockedBy(pools, input.amounts, input.priority, input.taskId, waiters, now.getTime());
    const short = shortfall(pools, input.amounts);
    if (ahead || Object.keys(short).length) {
      // A task that already holds its allocation (a redelivery, a new attempt) counts itself in the pools.
      const existing = await repo.allocation(input.taskId);
      if (existing) return takeOver(deps, existing, input);
      return ahead ? { status: 'short', missing: short, blockedBy: ahead.task_id } : { status: 'short', missing: short };
    }

    const waited = waiters.find((w) => w.task_id === input.taskId);
    const allocation: AllocationRecord = {
      task_id: input.taskId,
      amounts: input.amounts,
      priority: input.priority,
      source: input.source,
      since: now.toISOString(),
      lease_until: input.leaseUntil.toISOString(),
      created_by: input.createdBy,
      waited_ms: waited ? Math.max(0, now.getTime() - Date.parse(waited.since)) : 0,
    };
    const result = await repo.allocate(allocation, now);
    if (result.ok) {
      if (waited) await repo.deleteWaiter(input.taskId);
      return { status: 'allocated', allocation, replayed: false };
    }
    if (result.reason === 'exists') {
      const again = await repo.allocation(input.taskId);
      if (again) return takeOver(deps, again, input);
    }
    // Lost the room to a concurrent request. Read again: when there is still room the race was contention
    // and the allocation is tried again at once (bounded); when there is not, the answer says what is missing.
    if (attempt >= CONTENDED_ALLOCATION_TRIES) return { status: 'short', missing: shortfall((await poolsFor(deps, input.amounts)).pools, input.amounts) };
    await contentionPause(attempt);
  }
}

/**
 * A grant for a task that already holds an allocation: the same allocation, its lease renewed only once
 * expired. A live lease may be another delivery's of the same task, still racing for the claim: only the
 * delivery that claims the task takes the allocation over (`keepForRun`).
 */
async function takeOver(deps: Deps, existing: AllocationRecord, input: GrantInput): Promise<Grant> {
  const now = deps.clock.now();
  if (Date.parse(existing.lease_until) <= now.getTime()) {
    const lease = input.leaseUntil.toISOString();
    if (lease !== existing.lease_until && (await repoOf(deps).renewLease(existing.task_id, existing.lease_until, lease))) {
      return { status: 'allocated', allocation: { ...existing, lease_until: lease }, replayed: true };
    }
  }
  return { status: 'allocated', allocation: existing, replayed: true };
}

/** Releases the task's allocation if it still holds it under this lease (any lease when none is given). */
export async function releaseTask(deps: Deps, taskId: string, lease?: string): Promise<AllocationRecord | undefined> {
  const repo = repoOf(deps);
  const allocation = await repo.allocation(taskId);
  if (!allocation || (lease && allocation.lease_until !== lease)) return undefined;
  if (!(await repo.release(allocation, deps.clock.now()))) return undefined;
  return allocation;
}

// ---------------------------------------------------------------- the worker's side

export type RunHold = { held: AllocationRecord } | { wait: Amounts } | { unknownPools: string[] };

/**
 * Before the worker runs a task: its resources (declared, or its type's), one worker slot and one call on
 * a named provider, held until `leaseUntil`. When they can't be had the answer is what to wait for: the
 * caller sends the task back to the queue and records the wait (`recordWait`) with the message's token.
 */
export async function holdForRun(deps: Deps, task: TaskRecord, leaseUntil: Date): Promise<RunHold> {
  const amounts = workerRequest(task);
  const g = await grant(deps, { taskId: task.task_id, createdBy: task.created_by, amounts, priority: task.priority, source: 'worker', leaseUntil });
  if (g.status === 'allocated') return { held: g.allocation };
  if (g.status === 'unknown_pools') return { unknownPools: g.pools };
  return { wait: amounts };
}

/**
 * How long a task waiting for resources stays in the queue at most before it looks again. A release
 * wakes the waiters it makes room for at once (`grantWaiting`); this delay only covers a wake that was
 * lost (a crashed worker), so it is long enough not to spin: 5 s plus up to 5 s by priority (higher
 * priorities come back sooner) plus up to 5 s of jitter.
 */
export function resourceWaitSeconds(priority: number, random: () => number = Math.random): number {
  return 5 + (10 - priority) / 2 + random() * 5;
}

/**
 * Records the task's waiting request by priority (so that lower priorities leave it room) with the run
 * token of the message that brings it back, so that a release can wake it early with that token.
 */
export async function recordWait(deps: Deps, task: TaskRecord, amounts: Amounts, runToken: string): Promise<void> {
  const now = deps.clock.now();
  await repoOf(deps).putWaiter({
    task_id: task.task_id,
    amounts,
    priority: task.priority,
    since: now.toISOString(),
    expires_at_iso: new Date(now.getTime() + WAITER_TTL_SECONDS * 1000).toISOString(),
    source: 'worker',
    created_by: task.created_by,
    run_token: runToken,
  });
}

/**
 * After the worker claimed the task: the allocation takes the run's lease (it may still carry a lease
 * from a run that died), so that it outlives the run and the run's release matches it. Answers the
 * allocation as now held.
 */
export async function keepForRun(deps: Deps, held: AllocationRecord, leaseUntil: Date): Promise<AllocationRecord> {
  const lease = leaseUntil.toISOString();
  if (held.lease_until === lease) return held;
  return (await repoOf(deps).renewLease(held.task_id, held.lease_until, lease)) ? { ...held, lease_until: lease } : held;
}

/** After the run (whatever its outcome): gives back what was held (while it still has this lease), then serves the waiters. */
export async function releaseAfterRun(deps: Deps, held: AllocationRecord): Promise<void> {
  try {
    if (await repoOf(deps).release(held, deps.clock.now())) await grantWaiting(deps);
  } catch (err) {
    // Left to the sweeper, which reclaims the allocation once its lease has expired.
    logger.error('could not release a task allocation; the sweeper reclaims it at lease expiry', { task_id: held.task_id, error: err as Error });
  }
}

/**
 * Serves the waiters after capacity freed (a release, a scale-up, the sweeper), highest priority first:
 * waiting API requests are granted; waiting tasks that the free capacity can take are woken (their run
 * message is sent again now, with the token they wait under), so they need not sit out their delay.
 * A wake is not a hold: the woken task allocates like any other and waits again if it loses the room.
 * Answers the API requests granted.
 */
export async function grantWaiting(deps: Deps): Promise<string[]> {
  const repo = repoOf(deps);
  const granted: string[] = [];
  const now = deps.clock.now();
  const { pools, waiters } = await repo.poolsAndWaiters();
  const free = new Map(pools.map((p) => [p.pool, p.free]));
  for (const w of waitOrder(waiters, now.getTime())) {
    if (w.source === 'worker') {
      const fits = Object.entries(w.amounts).every(([pool, n]) => (free.get(pool) ?? 0) >= n);
      if (!fits || !w.run_token) continue;
      for (const [pool, n] of Object.entries(w.amounts)) free.set(pool, (free.get(pool) ?? 0) - n);
      await sendRun(deps, w.task_id, w.run_token, 0, { wake: true });
      continue;
    }
    const task = await getTask(deps, w.task_id);
    if (!task || ['completed', 'failed', 'cancelled'].includes(task.status)) {
      await repo.deleteWaiter(w.task_id);
      continue;
    }
    const g = await grant(deps, { taskId: w.task_id, createdBy: task.created_by, amounts: w.amounts, priority: w.priority, source: 'api', leaseUntil: apiLease(now, task.timeout_seconds) });
    if (g.status === 'allocated') {
      granted.push(w.task_id);
      for (const [pool, n] of Object.entries(w.amounts)) free.set(pool, (free.get(pool) ?? 0) - n);
    }
  }
  return granted;
}

const apiLease = (now: Date, timeoutSeconds: number) => new Date(now.getTime() + (timeoutSeconds + API_LEASE_GRACE_SECONDS) * 1000);

/**
 * The sweeper's part: allocations whose lease expired or whose task ended or vanished are released,
 * then waiting API requests get what freed. Answers how many were reclaimed.
 */
export async function reclaimAllocations(deps: Deps): Promise<number> {
  await ensurePools(deps);
  const repo = repoOf(deps);
  const now = deps.clock.now().getTime();
  let reclaimed = 0;
  for (const a of await repo.allocations()) {
    let dead = Date.parse(a.lease_until) <= now;
    if (!dead) {
      const task = await getTask(deps, a.task_id);
      dead = !task || ['completed', 'failed', 'cancelled'].includes(task.status);
    }
    if (dead && (await repo.release(a, deps.clock.now()))) reclaimed++;
  }
  for (const w of await repo.waiters()) if (Date.parse(w.expires_at_iso) <= now) await repo.deleteWaiter(w.task_id);
  if (reclaimed) await grantWaiting(deps);
  return reclaimed;
}

// ---------------------------------------------------------------- API: allocate, release, status

const visible = (principal: Principal, createdBy: string) => canRead(principal, createdBy, 'tasks:read_all');

export type AllocateOutcome = { status: 'allocated'; allocation: AllocationRecord; replayed: boolean } | { status: 'queued'; waiter: Waiter; position: number };

/** POST allocate: 201 with the allocation, 409 insufficient_capacity with what is missing, or queued with `wait`. */
export async function allocateForTask(deps: Deps, principal: Principal, body: AllocateBody): Promise<AllocateOutcome> {
  const task = await getTask(deps, body.task_id);
  if (!task || !visible(principal, task.created_by)) throw notFound('Task');
  if (['completed', 'failed', 'cancelled'].includes(task.status)) throw invalidState(`task ${task.task_id} is ${task.status}; only a live task can hold resources`);
  const amounts = amountsFor(body.resources, task.provider_id);
  if (!Object.keys(amounts).length) throw validationError([{ path: 'resources', message: 'ask for at least one unit of something' }]);
  if (body.resources.provider_slots && !task.provider_id) throw validationError([{ path: 'resources.provider_slots', message: 'the task names no provider' }]);
  const priority = body.priority ?? task.priority;
  const now = deps.clock.now();
  const g = await grant(deps, { taskId: task.task_id, createdBy: task.created_by, amounts, priority, source: 'api', leaseUntil: apiLease(now, task.timeout_seconds) });
  if (g.status === 'unknown_pools') throw validationError(g.pools.map((p) => ({ path: 'resources', message: `no pool ${p} (cli_runner hosts come from RESOURCE_POOLS)` })));
  if (g.status === 'allocated') return g;
  const repo = repoOf(deps);
  if (!body.wait) {
    throw new DomainError('conflict', 'insufficient_capacity', `not enough capacity: ${Object.entries(g.missing).map(([p, m]) => `${p} needs ${m.wanted}, ${m.free} free`).join('; ') || `a higher-priority request (task ${g.blockedBy}) is waiting for it`}`, [
      ...Object.entries(g.missing).map(([p, m]) => ({ path: p, message: `missing ${m.missing} (wanted ${m.wanted}, free ${m.free})` })),
      ...(g.blockedBy ? [{ path: 'priority', message: `task ${g.blockedBy} waits with a higher priority` }] : []),
    ]);
  }
  const waiter = await repo.putWaiter({
    task_id: task.task_id,
    amounts,
    priority,
    since: now.toISOString(),
    // An API request waits as long as its task may run.
    expires_at_iso: apiLease(now, task.timeout_seconds).toISOString(),
    source: 'api',
    created_by: task.created_by,
  });
  const order = waitOrder(await repo.waiters(), now.getTime());
  return { status: 'queued', waiter, position: order.findIndex((w) => w.task_id === task.task_id) + 1 };
}

/** POST release: gives back the task's allocation (or withdraws its waiting request). */
export async function releaseForTask(deps: Deps, principal: Principal, taskId: string) {
  const task = await getTask(deps, taskId);
  const repo = repoOf(deps);
  const held = await repo.allocation(taskId);
  const waiting = await repo.waiter(taskId);
  const owner = task?.created_by ?? held?.created_by ?? waiting?.created_by;
  if (!owner || !visible(principal, owner) || (!held && !waiting)) throw notFound('Allocation');
  if (waiting) await repo.deleteWaiter(taskId);
  const released = held ? await releaseTask(deps, taskId) : undefined;
  if (held && !released) throw conflict('the allocation changed while it was being released; try again');
  const granted = released ? await grantWaiting(deps) : [];
  return { task_id: taskId, released: Boolean(released), amounts: released?.amounts ?? {}, granted };
}

const stateOf = (p: PoolRecord): PoolState => ({ pool: p.pool, capacity: p.capacity, allocated: p.allocated, free: p.free });
const utilisation = (p: { allocated: number; capacity: number }) => (p.capacity > 0 ? Math.round((p.allocated / p.capacity) * 10_000) / 10_000 : p.allocated > 0 ? 1 : 0);

export async function allocationStatus(deps: Deps, principal: Principal) {
  await ensurePools(deps);
  const repo = repoOf(deps);
  const [pools, allocations, waiters] = await Promise.all([repo.pools(), repo.allocations(), repo.waiters()]);
  const now = deps.clock.now();
  const live = waitOrder(waiters, now.getTime());
  return {
    pools: pools.map((p) => {
      const waiting = live.filter((w) => w.amounts[p.pool]);
      const byPriority: Record<string, number> = {};
      for (const w of waiting) byPriority[String(w.priority)] = (byPriority[String(w.priority)] ?? 0) + w.amounts[p.pool];
      return {
        pool: p.pool,
        type: p.type,
        unit: p.unit,
        capacity: p.capacity,
        allocated: p.allocated,
        free: p.free,
        utilisation: utilisation(p),
        min_capacity: p.min_capacity,
        max_capacity: p.max_capacity,
        waiting: { requests: waiting.length, amount: waiting.reduce((n, w) => n + w.amounts[p.pool], 0), by_priority: byPriority },
        allocations: allocations
          .filter((a) => a.amounts[p.pool] && visible(principal, a.created_by))
          .map((a) => ({ ...allocationView(a), amount: a.amounts[p.pool] })),
      };
    }),
    allocations: allocations.length,
    waiting: live.length,
    as_of: now.toISOString(),
  };
}

export function allocationView(a: AllocationRecord) {
  return { task_id: a.task_id, amounts: a.amounts, priority: a.priority, source: a.source, since: a.since, lease_until: a.lease_until, waited_ms: a.waited_ms };
}

// ---------------------------------------------------------------- conflicts

async function currentConflicts(deps: Deps) {
  await ensurePools(deps);
  const repo = repoOf(deps);
  const [pools, allocations, waiters, resolutions] = await Promise.all([repo.pools(), repo.allocations(), repo.waiters(), repo.resolutions()]);
  const taskStatus = new Map<string, string>();
  for (const a of allocations) {
    const t = await getTask(deps, a.task_id);
    if (t) taskStatus.set(a.task_id, t.status);
  }
  const deferred = new Map(resolutions.filter((r) => r.deferred_until).map((r) => [r.conflict_id, r.deferred_until!]));
  const found = detectConflicts({
    now: deps.clock.now(),
    pools: pools.map(stateOf),
    allocations,
    waiters,
    taskStatus,
    overCommittedSince: new Map(pools.filter((p) => p.over_committed_since).map((p) => [p.pool, p.over_committed_since!])),
    deferred,
  });
  const resolved = new Set(resolutions.filter((r) => !r.deferred_until).map((r) => r.conflict_id));
  return { conflicts: found.filter((c) => !resolved.has(c.conflict_id)), pools, allocations, waiters };
}

export async function listConflicts(deps: Deps, principal: Principal): Promise<ConflictView[]> {
  const { conflicts, allocations, waiters } = await currentConflicts(deps);
  const owner = new Map<string, string>([...allocations.map((a) => [a.task_id, a.created_by] as const), ...waiters.map((w) => [w.task_id, w.created_by] as const)]);
  return conflicts.map((c) => ({ ...c, tasks: c.tasks.filter((t) => visible(principal, owner.get(t) ?? '')) }));
}

/** Carries out a strategy on a conflict the state shows now; records it once (a second resolve is a 409). */
export async function resolveConflict(deps: Deps, conflictId: string, strategy: Strategy): Promise<ResolutionView> {
  const { conflicts, pools, allocations, waiters } = await currentConflicts(deps);
  const c = conflicts.find((x) => x.conflict_id === conflictId);
  if (!c) {
    const prior = await repoOf(deps).resolution(conflictId);
    if (prior) throw conflict(`conflict ${conflictId} was already resolved (${prior.strategy}) at ${prior.resolved_at}`);
    throw notFound('Conflict');
  }
  if (!STRATEGIES_FOR[c.kind].includes(strategy)) {
    throw validationError([{ path: 'strategy', message: `${strategy} does not apply to a ${c.kind} conflict; use one of ${STRATEGIES_FOR[c.kind].join(', ')}` }]);
  }
  const now = deps.clock.now();
  const changes: ResolutionView['changes'] = { released: [], preempted: [], requeued: [], capacity: null, deferred_until: null };
  // Claim the resolution first: of two resolvers only one acts.
  const deferredUntil = strategy === 'defer' ? new Date(now.getTime() + 15 * 60_000).toISOString() : undefined;
  if (!(await repoOf(deps).recordResolution({ conflict_id: conflictId, strategy, resolved_at: now.toISOString(), deferred_until: deferredUntil, result: null }))) {
    throw conflict(`conflict ${conflictId} was already resolved`);
  }
  const byTask = new Map(allocations.map((a) => [a.task_id, a]));
  if (strategy === 'defer') changes.deferred_until = deferredUntil!;
  if (strategy === 'release_zombies' || strategy === 'requeue') {
    const targets = c.kind === 'zombie' ? c.tasks : c.tasks.filter((t) => byTask.has(t));
    for (const t of targets) {
      if (strategy === 'requeue' && (await preemptTask(deps, t, `requeued to resolve resource conflict ${conflictId}`))) changes.requeued.push(t);
      const a = byTask.get(t);
      if (a && (await repoOf(deps).release(a, now))) changes.released.push(t);
    }
  }
  if (strategy === 'preempt_lower_priority') {
    const pool = pools.find((p) => p.pool === c.pool);
    const waiter = c.kind === 'starvation' ? waiters.find((w) => w.task_id === c.tasks[0]) : undefined;
    const ceiling = waiter?.priority ?? 11;
    const needFree = waiter && pool ? (waiter.amounts[pool.pool] ?? 0) : 0;
    let free = pool?.free ?? 0;
    const victims = allocations.filter((a) => pool && a.amounts[pool.pool] && a.priority < ceiling).sort((a, b) => a.priority - b.priority || b.since.localeCompare(a.since));
    for (const v of victims) {
      if (free >= needFree && (c.kind !== 'over_commitment' || free >= 0)) break;
      if (await preemptTask(deps, v.task_id, `preempted to resolve resource conflict ${conflictId}`)) changes.preempted.push(v.task_id);
      if (await repoOf(deps).release(v, now)) {
        changes.released.push(v.task_id);
        free += v.amounts[pool!.pool];
      }
    }
  }
  if (strategy === 'scale_up') {
    const pool = pools.find((p) => p.pool === c.pool) ?? pools.find((p) => Object.keys(waiters.find((w) => w.task_id === c.tasks[0])?.amounts ?? {}).includes(p.pool));
    if (!pool) throw invalidState(`conflict ${conflictId} names no pool to scale`);
    const demand = pool.allocated + waitOrder(waiters, now.getTime()).reduce((n, w) => n + (w.amounts[pool.pool] ?? 0), 0);
    const to = Math.min(pool.max_capacity, Math.max(pool.capacity + 1, demand));
    const result = await applyCapacity(deps, pool.pool, to, true);
    changes.capacity = { pool: pool.pool, from: result.from, to: result.to };
  }
  if (changes.released.length) await grantWaiting(deps);
  logger.info('resource conflict resolved', { conflict_id: conflictId, strategy, ...changes });
  return { conflict_id: conflictId, strategy, resolved_at: now.toISOString(), changes };
}

// ---------------------------------------------------------------- scaling

/** Sets a pool's capacity within its bounds; below what is held only with `force` (the pool is then over-committed and drains). */
async function applyCapacity(deps: Deps, poolId: string, target: number | ((p: PoolRecord) => number), force: boolean) {
  await ensurePools(deps);
  const repo = repoOf(deps);
  const out = await retryOnConflict(async () => {
    const pool = await repo.pool(poolId);
    if (!pool) throw notFound('Pool');
    const to = typeof target === 'number' ? target : target(pool);
    if (to < pool.min_capacity || to > pool.max_capacity) throw validationError([{ path: 'capacity', message: `${pool.pool} takes a capacity from ${pool.min_capacity} to ${pool.max_capacity} (asked ${to})` }]);
    if (to < pool.allocated && !force) {
      throw new DomainError('conflict', 'conflict', `${pool.pool} holds ${pool.allocated} now; scaling to ${to} would over-commit it (send force: true to let it drain)`);
    }
    const now = deps.clock.now();
    const over = to < pool.allocated ? (pool.over_committed_since ?? now.toISOString()) : null;
    await repo.setCapacity(pool, to, now, over);
    return { from: pool.capacity, to, allocated: pool.allocated, over_committed: over !== null };
  });
  let applied: number | null = null;
  if (poolId === WORKER_POOL) applied = await workerScaling(deps).setMaxConcurrency(out.to);
  return { ...out, worker_max_concurrency: applied };
}

export async function scalePool(deps: Deps, body: ScaleBody) {
  const target = (p: PoolRecord) => (body.action === 'set' ? body.capacity! : body.action === 'scale_up' ? p.capacity + body.magnitude! : p.capacity - body.magnitude!);
  try {
    const result = await applyCapacity(deps, body.pool, target, body.force);
    if (result.to > result.from) await grantWaiting(deps);
    return { pool: body.pool, ...result };
  } catch (err) {
    if (err instanceof VersionConflictError) throw conflict(`${body.pool} kept changing; try again`);
    throw err;
  }
}

// ---------------------------------------------------------------- monitoring, recommendations, health

const STEPS = 24;

export async function monitoring(deps: Deps, timeRange: keyof typeof TIME_RANGES) {
  await ensurePools(deps);
  const repo = repoOf(deps);
  const seconds = TIME_RANGES[timeRange];
  const now = deps.clock.now();
  const from = new Date(now.getTime() - seconds * 1000);
  const step = Math.round(seconds / STEPS);
  const pools = await repo.pools();
  const ledgers = await repo.ledgers(pools.map((p) => p.pool), from);
  return {
    time_range: timeRange,
    step_seconds: step,
    pools: pools.map((p) => {
      const events = ledgers.get(p.pool)!;
      const series = seriesOf(p, events, from.getTime(), now.getTime(), STEPS);
      const f = forecast(series, events.length, step);
      return { pool: p.pool, series, forecast: f ?? { status: 'insufficient_data' as const, events: events.length, needed: FORECAST_MIN_EVENTS } };
    }),
  };
}

const RECOMMEND_WINDOW_SECONDS = 7 * 86_400;

export async function recommendations(deps: Deps) {
  await ensurePools(deps);
  const repo = repoOf(deps);
  const now = deps.clock.now();
  const from = new Date(now.getTime() - RECOMMEND_WINDOW_SECONDS * 1000);
  const [pools, waiters] = await Promise.all([repo.pools(), repo.waiters()]);
  const live = waitOrder(waiters, now.getTime());
  const ledgers = await repo.ledgers(pools.map((p) => p.pool), from);
  const out: unknown[] = [];
  const insufficient: string[] = [];
  for (const p of pools) {
    const events = ledgers.get(p.pool)!;
    const series = seriesOf(p, events, from.getTime(), now.getTime(), 7 * 24);
    const r = recommend(stateOf(p), series, events, live.reduce((n, w) => n + (w.amounts[p.pool] ?? 0), 0), RECOMMEND_WINDOW_SECONDS);
    if ('insufficient' in r) insufficient.push(p.pool);
    else if (r.recommendation) out.push(r.recommendation);
  }
  return { recommendations: out as never[], insufficient_history: insufficient };
}

export async function resourceHealth(deps: Deps) {
  await ensurePools(deps);
  const repo = repoOf(deps);
  const [pools, allocations, waiters] = await Promise.all([repo.pools(), repo.allocations(), repo.waiters()]);
  const now = deps.clock.now();
  const rows = pools.map((p) => {
    const sum = allocations.reduce((n, a) => n + (a.amounts[p.pool] ?? 0), 0);
    return { pool: p.pool, allocated: p.allocated, sum_of_allocations: sum, consistent: sum === p.allocated && p.free === p.capacity - p.allocated };
  });
  let zombies = 0;
  for (const a of allocations) {
    if (Date.parse(a.lease_until) <= now.getTime()) zombies++;
    else {
      const t = await getTask(deps, a.task_id);
      if (!t || ['completed', 'failed', 'cancelled'].includes(t.status)) zombies++;
    }
  }
  const live = waitOrder(waiters, now.getTime());
  const consistent = rows.every((r) => r.consistent);
  const over = pools.filter((p) => p.allocated > p.capacity).map((p) => p.pool);
  return {
    status: consistent && zombies === 0 ? ('healthy' as const) : ('degraded' as const),
    consistent,
    pools: rows,
    zombies,
    waiting: { requests: live.length, oldest_since: live.map((w) => w.since).sort()[0] ?? null },
    over_committed: over,
  };
}

/** At start: seeds the pools and gives the worker the stored worker_concurrency (a scale survives restarts). */
export async function applyStoredWorkerConcurrency(deps: Deps): Promise<number | null> {
  await ensurePools(deps);
  const pool = await repoOf(deps).pool(WORKER_POOL);
  return pool ? workerScaling(deps).setMaxConcurrency(Math.max(1, pool.capacity)) : null;
}
