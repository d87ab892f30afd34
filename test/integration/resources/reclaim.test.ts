import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ulid } from 'ulid';
import { startLocalRuntime, type LocalRuntime } from '../../../local/runtime.js';
import { ManualClock } from '../../../shared/platform/local/clock.js';
import { handler as sweeper } from '../../../functions/sweeper/handler.js';
import { TaskRepository, type TaskRecord } from '../../../shared/tasks/repo.js';
import { holdForRun, releaseAfterRun } from '../../../shared/resources/service.js';
import type { Session } from '../../support/client.js';
import { taskRecord } from '../../support/task-record.js';
import { sessionAs } from '../tasks/helpers.js';

/**
 * Lease expiry on a runtime whose clock only moves when the test says (no periodic sweeper runs on a
 * manual clock): a worker that died leaves its allocation until its lease expires, then the sweeper
 * gives it back.
 */
let runtime: LocalRuntime;
let clock: ManualClock;
let repo: TaskRepository;
let admin: Session;

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${runtime.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${admin.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}
const poolOf = async (pool: string) => ((await api('GET', '/api/v1/resources/allocation/status')).body.data.pools as any[]).find((p) => p.pool === pool);

async function storedTask(overrides: Partial<TaskRecord> = {}): Promise<TaskRecord> {
  const now = clock.now().toISOString();
  const record = taskRecord(
    {
      type: 'code_analysis',
      payload: { code: 'x = 1', language: 'python' },
      title: 'reclaim',
      status: 'running',
      // Its last attempt: recovering the lease fails the task rather than running it again here.
      attempts: 3,
      provider_id: null,
      started_at: now,
      next_attempt_at: null,
      lease_owner: 'a-worker-that-dies',
      created_by: admin.userId,
      ...overrides,
    } as Partial<TaskRecord> & Pick<TaskRecord, 'created_by'>,
    clock.now(),
  );
  await repo.create(record);
  return record;
}

beforeAll(async () => {
  clock = new ManualClock(Date.now());
  runtime = await startLocalRuntime({ changeFeed: false, port: 0, dataDir: null, log: () => undefined, clock, dynamodbEndpoint: inject('dynamodbEndpoint'), tableName: `reclaim${ulid().toLowerCase()}` });
  repo = new TaskRepository(runtime.deps.store);
  admin = await sessionAs('admin', { store: runtime.deps.store, baseUrl: runtime.url });
});

afterAll(async () => {
  await runtime?.stop();
});

describe('allocations of a worker that died', () => {
  it('are held until the lease expires, show as a zombie, then the sweeper reclaims them', async () => {
    const lease = new Date(clock.now().getTime() + 60_000);
    const t = await storedTask({ lease_until: lease.toISOString() });
    const hold = await holdForRun(runtime.deps, t, lease);
    if (!('held' in hold)) throw new Error(`not held: ${JSON.stringify(hold)}`);
    // The type's defaults (code_analysis: 1 cpu, 1024 MB, 512 MB disk) and one worker slot.
    expect(hold.held.amounts).toEqual({ worker_concurrency: 1, cpu: 1, memory: 1024, disk: 512 });
    expect((await poolOf('worker_concurrency')).allocated).toBe(1);

    expect((await sweeper()).allocations_reclaimed).toBe(0);
    expect((await api('GET', '/api/v1/resources/health')).body.data).toMatchObject({ zombies: 0, consistent: true, status: 'healthy' });

    clock.advance(61_000);
    const zombie = ((await api('GET', '/api/v1/resources/conflicts')).body.data.items as any[]).find((c) => c.kind === 'zombie');
    expect(zombie).toMatchObject({ tasks: [t.task_id], proposed_resolution: 'release_zombies' });
    expect((await api('GET', '/api/v1/resources/health')).body.data).toMatchObject({ zombies: 1, status: 'degraded' });

    const report = await sweeper();
    expect(report.allocations_reclaimed).toBe(1);
    expect(report.leases_recovered).toBe(1);
    expect((await repo.get(t.task_id))?.status).toBe('failed');
    for (const pool of ['worker_concurrency', 'cpu', 'memory', 'disk']) expect((await poolOf(pool)).allocated, pool).toBe(0);
    expect((await api('GET', '/api/v1/resources/health')).body.data).toMatchObject({ zombies: 0, consistent: true });
    // The zombie is gone with its allocation; resolving it now is a 404 (never resolved) rather than a replay.
    expect((await api('POST', `/api/v1/resources/conflicts/${zombie.conflict_id}/resolve`, { strategy: 'release_zombies' })).status).toBe(404);

    // The dead worker's late release changes nothing: its lease is not the allocation's any more.
    await releaseAfterRun(runtime.deps, hold.held);
    expect((await api('GET', '/api/v1/resources/health')).body.data.consistent).toBe(true);
  });

  it('a zombie resolved with release_zombies gives its resources back; a second resolve is a 409', async () => {
    const lease = new Date(clock.now().getTime() + 30_000);
    const t = await storedTask({ lease_until: lease.toISOString() });
    const hold = await holdForRun(runtime.deps, t, lease);
    expect('held' in hold).toBe(true);
    clock.advance(31_000);
    const zombie = ((await api('GET', '/api/v1/resources/conflicts')).body.data.items as any[]).find((c) => c.kind === 'zombie' && c.tasks.includes(t.task_id));
    const resolved = await api('POST', `/api/v1/resources/conflicts/${zombie.conflict_id}/resolve`, { strategy: 'release_zombies' });
    expect(resolved.status).toBe(200);
    expect(resolved.body.data.changes.released).toEqual([t.task_id]);
    expect((await poolOf('worker_concurrency')).allocated).toBe(0);
    expect((await api('POST', `/api/v1/resources/conflicts/${zombie.conflict_id}/resolve`, { strategy: 'release_zombies' })).status).toBe(409);
    expect((await api('POST', `/api/v1/resources/conflicts/${zombie.conflict_id}/resolve`, { strategy: 'scale_up' })).status).toBe(409);
  });
});
