import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ulid } from 'ulid';
import { startLocalRuntime, type LocalRuntime } from '../../../local/runtime.js';
import { ManualClock } from '../../../shared/platform/local/clock.js';
import { handler as sweeper } from '../../../functions/sweeper/handler.js';
import { RESEND_AFTER_SECONDS, STUCK_QUEUED_SECONDS } from '../../../shared/tasks/sweeper.js';
import { TASK_QUEUE } from '../../../shared/platform/infra.js';
import { createTask as createTaskService } from '../../../shared/tasks/service.js';
import { recordProviderCall } from '../../../shared/providers/status.js';
import { createTaskBody } from '../../../shared/tasks/model.js';
import { TaskRepository, type TaskRecord } from '../../../shared/tasks/repo.js';
import { AgentRepository } from '../../../shared/agents/repo.js';
import { eventually, type Session } from '../../support/client.js';
import { taskRecord } from '../../support/task-record.js';
import { sessionAs } from './helpers.js';
import { checkResponse } from '../../support/contract.js';

/**
 * The execution path's failure modes, on a runtime of this file's own (its own table on the run's
 * DynamoDB Local) whose clock only moves when the test says: leases expire, stuck tasks age and quota
 * windows roll over exactly when the test decides, with no real waiting.
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
  const text = await res.text();
  await checkResponse(method, res.url, res.status, res.headers.get('content-type') ?? undefined, text);
  return { status: res.status, body: JSON.parse(text) as any };
}

const task = (id: string) => repo.get(id) as Promise<TaskRecord>;
const waitFor = (id: string, statuses: string[]) => eventually(() => task(id), (t) => statuses.includes(t?.status), 30_000);
const queueIdle = () =>
  eventually(
    async () => runtime.queue.stats(),
    (s) => s.visible === 0 && s.batchesInFlight === 0,
    30_000,
  );

/** A task as a worker would have left it, written straight into the table (no queue message). */
async function storedTask(overrides: Partial<TaskRecord>): Promise<TaskRecord> {
  const record = taskRecord({ title: 'recovery', payload: { prompt: 'recover me' }, timeout_seconds: 30, tags: ['recovery'], created_by: admin.userId, ...overrides }, clock.now());
  await repo.create(record);
  return record;
}

/** What a worker that claimed the task and then died leaves behind. */
const abandoned = (leaseSeconds: number, attempts = 1) => ({
  status: 'running' as const,
  attempts,
  lease_owner: 'a-worker-that-died',
  lease_until: new Date(clock.now().getTime() + leaseSeconds * 1000).toISOString(),
  started_at: clock.now().toISOString(),
  next_attempt_at: null,
});

beforeAll(async () => {
  clock = new ManualClock(Date.now());
  runtime = await startLocalRuntime({
    // No analytics here: the table needs no stream (every write to a table with one costs DynamoDB Local more).
    changeFeed: false,
    port: 0,
    dataDir: null,
    log: () => undefined,
    clock,
    dynamodbEndpoint: inject('dynamodbEndpoint'),
    tableName: `tasks${ulid().toLowerCase()}`,
  });
  repo = new TaskRepository(runtime.deps.store);
  admin = await sessionAs('admin', { store: runtime.deps.store, baseUrl: runtime.url });
});

afterAll(async () => {
  await runtime?.stop();
});

describe('duplicate deliveries', () => {
  it('run a task once, however many copies of its message arrive', async () => {
    const register = await api('POST', '/api/v1/providers/dup-slow/register', { type: 'local', name: 'slow local', settings: { chunk_delay_ms: 30 } });
    expect(register.status).toBe(201);
    const created = await createTaskService(runtime.deps, { userId: admin.userId, username: admin.username }, createTaskBody.parse({ type: 'custom', payload: { prompt: 'once' }, provider_id: 'dup-slow' }));
    const token = (await task(created.task_id)).run_token;
    for (let i = 0; i < 5; i++) await runtime.queue.send({ task_id: created.task_id, token });
    const done = await waitFor(created.task_id, ['completed', 'failed']);
    await queueIdle();
    expect(done.status).toBe('completed');
    expect(done.attempts).toBe(1);
    expect(await repo.countSessions(created.task_id)).toBe(1);
  });
});

describe('a worker that dies mid-run', () => {
  it('leaves a lease the sweeper recovers once it expires: the task runs again and completes', async () => {
    const t = await storedTask(abandoned(60));
    expect((await sweeper()).leases_recovered).toBe(0);
    expect((await task(t.task_id)).status).toBe('running');

    clock.advance(61_000);
    expect((await sweeper()).leases_recovered).toBeGreaterThanOrEqual(1);
    const done = await waitFor(t.task_id, ['completed', 'failed']);
    expect(done.status).toBe('completed');
    expect(done.attempts).toBe(2);
    const sessions = (await repo.sessions(t.task_id, 10)).items;
    expect(sessions.map((s) => [s.attempt, s.outcome])).toEqual([
      [1, 'lost'],
      [2, 'completed'],
    ]);
    expect(sessions[0].error?.code).toBe('worker_lost');
  });

  it('is taken over by a redelivered message once the lease has expired', async () => {
    const t = await storedTask(abandoned(-1));
    await runtime.queue.send({ task_id: t.task_id, token: t.run_token });
    const done = await waitFor(t.task_id, ['completed', 'failed']);
    expect(done).toMatchObject({ status: 'completed', attempts: 2 });
    expect((await repo.sessions(t.task_id, 10)).items.map((s) => s.outcome)).toEqual(['lost', 'completed']);
  });

  it('fails the task when the lost attempt was its last', async () => {
    const t = await storedTask({ ...abandoned(-1, 2), max_attempts: 2 });
    await sweeper();
    const done = await waitFor(t.task_id, ['failed', 'completed']);
    expect(done).toMatchObject({ status: 'failed', attempts: 2, error: { code: 'worker_lost', retryable: false } });
  });

  it('records the lost attempt and drops the dead lease when the task taken over has to wait for a slot', async () => {
    const group = `batch:${ulid()}`;
    const agents = new AgentRepository(runtime.deps.store);
    expect(await agents.acquireSlot(group, 1, ulid(), new Date(clock.now().getTime() + 600_000), clock.now())).toBe(0);
    const t = await storedTask({ ...abandoned(-1), concurrency_group: group, concurrency_limit: 1 });
    await runtime.queue.send({ task_id: t.task_id, token: t.run_token });
    const waiting = await eventually(() => task(t.task_id), (x) => x.status === 'queued', 30_000);
    expect(waiting).toMatchObject({ attempts: 1, waiting_reason: 'concurrency' });
    expect(waiting.lease_owner).toBeUndefined();
    expect(waiting.lease_until).toBeUndefined();
    expect((await repo.sessions(t.task_id, 10)).items.map((s) => [s.attempt, s.outcome, s.error?.code])).toEqual([[1, 'lost', 'worker_lost']]);
    expect((await api('POST', `/api/v1/tasks/${t.task_id}/cancel`, {})).status).toBe(200);
  });

  it('does not recover a running task whose lease is live, even when its message comes again', async () => {
    const t = await storedTask(abandoned(600));
    await runtime.queue.send({ task_id: t.task_id, token: t.run_token });
    await queueIdle();
    await sweeper();
    expect(await task(t.task_id)).toMatchObject({ status: 'running', attempts: 1, lease_owner: 'a-worker-that-died' });
    expect(await repo.countSessions(t.task_id)).toBe(0);
    // Let it go: the lease expires and the sweeper hands it to a worker.
    clock.advance(601_000 + 60_000);
    await sweeper();
    expect((await waitFor(t.task_id, ['completed', 'failed'])).status).toBe('completed');
  });
});

describe('a running attempt whose task another worker took over', () => {
  it('stops its provider call instead of running on beside the new attempt', async () => {
    // Cancelled and retried between two of the worker's status reads, then claimed again: the status
    // reads `running` once more, but under another worker's lease.
    const register = await api('POST', '/api/v1/providers/race-slow/register', { type: 'local', name: 'slow local', settings: { chunk_delay_ms: 5000 } });
    expect(register.status).toBe(201);
    const created = await createTaskService(runtime.deps, { userId: admin.userId, username: admin.username }, createTaskBody.parse({ type: 'custom', payload: { prompt: 'race me' }, provider_id: 'race-slow' }));
    const running = await waitFor(created.task_id, ['running']);
    await repo.apply(running, { set: { lease_owner: 'another-worker', updated_at: clock.now().toISOString() } });

    // The old attempt (7 chunks, 5 s apart: over half a minute of output) notices within a poll and
    // records itself without an answer, long before it would have streamed its whole output.
    const [session] = await eventually(async () => (await repo.sessions(created.task_id, 10)).items, (items) => items.length === 1, 20_000);
    expect(session).toMatchObject({ attempt: 1, response: null, tokens_out: 0 });
    expect(await task(created.task_id)).toMatchObject({ status: 'running', lease_owner: 'another-worker' });
    expect((await api('POST', `/api/v1/tasks/${created.task_id}/cancel`, {})).status).toBe(200);
  });

  it('gives back only its own hold on the agent\'s concurrency slot, not the one the new attempt took', async () => {
    const register = await api('POST', '/api/v1/providers/race-slot/register', { type: 'local', name: 'slow local', settings: { chunk_delay_ms: 5000 } });
    expect(register.status).toBe(201);
    const agent = await api('POST', '/api/v1/agents', { name: `race-slot-${ulid()}`, provider_id: 'race-slot', quota: { window: 'hourly', max_requests: null, max_tokens: null }, max_concurrency: 1 });
    expect(agent.status).toBe(201);
    const agentId: string = agent.body.data.agent_id;
    const agents = new AgentRepository(runtime.deps.store);
    const created = await createTaskService(runtime.deps, { userId: admin.userId, username: admin.username }, createTaskBody.parse({ type: 'custom', payload: { prompt: 'share a slot' }, agent_id: agentId }));
    const running = await waitFor(created.task_id, ['running']);
    expect((await agents.slots(`agent:${agentId}`)).map((s) => s.lease_until)).toEqual([running.lease_until]);

    // The retried task's new attempt takes the agent's only slot (it is the same task) under its own lease.
    const newLease = new Date(clock.now().getTime() + 3_600_000);
    expect(await agents.acquireSlot(`agent:${agentId}`, 1, created.task_id, newLease, clock.now())).toBe(0);
    await repo.apply(running, { set: { lease_owner: 'another-worker', lease_until: newLease.toISOString() } });

    await eventually(async () => (await repo.sessions(created.task_id, 10)).items, (items) => items.length === 1, 20_000);
    expect(await agents.slots(`agent:${agentId}`)).toEqual([{ slot: 0, task_id: created.task_id, lease_until: newLease.toISOString() }]);
    expect((await api('POST', `/api/v1/tasks/${created.task_id}/cancel`, {})).status).toBe(200);
  });
});

describe('the sweeper', () => {
  it('hands a task left pending (its send was lost) to the queue', async () => {
    const t = await storedTask({ status: 'pending', queued_at: null });
    expect((await sweeper()).pending_enqueued).toBe(0);
    clock.advance(61_000);
    expect((await sweeper()).pending_enqueued).toBeGreaterThanOrEqual(1);
    expect((await waitFor(t.task_id, ['completed', 'failed'])).status).toBe('completed');
  });

  it('sends a queued task whose message never arrived again', async () => {
    const t = await storedTask({ status: 'queued' });
    clock.advance(121_000);
    expect((await sweeper()).queued_resent).toBeGreaterThanOrEqual(1);
    expect((await waitFor(t.task_id, ['completed', 'failed'])).status).toBe('completed');
    expect(await repo.countSessions(t.task_id)).toBe(1);
  });
});

describe('the dead-letter queue consumer', () => {
  it('fails the task of a dead-lettered message with the reason, and ignores a superseded message', async () => {
    const dead = await storedTask({ status: 'queued', next_attempt_at: new Date(clock.now().getTime() + 3_600_000).toISOString() });
    const moved = await storedTask({ status: 'queued', next_attempt_at: new Date(clock.now().getTime() + 3_600_000).toISOString() });
    await runtime.deadLetterQueue.send({ task_id: dead.task_id, token: dead.run_token });
    await runtime.deadLetterQueue.send({ task_id: moved.task_id, token: 'an-older-token' });
    const failed = await waitFor(dead.task_id, ['failed']);
    expect(failed.error).toMatchObject({ code: 'dead_lettered', retryable: false });
    expect(failed.error!.message).toContain('dead-letter queue');
    await eventually(async () => runtime.deadLetterQueue.size(), (n) => n === 0);
    expect((await task(moved.task_id)).status).toBe('queued');
  });
});

describe('a provider whose circuit is open', () => {
  it('makes the tasks that name it wait without using attempts, until the breaker lets a call through', async () => {
    expect((await api('POST', '/api/v1/providers/flaky-local/register', { type: 'local', name: 'flaky' })).status).toBe(201);
    for (let i = 0; i < 5; i++) {
      await recordProviderCall(runtime.deps, { providerId: 'flaky-local', ok: false, retryable: true, errorCode: 'server_error', latencyMs: 5, tokensIn: 0, tokensOut: 0, costUsd: 0 });
    }
    const delayedBefore = runtime.queue.stats().delayed;
    const created = await api('POST', '/api/v1/tasks', { type: 'custom', payload: { prompt: 'wait for the breaker' }, provider_id: 'flaky-local' });
    expect(created.status).toBe(201);
    const id = created.body.data.task_id;
    const waiting = await eventually(() => task(id), (t) => t.waiting_reason === 'provider_unavailable');
    expect(waiting).toMatchObject({ status: 'queued', attempts: 0 });
    expect(await repo.countSessions(id)).toBe(0);
    // The worker stores the wait before it sends the delayed message: the clock moves once that message
    // is in the queue (its delay counts from the clock at the send).
    await eventually(async () => runtime.queue.stats(), (s) => s.delayed > delayedBefore && s.batchesInFlight === 0, 30_000);

    clock.set(Date.parse(waiting.next_attempt_at!) + 1000);
    runtime.queue.tick();
    const done = await waitFor(id, ['completed', 'failed']);
    expect(done).toMatchObject({ status: 'completed', attempts: 1, provider_id: 'flaky-local' });
  });
});

describe('quota', () => {
  it('is never overspent by concurrent workers; tasks wait for the window to reset and then resume', async () => {
    const agent = await api('POST', '/api/v1/agents', { name: 'tiny-quota', provider_id: 'local', quota: { window: 'hourly', max_requests: 3 }, max_concurrency: 10 });
    expect(agent.status).toBe(201);
    const agentId = agent.body.data.agent_id;
    const ids = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const res = await api('POST', '/api/v1/tasks', { type: 'custom', payload: { prompt: `quota ${i}` }, agent_id: agentId });
        expect(res.status).toBe(201);
        return res.body.data.task_id as string;
      }),
    );
    const all = () => Promise.all(ids.map(task));
    const count = (tasks: TaskRecord[], pred: (t: TaskRecord) => boolean) => tasks.filter(pred).length;

    let tasks = await eventually(all, (ts) => count(ts, (t) => t.status === 'completed') === 3 && count(ts, (t) => t.waiting_reason === 'quota') === 5);
    expect(count(tasks, (t) => t.status === 'failed')).toBe(0);
    let quota = (await api('GET', '/api/v1/agents/quota/status')).body.data.agents.find((a: any) => a.agent_id === agentId);
    expect(quota).toMatchObject({ used: { requests: 3 }, remaining: { requests: 0 }, available: false });
    const resetsAt = Date.parse(quota.resets_at);
    for (const t of tasks.filter((x) => x.status === 'queued')) expect(Date.parse(t.next_attempt_at!)).toBeGreaterThanOrEqual(resetsAt);

    clock.set(resetsAt + 10_000);
    tasks = await eventually(all, (ts) => count(ts, (t) => t.status === 'completed') === 6 && count(ts, (t) => t.waiting_reason === 'quota' && t.status === 'queued') === 2);
    quota = (await api('GET', '/api/v1/agents/quota/status')).body.data.agents.find((a: any) => a.agent_id === agentId);
    expect(quota).toMatchObject({ used: { requests: 3 }, remaining: { requests: 0 } });

    clock.set(Date.parse(quota.resets_at) + 10_000);
    tasks = await eventually(all, (ts) => ts.every((t) => t.status === 'completed'));
    for (const t of tasks) {
      expect(t.attempts).toBe(1);
      expect(await repo.countSessions(t.task_id)).toBe(1);
    }
    quota = (await api('GET', '/api/v1/agents/quota/status')).body.data.agents.find((a: any) => a.agent_id === agentId);
    expect(quota).toMatchObject({ used: { requests: 2 }, remaining: { requests: 1 }, available: true });
  });
});

describe('the sweeper under a backlog', () => {
  it('records each send and re-sends a queued task only once its last send is older than the visibility timeout plus a margin', async () => {
    // Sent (last_sent_at) and waiting behind a backlog: its message is not lost.
    const sentAt = clock.now().toISOString();
    const t = await storedTask({ status: 'queued', last_sent_at: sentAt });
    // (Other tests' leftovers may be re-sent meanwhile: this task's own record says whether it was.)
    clock.advance((STUCK_QUEUED_SECONDS + 1) * 1000);
    await sweeper();
    expect(await task(t.task_id)).toMatchObject({ status: 'queued', version: 1, last_sent_at: sentAt });
    clock.advance((RESEND_AFTER_SECONDS - STUCK_QUEUED_SECONDS - 60) * 1000);
    await sweeper();
    expect(await task(t.task_id)).toMatchObject({ status: 'queued', version: 1, last_sent_at: sentAt });

    clock.advance(61_000);
    const resentAt = clock.now().toISOString();
    expect((await sweeper()).queued_resent).toBeGreaterThanOrEqual(1);
    const done = await waitFor(t.task_id, ['completed', 'failed']);
    expect(done.status).toBe('completed');
    expect(done.last_sent_at).toBe(resentAt);
    expect(await repo.countSessions(t.task_id)).toBe(1);
    expect(RESEND_AFTER_SECONDS).toBe(TASK_QUEUE.visibilityTimeoutSeconds + 300);
  });
});
