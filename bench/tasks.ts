import '../local/quiet-sdk.js';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { ulid } from 'ulid';
import WebSocket from 'ws';
import { startLocalRuntime, type LocalRuntime } from '../local/runtime.js';
import { AuthService } from '../shared/auth/service.js';
import { UserRepository } from '../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../shared/auth/sessions-repo.js';
import { TaskRepository, type TaskFilter, type TaskRecord } from '../shared/tasks/repo.js';
import { publish } from '../shared/realtime/publisher.js';
import { fixed, printTable } from './lib/table.js';

/**
 * Issue 3's figures: end-to-end task latency and throughput on the local provider, the task list's
 * latency and DynamoDB read capacity with 10,000 stored tasks, and WebSocket fan-out latency.
 * `benchTasks(runtime)` is called by `bench/run.ts`; `npx tsx bench/tasks.ts` runs it alone.
 */

export interface Figure {
  what: string;
  value: string;
}

export const TASKS_BENCH = {
  e2eTasks: 300,
  e2eConcurrency: 20,
  storedTasks: 10_000,
  listRequests: 200,
  subscribers: 100,
  fanOutRounds: 20,
};

/** Nearest-rank quantile. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export async function pool<T>(count: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/** A user seeded into the runtime's table (as `npm run admin:create` does) and its access token. */
export async function benchUser(runtime: LocalRuntime): Promise<{ token: string; userId: string }> {
  const { deps } = runtime;
  const username = `bench-tasks-${ulid().toLowerCase()}`;
  const password = 'bench-tasks-password';
  const user = await new AuthService(deps, {
    users: new UserRepository(deps.store),
    sessions: new SessionRepository(deps.store),
    attempts: new LoginAttemptRepository(deps.store),
  }).createUser({ username, password, roles: ['admin'] });
  const res = await fetch(`${runtime.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  if (res.status !== 200) throw new Error(`bench login failed: ${res.status}`);
  const body = (await res.json()) as { data: { access_token: string } };
  return { token: body.data.access_token, userId: user.user_id };
}

// Idle sockets are closed before the runtime's 5 s keep-alive timeout (the agent destroys a free socket
// when its timeout passes): else a request sent on a socket the server is just closing fails with
// "socket hang up" (it did, once, in the ingest bench after its warm-up pause).
const agent = new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 4_000 });

export function request(url: string, method: string, token: string, body?: unknown): Promise<{ status: number; body: any }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        method,
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        agent,
        headers: { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export async function socket(runtime: LocalRuntime, token: string, channels: string[], onMessage: (m: any, at: number) => void): Promise<WebSocket> {
  const ws = new WebSocket(`${runtime.wsUrl}/ws?token=${encodeURIComponent(token)}`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const subscribed = new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      const at = performance.now();
      const m = JSON.parse(data.toString());
      if (m.type === 'subscribed') resolve();
      onMessage(m, at);
    });
  });
  ws.send(JSON.stringify({ action: 'subscribe', channels }));
  await subscribed;
  return ws;
}

export const closeAll = (sockets: WebSocket[]) => Promise.all(sockets.map((ws) => new Promise<void>((resolve) => (ws.readyState === WebSocket.CLOSED ? resolve() : (ws.once('close', () => resolve()), ws.close())))));

/** Create → completed (as seen by a `tasks` subscriber) for N tasks created C at a time. */
async function benchEndToEnd(runtime: LocalRuntime, token: string) {
  const { e2eTasks, e2eConcurrency } = TASKS_BENCH;
  const createdAt = new Map<string, number>();
  const completedAt = new Map<string, number>();
  let allDone: () => void;
  const done = new Promise<void>((resolve) => (allDone = resolve));
  const listener = await socket(runtime, token, ['tasks'], (m, at) => {
    if (m.type === 'task.updated' && (m.data.status === 'completed' || m.data.status === 'failed') && !completedAt.has(m.data.task_id)) {
      completedAt.set(m.data.task_id, at);
      if (completedAt.size === e2eTasks) allDone();
    }
  });
  const started = performance.now();
  let failed = 0;
  await pool(e2eTasks, e2eConcurrency, async (i) => {
    const t0 = performance.now();
    const res = await request(`${runtime.url}/api/v1/tasks`, 'POST', token, {
      type: 'bug_fix',
      provider_id: 'local',
      payload: { description: `Bench task ${i}: the login form accepts empty passwords`, error_message: 'AssertionError: expected 401, got 200', steps_to_reproduce: ['open /login', 'submit an empty password'] },
    });
    if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
    createdAt.set(res.body.data.task_id, t0);
  });
  const timeout = setTimeout(() => allDone(), 300_000);
  await done;
  clearTimeout(timeout);
  const finished = performance.now();
  await closeAll([listener]);
  const latencies: number[] = [];
  for (const [id, t0] of createdAt) {
    const t1 = completedAt.get(id);
    if (t1 !== undefined) latencies.push(t1 - t0);
  }
  const statuses = await pool(createdAt.size, 20, async (i) => (await request(`${runtime.url}/api/v1/tasks/${[...createdAt.keys()][i]}`, 'GET', token)).body.data.status);
  failed = statuses.filter((s) => s !== 'completed').length;
  return {
    tasks: e2eTasks,
    finished: latencies.length,
    failed,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    throughput: latencies.length / ((finished - started) / 1000),
  };
}

/** Stores N completed tasks the way the worker leaves them (counters included), a few creators and tags. */
async function seedTasks(runtime: LocalRuntime, userId: string, count: number): Promise<void> {
  const repo = new TaskRepository(runtime.deps.store);
  const creators = [userId, ulid(), ulid(), ulid()];
  const output = `[local] bench result\n\n## Checklist\n${'- [ ] review a finding of the analysis\n'.repeat(20)}`;
  await pool(count, 32, async (i) => {
    const at = new Date(Date.now() - (count - i) * 1000).toISOString();
    const record: TaskRecord = {
      task_id: ulid(Date.parse(at)),
      type: i % 3 === 0 ? 'pr_review' : 'bug_fix',
      title: `stored task ${i}`,
      status: 'completed',
      priority: 1 + (i % 10),
      payload: { description: `Stored bench task ${i}: the cache is never invalidated after a profile update`, error_message: 'stale profile returned' },
      result: { output },
      error: null,
      attempts: 1,
      max_attempts: 3,
      timeout_seconds: 300,
      max_cost_usd: null,
      agent_id: null,
      provider_id: 'local',
      model: 'local-deterministic',
      tokens_in: 120,
      tokens_out: 310,
      cost_usd: 0,
      created_by: creators[i % creators.length],
      created_at: at,
      updated_at: at,
      queued_at: at,
      started_at: at,
      completed_at: at,
      duration_ms: 150,
      next_attempt_at: null,
      waiting_reason: null,
      tags: i % 10 === 0 ? ['rare'] : ['common'],
      metadata: {},
      workflow_execution_id: null,
      workflow_step_id: null,
      batch_id: null,
      version: 4,
    };
    await repo.create(record);
  });
}

/** GET /api/v1/tasks latency over HTTP, and the read capacity of the same query measured at the store. */
async function benchList(runtime: LocalRuntime, token: string, userId: string) {
  const { storedTasks, listRequests } = TASKS_BENCH;
  const seedStart = performance.now();
  await seedTasks(runtime, userId, storedTasks);
  const seedSeconds = (performance.now() - seedStart) / 1000;
  const repo = new TaskRepository(runtime.deps.store);
  const variants: { label: string; query: string; filter: TaskFilter }[] = [
    { label: 'newest 20 (gsi1)', query: '', filter: {} },
    { label: 'status=completed (gsi2)', query: 'status=completed', filter: { status: 'completed' } },
    { label: 'created_by=<user> (gsi3)', query: `created_by=${userId}`, filter: { created_by: userId } },
    { label: 'tag=rare (gsi1 + filter, 1 in 10 match; at most 5 reads)', query: 'tag=rare', filter: { tag: 'rare' } },
  ];
  const rows = [];
  for (const v of variants) {
    const latencies: number[] = [];
    let items = 0;
    for (let i = 0; i < listRequests; i++) {
      const t0 = performance.now();
      const res = await request(`${runtime.url}/api/v1/tasks?limit=20${v.query ? `&${v.query}` : ''}`, 'GET', token);
      latencies.push(performance.now() - t0);
      if (res.status !== 200) throw new Error(`list ${v.label} answered ${res.status}`);
      items += res.body.data.items.length;
    }
    const page = await repo.list(v.filter, 20);
    rows.push({ label: v.label, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), rcu: page.consumedCapacity, itemsPerPage: items / listRequests });
  }
  return { seedSeconds, rows };
}

/** One update published to a channel with N subscribers: delay until each subscriber has it. */
async function benchFanOut(runtime: LocalRuntime, token: string) {
  const { subscribers, fanOutRounds } = TASKS_BENCH;
  const channel = `task:${ulid()}`;
  const delays: number[] = [];
  const publishedAt = new Map<number, number>();
  const sockets = await pool(subscribers, 20, () =>
    socket(runtime, token, [channel], (m, at) => {
      if (m.type === 'task.updated' && m.channel === channel) delays.push(at - publishedAt.get(m.data.round)!);
    }),
  );
  const publishMs: number[] = [];
  try {
    for (let round = 0; round < fanOutRounds; round++) {
      const expected = (round + 1) * subscribers;
      const t0 = performance.now();
      publishedAt.set(round, t0);
      const delivered = await publish(runtime.deps, [channel], 'task.updated', { round, status: 'running' });
      publishMs.push(performance.now() - t0);
      if (delivered !== subscribers) throw new Error(`round ${round}: delivered to ${delivered} of ${subscribers}`);
      const deadline = Date.now() + 10_000;
      while (delays.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    await closeAll(sockets);
  }
  return { deliveries: delays.length, p50: quantile(delays, 0.5), p99: quantile(delays, 0.99), publishP99: quantile(publishMs, 0.99) };
}

export async function benchTasks(runtime: LocalRuntime): Promise<Figure[]> {
  const { token, userId } = await benchUser(runtime);
  const list = await benchList(runtime, token, userId);
  const e2e = await benchEndToEnd(runtime, token);
  const fanOut = await benchFanOut(runtime, token);

  printTable(
    `Tasks end to end on the local provider (${e2e.tasks} tasks created ${TASKS_BENCH.e2eConcurrency} at a time; create request → completed event on a WebSocket)`,
    ['figure', 'value'],
    [
      ['latency p50', `${fixed(e2e.p50)} ms`],
      ['latency p99', `${fixed(e2e.p99)} ms`],
      ['throughput', `${fixed(e2e.throughput)} tasks/s`],
      ['finished / not completed', `${e2e.finished} / ${e2e.failed}`],
    ],
  );
  printTable(
    `GET /api/v1/tasks?limit=20 with ${TASKS_BENCH.storedTasks} stored tasks (and the runtime's others) (${TASKS_BENCH.listRequests} sequential requests each; seeding took ${fixed(list.seedSeconds)} s)`,
    ['query', 'p50', 'p99', 'items / page', 'read capacity / request'],
    list.rows.map((r) => [r.label, `${fixed(r.p50)} ms`, `${fixed(r.p99)} ms`, fixed(r.itemsPerPage), `${fixed(r.rcu, 1)} RCU`]),
  );
  printTable(
    `WebSocket fan-out: one update to ${TASKS_BENCH.subscribers} subscribers of one channel, ${TASKS_BENCH.fanOutRounds} rounds (publish start → message received)`,
    ['figure', 'value'],
    [
      ['delivery p50', `${fixed(fanOut.p50)} ms`],
      ['delivery p99', `${fixed(fanOut.p99)} ms`],
      ['publish call p99 (all posts answered)', `${fixed(fanOut.publishP99)} ms`],
      ['deliveries', String(fanOut.deliveries)],
    ],
  );
  const first = list.rows[0];
  return [
    { what: 'task create → completed p50 / p99 (local provider)', value: `${fixed(e2e.p50)} / ${fixed(e2e.p99)} ms` },
    { what: 'task throughput (local provider)', value: `${fixed(e2e.throughput)} tasks/s` },
    { what: `GET /api/v1/tasks p99 with ${TASKS_BENCH.storedTasks} tasks`, value: `${fixed(first.p99)} ms, ${fixed(first.rcu, 1)} RCU/request` },
    { what: `WebSocket fan-out p99 to ${TASKS_BENCH.subscribers} subscribers`, value: `${fixed(fanOut.p99)} ms` },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const runtime = await startLocalRuntime({ port: 0, dataDir: null, log: () => undefined });
  try {
    await benchTasks(runtime);
  } finally {
    await runtime.stop();
    agent.destroy();
  }
}
