import '../local/quiet-sdk.js';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { ulid } from 'ulid';
import { startLocalRuntime, type LocalRuntime } from '../local/runtime.js';
import { AuthService } from '../shared/auth/service.js';
import { UserRepository } from '../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../shared/auth/sessions-repo.js';
import { TaskRepository, type TaskRecord } from '../shared/tasks/repo.js';
import { createTaskBody } from '../shared/tasks/model.js';
import { fixed, printTable } from './lib/table.js';

/**
 * Issue 14's figures: allocation throughput and latency under contention on one pool. Clients
 * allocate 1 unit of a 10-unit pool and release it at once, many at a time, over HTTP: every answer is a
 * 201 or a 409 `insufficient_capacity`, and the pool never holds more than its capacity (checked after
 * every answer). `benchResources(runtime)` is called by `bench/run.ts`; `npx tsx bench/resources.ts` runs it alone.
 */
export const RESOURCES_BENCH = { tasks: 200, concurrency: 50, capacity: 10, rounds: 3 };

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
};

async function adminToken(runtime: LocalRuntime): Promise<{ token: string; userId: string }> {
  const { deps } = runtime;
  const username = `bench-resources-${ulid().toLowerCase()}`;
  const password = 'bench-resources-password';
  const user = await new AuthService(deps, { users: new UserRepository(deps.store), sessions: new SessionRepository(deps.store), attempts: new LoginAttemptRepository(deps.store) }).createUser({ username, password, roles: ['admin'] });
  const res = await fetch(`${runtime.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  if (res.status !== 200) throw new Error(`bench login failed: ${res.status}`);
  return { token: ((await res.json()) as { data: { access_token: string } }).data.access_token, userId: user.user_id };
}

export async function benchResources(runtime: LocalRuntime): Promise<{ what: string; value: string }[]> {
  const { token, userId } = await adminToken(runtime);
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${runtime.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as any };
  };
  // One pool of its own: a network pool sized to the bench, restored afterwards.
  const before = ((await api('GET', '/api/v1/resources/allocation/status')).body.data.pools as any[]).find((p) => p.pool === 'network');
  await api('POST', '/api/v1/resources/scale', { pool: 'network', action: 'set', capacity: before.allocated + RESOURCES_BENCH.capacity });

  // Live tasks written straight into the table (nothing runs them: the bench measures the ledger only).
  const repo = new TaskRepository(runtime.deps.store);
  const now = new Date().toISOString();
  const tasks: string[] = [];
  for (let i = 0; i < RESOURCES_BENCH.tasks; i++) {
    const task_id = ulid();
    const record = { ...createTaskBody.parse({ type: 'custom', payload: { prompt: 'bench' } }), task_id, title: 'bench', status: 'queued', result: null, error: null, attempts: 0, max_cost_usd: null, agent_id: null, provider_id: null, model: null, tokens_in: 0, tokens_out: 0, cost_usd: 0, created_by: userId, created_at: now, updated_at: now, queued_at: now, started_at: null, completed_at: null, duration_ms: null, next_attempt_at: now, waiting_reason: null, workflow_execution_id: null, workflow_step_id: null, batch_id: null, version: 1 } as TaskRecord;
    await repo.create(record);
    tasks.push(task_id);
  }

  const latencies: number[] = [];
  let granted = 0;
  let refused = 0;
  let other = 0;
  let next = 0;
  const total = tasks.length * RESOURCES_BENCH.rounds;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: RESOURCES_BENCH.concurrency }, async () => {
      while (next < total) {
        const taskId = tasks[next++ % tasks.length];
        const t0 = performance.now();
        const res = await api('POST', '/api/v1/resources/allocate', { task_id: taskId, resources: { network_mbps: 1 } });
        latencies.push(performance.now() - t0);
        if (res.status === 201) {
          granted++;
          await api('POST', '/api/v1/resources/release', { task_id: taskId });
        } else if (res.status === 409) refused++;
        else other++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const health = (await api('GET', '/api/v1/resources/health')).body.data;
  await api('POST', '/api/v1/resources/scale', { pool: 'network', action: 'set', capacity: before.capacity, force: true });

  const p50 = quantile(latencies, 0.5);
  const p99 = quantile(latencies, 0.99);
  printTable(`allocation on one ${RESOURCES_BENCH.capacity}-unit pool, ${RESOURCES_BENCH.concurrency} clients`, ['requests', 'granted', 'refused (409)', 'other', 'req/s', 'p50 ms', 'p99 ms', 'ledger consistent'], [
    [String(total), String(granted), String(refused), String(other), fixed(total / seconds), fixed(p50), fixed(p99), String(health.consistent)],
  ]);
  return [
    { what: `allocation throughput, ${RESOURCES_BENCH.concurrency} clients on a ${RESOURCES_BENCH.capacity}-unit pool`, value: `${fixed(total / seconds)} req/s (${granted} granted, ${refused} refused)` },
    { what: 'allocation p99 under contention', value: `${fixed(p99)} ms` },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const runtime = await startLocalRuntime({ port: 0, dataDir: null, log: () => undefined });
  try {
    await benchResources(runtime);
  } finally {
    await runtime.stop();
  }
}
