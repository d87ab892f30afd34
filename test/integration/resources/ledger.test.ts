import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ulid } from 'ulid';
import { processRunMessage } from '../../../shared/tasks/runner.js';
import { startLocalRuntime, type LocalRuntime } from '../../../local/runtime.js';
import { createTask as createTaskService } from '../../../shared/tasks/service.js';
import { createTaskBody } from '../../../shared/tasks/model.js';
import { TaskRepository, type TaskRecord } from '../../../shared/tasks/repo.js';
import { eventually, type Session } from '../../support/client.js';
import { taskRecord } from '../../support/task-record.js';
import { sessionAs } from '../tasks/helpers.js';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { ResourceRepository } from '../../../shared/resources/repo.js';

/**
 * The capacity ledger against a runtime of this file's own (its own table on the run's DynamoDB Local,
 * pools from RESOURCE_POOLS): real HTTP, the real worker and sweeper, real conditional writes.
 */
let runtime: LocalRuntime;
let repo: TaskRepository;
let admin: Session;

const POOLS = { worker_concurrency: 3, cpu: 64, gpu: 0, cli_runners: [{ host: 'race', cpu: 10, memory_mb: 4096, disk_mb: 10_000 }, { host: 'over', cpu: 2, memory_mb: 1024, disk_mb: 1000 }, { host: 'history', cpu: 4, memory_mb: 512, disk_mb: 100 }] };

async function api(method: string, path: string, body?: unknown, token = admin.token) {
  const res = await fetch(`${runtime.url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const poolOf = async (pool: string) => ((await api('GET', '/api/v1/resources/allocation/status')).body.data.pools as any[]).find((p) => p.pool === pool);

/** A live task written straight into the table (no queue message: nothing runs it). */
async function storedTask(overrides: Partial<TaskRecord> = {}): Promise<TaskRecord> {
  const record = taskRecord({ title: 'ledger', created_by: admin.userId, ...overrides });
  await repo.create(record);
  return record;
}

beforeAll(async () => {
  runtime = await startLocalRuntime({
    // No analytics here: the table needs no stream (every write to a table with one costs DynamoDB Local more).
    changeFeed: false,
    port: 0,
    dataDir: null,
    log: () => undefined,
    dynamodbEndpoint: inject('dynamodbEndpoint'),
    tableName: `resources${ulid().toLowerCase()}`,
    env: { RESOURCE_POOLS: JSON.stringify(POOLS) },
  });
  repo = new TaskRepository(runtime.deps.store);
  admin = await sessionAs('admin', { store: runtime.deps.store, baseUrl: runtime.url });
});

afterAll(async () => {
  await runtime?.stop();
});

describe('pools', () => {
  it('are seeded from the configuration at first start', async () => {
    const res = await api('GET', '/api/v1/resources/allocation/status');
    expect(res.status).toBe(200);
    const pools = Object.fromEntries((res.body.data.pools as any[]).map((p) => [p.pool, p]));
    expect(pools.worker_concurrency).toMatchObject({ type: 'worker_concurrency', capacity: 3, allocated: 0, free: 3, utilisation: 0 });
    expect(pools.gpu).toMatchObject({ type: 'gpu', capacity: 0 });
    expect(pools['cli_runner:race:cpu']).toMatchObject({ type: 'cli_runner', capacity: 10 });
    for (const p of ['cpu', 'memory', 'disk', 'network', 'cli_runner:race:memory', 'cli_runner:race:disk', 'cli_runner:race:gpu']) expect(pools[p], p).toBeDefined();
  });
});

describe('bad input and permissions', () => {
  it('answers 422 naming the field for bad bodies and queries', async () => {
    const t = await storedTask();
    const cases: [string, string, unknown][] = [
      ['POST', '/api/v1/resources/allocate', { task_id: t.task_id, resources: { cpu: -1 } }],
      ['POST', '/api/v1/resources/allocate', { task_id: t.task_id, resources: { cpu: 1, bogus: 1 } }],
      ['POST', '/api/v1/resources/allocate', { resources: { cpu: 1 } }],
      ['POST', '/api/v1/resources/allocate', { task_id: 'not-a-ulid', resources: { cpu: 1 } }],
      ['POST', '/api/v1/resources/allocate', { task_id: t.task_id, resources: {} }],
      ['POST', '/api/v1/resources/allocate', { task_id: t.task_id, resources: { cli_runner: 'nowhere', cpu: 1 } }],
      ['POST', '/api/v1/resources/scale', { pool: 'cpu', action: 'set' }],
      ['POST', '/api/v1/resources/scale', { pool: 'cpu', action: 'scale_up', magnitude: 0 }],
      ['POST', '/api/v1/resources/scale', { pool: 'worker_concurrency', action: 'set', capacity: 5001 }],
      ['POST', '/api/v1/resources/conflicts/zombie.x/resolve', { strategy: 'pray' }],
      ['GET', '/api/v1/resources/monitoring?time_range=3y', undefined],
    ];
    for (const [method, path, body] of cases) {
      const res = await api(method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`).toBe(422);
      expect(res.body.error).toBe('validation_error');
    }
    expect((await api('POST', '/api/v1/resources/allocate', { task_id: ulid(), resources: { cpu: 1 } })).status).toBe(404);
    expect((await api('POST', '/api/v1/resources/scale', { pool: 'nothing', action: 'set', capacity: 1 })).status).toBe(404);
  });

  it('lets viewers read, operators manage, users neither manage nor see others\' tasks; no token is a 401', async () => {
    const viewer = await sessionAs('viewer', { store: runtime.deps.store, baseUrl: runtime.url });
    const user = await sessionAs('user', { store: runtime.deps.store, baseUrl: runtime.url });
    const operator = await sessionAs('operator', { store: runtime.deps.store, baseUrl: runtime.url });
    const t = await storedTask();
    expect((await api('POST', '/api/v1/resources/allocate', { task_id: t.task_id, resources: { cli_runner: 'race', memory_mb: 1 } }, operator.token)).status).toBe(201);
    for (const path of ['/allocation/status', '/conflicts', '/monitoring', '/optimization/recommendations', '/health']) {
      expect((await api('GET', `/api/v1/resources${path}`, undefined, viewer.token)).status, path).toBe(200);
      expect((await api('GET', `/api/v1/resources${path}`, undefined, '')).status, path).toBe(401);
    }
    for (const s of [viewer, user]) {
      expect((await api('POST', '/api/v1/resources/scale', { pool: 'cpu', action: 'scale_up', magnitude: 1 }, s.token)).status).toBe(403);
      expect((await api('POST', '/api/v1/resources/allocate', { task_id: t.task_id, resources: { cpu: 1 } }, s.token)).status).toBe(403);
      expect((await api('POST', '/api/v1/resources/release', { task_id: t.task_id }, s.token)).status).toBe(403);
    }
    const asUser = ((await api('GET', '/api/v1/resources/allocation/status', undefined, user.token)).body.data.pools as any[]).find((p) => p.pool === 'cli_runner:race:memory');
    expect(asUser.allocated).toBe(1);
    expect(asUser.allocations).toEqual([]);
    const asViewer = ((await api('GET', '/api/v1/resources/allocation/status', undefined, viewer.token)).body.data.pools as any[]).find((p) => p.pool === 'cli_runner:race:memory');
    expect(asViewer.allocations.map((a: any) => a.task_id)).toEqual([t.task_id]);
    expect((await api('POST', '/api/v1/resources/release', { task_id: t.task_id }, operator.token)).body.data).toMatchObject({ released: true, amounts: { 'cli_runner:race:memory': 1 } });
  });
});

describe('allocation', () => {
  it('never over-allocates: 100 parallel requests against a capacity of 10, sampled during the run', async () => {
    const tasks: TaskRecord[] = [];
    for (let i = 0; i < 10; i++) tasks.push(...(await Promise.all(Array.from({ length: 10 }, () => storedTask()))));
    let sampling = true;
    const samples: number[] = [];
    const sampler = (async () => {
      while (sampling) {
        const p = await poolOf('cli_runner:race:cpu');
        samples.push(p.allocated);
        expect(p.allocated).toBeLessThanOrEqual(p.capacity);
        expect(p.free).toBeGreaterThanOrEqual(0);
      }
    })();
    const answers = await Promise.all(tasks.map((t) => api('POST', '/api/v1/resources/allocate', { task_id: t.task_id, resources: { cli_runner: 'race', cpu: 1 } })));
    sampling = false;
    await sampler;
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(10);
    expect(statuses.filter((s) => s === 409)).toHaveLength(90);
    const refused = answers.find((a) => a.status === 409)!;
    expect(refused.body.error).toBe('insufficient_capacity');
    expect(refused.body.errors[0]).toMatchObject({ path: 'cli_runner:race:cpu' });
    expect(samples.length).toBeGreaterThan(0);
    expect(await poolOf('cli_runner:race:cpu')).toMatchObject({ allocated: 10, free: 0, utilisation: 1 });
    const health = (await api('GET', '/api/v1/resources/health')).body.data;
    expect(health.consistent).toBe(true);

    // Idempotent per task: the same request for a holder answers its allocation.
    const holder = tasks[statuses.indexOf(201)];
    const again = await api('POST', '/api/v1/resources/allocate', { task_id: holder.task_id, resources: { cli_runner: 'race', cpu: 1 } });
    expect(again.status).toBe(200);
    expect(again.body.data.allocation.task_id).toBe(holder.task_id);

    // wait: true queues by priority; a release grants the highest first.
    const low = await storedTask({ priority: 2 });
    const high = await storedTask({ priority: 9 });
    const qLow = await api('POST', '/api/v1/resources/allocate', { task_id: low.task_id, resources: { cli_runner: 'race', cpu: 1 }, wait: true });
    const qHigh = await api('POST', '/api/v1/resources/allocate', { task_id: high.task_id, resources: { cli_runner: 'race', cpu: 1 }, wait: true });
    expect([qLow.status, qHigh.status]).toEqual([202, 202]);
    expect(qHigh.body.data.waiting.position).toBe(1);
    const status = await poolOf('cli_runner:race:cpu');
    expect(status.waiting).toMatchObject({ requests: 2, amount: 2, by_priority: { '2': 1, '9': 1 } });
    const released = await api('POST', '/api/v1/resources/release', { task_id: holder.task_id });
    expect(released.body.data).toMatchObject({ released: true, granted: [high.task_id] });
    const after = await poolOf('cli_runner:race:cpu');
    expect(after.allocations.map((a: any) => a.task_id)).toContain(high.task_id);
    expect(after.allocations.map((a: any) => a.task_id)).not.toContain(low.task_id);
    expect(after.waiting.requests).toBe(1);

    for (const t of [...tasks, low, high]) await api('POST', '/api/v1/resources/release', { task_id: t.task_id });
    expect(await poolOf('cli_runner:race:cpu')).toMatchObject({ allocated: 0, free: 10 });
  });
});

describe('scaling and conflicts', () => {
  it('refuses a scale-down below the allocations without force; with force the over-commitment is a conflict that preempts the lowest priority', async () => {
    const low = await storedTask({ priority: 2, status: 'running', attempts: 1, lease_owner: 'w', lease_until: new Date(Date.now() + 600_000).toISOString(), started_at: new Date().toISOString(), next_attempt_at: null });
    const high = await storedTask({ priority: 8 });
    for (const t of [low, high]) expect((await api('POST', '/api/v1/resources/allocate', { task_id: t.task_id, resources: { cli_runner: 'over', cpu: 1 } })).status).toBe(201);
    const refused = await api('POST', '/api/v1/resources/scale', { pool: 'cli_runner:over:cpu', action: 'scale_down', magnitude: 1 });
    expect(refused.status).toBe(409);
    const forced = await api('POST', '/api/v1/resources/scale', { pool: 'cli_runner:over:cpu', action: 'scale_down', magnitude: 1, force: true });
    expect(forced.status).toBe(200);
    expect(forced.body.data).toMatchObject({ from: 2, to: 1, allocated: 2, over_committed: true });
    const conflict = ((await api('GET', '/api/v1/resources/conflicts')).body.data.items as any[]).find((c) => c.kind === 'over_commitment' && c.pool === 'cli_runner:over:cpu');
    expect(conflict).toMatchObject({ severity: 'warning', proposed_resolution: 'preempt_lower_priority', tasks: [low.task_id, high.task_id] });

    const resolved = await api('POST', `/api/v1/resources/conflicts/${conflict.conflict_id}/resolve`, { strategy: 'preempt_lower_priority' });
    expect(resolved.status).toBe(200);
    expect(resolved.body.data.changes).toMatchObject({ released: [low.task_id], preempted: [low.task_id] });
    const preempted = await repo.get(low.task_id);
    expect(preempted).toMatchObject({ status: 'queued', error: { code: 'preempted' } });
    expect((await poolOf('cli_runner:over:cpu')).allocations.map((a: any) => a.task_id)).toEqual([high.task_id]);
    expect((await api('POST', `/api/v1/resources/conflicts/${conflict.conflict_id}/resolve`, { strategy: 'preempt_lower_priority' })).status).toBe(409);
    expect((await api('POST', '/api/v1/resources/conflicts/zombie.NOPE.1/resolve', { strategy: 'release_zombies' })).status).toBe(404);
    await api('POST', '/api/v1/resources/release', { task_id: high.task_id });
    await api('POST', '/api/v1/resources/scale', { pool: 'cli_runner:over:cpu', action: 'set', capacity: 2 });
  });
});

describe('the worker', () => {
  it('runs no more tasks at once than worker_concurrency, observed, and the pool follows a scale', async () => {
    // The queue delivers up to 2 batches of 5 at once: more messages reach the worker than may run, so the ledger decides.
    expect((await api('POST', '/api/v1/providers/res-slow/register', { type: 'local', name: 'slow local', settings: { chunk_delay_ms: 40 } })).status).toBe(201);
    const scaled = await api('POST', '/api/v1/resources/scale', { pool: 'worker_concurrency', action: 'set', capacity: 2 });
    expect(scaled.body.data).toMatchObject({ from: 3, to: 2, worker_max_concurrency: 2 });
    const actor = { userId: admin.userId, username: admin.username };
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await createTaskService(runtime.deps, actor, createTaskBody.parse({ type: 'custom', payload: { prompt: `burst ${i} `.repeat(40) }, provider_id: 'res-slow' }))).task_id);
    let waitedForResources = false;
    for (;;) {
      const tasks = await Promise.all(ids.map((id) => repo.get(id)));
      if (tasks.some((t) => t?.waiting_reason === 'resources')) waitedForResources = true;
      if (tasks.every((t) => t?.status === 'completed' || t?.status === 'failed')) break;
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(waitedForResources).toBe(true);
    const done = await Promise.all(ids.map((id) => repo.get(id)));
    for (const t of done) expect(t?.status).toBe('completed');
    // Concurrency from the recorded run intervals, not from polling: eight reads are no snapshot, so a poll can
    // see a task still running that has finished and handed its slot to the next. A slot is released only
    // after the outcome is stored, so an end and a start at the same instant do not overlap.
    const edges = done.flatMap((t) => [{ at: Date.parse(t!.started_at!), step: 1 }, { at: Date.parse(t!.completed_at!), step: -1 }]);
    edges.sort((a, b) => a.at - b.at || a.step - b.step);
    let running = 0;
    let maxRunning = 0;
    for (const e of edges) maxRunning = Math.max(maxRunning, (running += e.step));
    expect(maxRunning).toBe(2);
    await eventually(() => poolOf('worker_concurrency'), (p) => p.allocated === 0, 10_000);
  }, 120_000);

  it('two deliveries of one task at once: the one that loses the claim leaves the allocation to the one that runs', async () => {
    await api('POST', '/api/v1/resources/scale', { pool: 'worker_concurrency', action: 'set', capacity: 3 });
    const task = await storedTask({ provider_id: 'res-slow', payload: { prompt: 'twice '.repeat(60) } });
    const message = { task_id: task.task_id, token: task.run_token! };
    const deliveries = [processRunMessage(runtime.deps, message), processRunMessage(runtime.deps, message)];
    await Promise.race(deliveries);
    // One delivery is done (the loser, or the winner if the other came after its run); while the task runs, it holds its slot.
    if ((await repo.get(task.task_id))?.status === 'running') expect((await poolOf('worker_concurrency')).allocations.map((a: any) => a.task_id)).toContain(task.task_id);
    await Promise.all(deliveries);
    expect(await repo.get(task.task_id)).toMatchObject({ status: 'completed', attempts: 1 });
    // The run gave it back: the allocation carries the run's lease, not one the loser took.
    expect((await poolOf('worker_concurrency')).allocations.map((a: any) => a.task_id)).not.toContain(task.task_id);
  }, 60_000);

  it('runs waiting tasks in priority order when capacity frees', async () => {
    await api('POST', '/api/v1/resources/scale', { pool: 'worker_concurrency', action: 'set', capacity: 1 });
    const actor = { userId: admin.userId, username: admin.username };
    const create = async (priority: number) => (await createTaskService(runtime.deps, actor, createTaskBody.parse({ type: 'custom', payload: { prompt: 'order '.repeat(60) }, provider_id: 'res-slow', priority }))).task_id;
    const first = await create(5);
    await eventually(() => repo.get(first), (t) => t?.status === 'running', 20_000);
    const low = await create(1);
    const high = await create(10);
    // Both ask while the slot is taken, so both wait with their priorities recorded.
    await eventually(async () => [await repo.get(low), await repo.get(high)], (ts) => ts.every((t) => t?.waiting_reason === 'resources'), 20_000);
    const done = await eventually(async () => Promise.all([first, low, high].map((id) => repo.get(id))), (ts) => ts.every((t) => t?.status === 'completed'), 90_000, 200);
    const [, lowTask, highTask] = done;
    expect(Date.parse(highTask!.started_at!)).toBeLessThan(Date.parse(lowTask!.started_at!));
    await api('POST', '/api/v1/resources/scale', { pool: 'worker_concurrency', action: 'set', capacity: 3 });
  }, 120_000);

  it('wakes a waiting task when capacity frees instead of leaving it to its delay', async () => {
    await api('POST', '/api/v1/resources/scale', { pool: 'worker_concurrency', action: 'set', capacity: 1 });
    // The one slot is held through the API, so the task has to wait for it.
    const holder = await storedTask();
    expect((await api('POST', '/api/v1/resources/allocate', { task_id: holder.task_id, resources: { worker_slots: 1 } })).status).toBe(201);
    const actor = { userId: admin.userId, username: admin.username };
    const id = (await createTaskService(runtime.deps, actor, createTaskBody.parse({ type: 'custom', payload: { prompt: 'wake up' }, provider_id: 'local' }))).task_id;
    const waiting = await eventually(() => repo.get(id), (t) => t?.waiting_reason === 'resources' && t.status === 'queued', 20_000, 50);
    const fallbackAt = Date.parse(waiting!.next_attempt_at!);
    expect(fallbackAt - Date.now()).toBeGreaterThan(2000);
    // The release wakes it: it starts before the delay it was sent back with runs out.
    expect((await api('POST', '/api/v1/resources/release', { task_id: holder.task_id })).body.data.released).toBe(true);
    const done = await eventually(() => repo.get(id), (t) => t?.status === 'completed', 30_000, 50);
    expect(Date.parse(done!.started_at!)).toBeLessThan(fallbackAt);
    expect(done!.attempts).toBe(1);
    await api('POST', '/api/v1/resources/scale', { pool: 'worker_concurrency', action: 'set', capacity: 3 });
  }, 60_000);

  it('history: monitoring has a series per pool from the ledger, recommendations need history', async () => {
    const mon = await api('GET', '/api/v1/resources/monitoring?time_range=1h');
    expect(mon.status).toBe(200);
    const worker = (mon.body.data.pools as any[]).find((p) => p.pool === 'worker_concurrency');
    expect(worker.series).toHaveLength(24);
    expect(Math.max(...worker.series.map((p: any) => p.allocated))).toBeGreaterThanOrEqual(1);
    expect(worker.series.at(-1).capacity).toBe(3);
    const rec = await api('GET', '/api/v1/resources/optimization/recommendations');
    expect(rec.status).toBe(200);
    // Minutes of history, not the ten needed: no recommendation is made up.
    expect(rec.body.data.recommendations).toEqual([]);
    expect(rec.body.data.insufficient_history).toContain('worker_concurrency');
  });
  it('history: a change is one ledger item, shown in each pool it touched; the per-pool history of before the change still counts', async () => {
    const from = new Date(Date.now() - 60_000);
    const t = await storedTask();
    expect((await api('POST', '/api/v1/resources/allocate', { task_id: t.task_id, resources: { cli_runner: 'history', cpu: 2, memory_mb: 300 } })).status).toBe(201);
    expect((await api('POST', '/api/v1/resources/release', { task_id: t.task_id })).body.data.released).toBe(true);
    expect((await api('POST', '/api/v1/resources/scale', { pool: 'cli_runner:history:disk', action: 'set', capacity: 150 })).status).toBe(200);
    // Two items of the per-pool ledger this one replaced, as a deployment upgraded within LEDGER_DAYS still holds them.
    for (const [at, delta] of [[new Date(Date.now() - 30_000), 3], [new Date(Date.now() - 20_000), -3]] as const) {
      await runtime.deps.store.doc.send(
        new PutCommand({
          TableName: runtime.deps.store.table,
          Item: { pk: 'RESOURCE_LEDGER#cli_runner:history:disk', sk: `${at.toISOString()}#${ulid()}`, entity: 'resource_ledger', pool: 'cli_runner:history:disk', at: at.toISOString(), kind: delta > 0 ? 'allocate' : 'release', delta_allocated: delta, delta_capacity: 0, task_id: t.task_id },
        }),
      );
    }
    const ledgers = await new ResourceRepository(runtime.deps.store).ledgers(['cli_runner:history:cpu', 'cli_runner:history:memory', 'cli_runner:history:disk', 'cli_runner:history:gpu'], from);
    const shape = (pool: string) => ledgers.get(pool)!.map((e) => [e.kind, e.delta_allocated, e.delta_capacity]);
    expect(shape('cli_runner:history:cpu')).toEqual([['allocate', 2, 0], ['release', -2, 0]]);
    expect(shape('cli_runner:history:memory')).toEqual([['allocate', 300, 0], ['release', -300, 0]]);
    expect(shape('cli_runner:history:disk')).toEqual([['allocate', 3, 0], ['release', -3, 0], ['scale', 0, 50]]);
    expect(shape('cli_runner:history:gpu')).toEqual([]);
    expect(ledgers.get('cli_runner:history:cpu')![0]).toMatchObject({ pool: 'cli_runner:history:cpu', task_id: t.task_id, waited_ms: 0 });
    // Over HTTP: the same events, counted per pool.
    const mon = await api('GET', '/api/v1/resources/monitoring?time_range=1h');
    const events = (pool: string) => (mon.body.data.pools as any[]).find((p) => p.pool === pool).forecast.events;
    expect([events('cli_runner:history:cpu'), events('cli_runner:history:memory'), events('cli_runner:history:disk')]).toEqual([2, 2, 3]);
  });
});
