import { describe, it, expect, beforeAll } from 'vitest';
import { call, eventually, openSocket, type Session } from '../../support/client.js';
import { costUsd } from '../../../shared/providers/types.js';
import { createAgent, createTask, customTask, getTask, registerLocalProvider, sessionAs, sessionsOf, stats, waitForStatus } from './helpers.js';

const PRICING = { input_per_million: 3, output_per_million: 15 };

describe('task execution on the local runtime', () => {
  let admin: Session;
  let user: Session;
  let pricedProvider: string;
  let pricedAgent: string;

  beforeAll(async () => {
    admin = await sessionAs('admin');
    user = await sessionAs('user');
    pricedProvider = await registerLocalProvider(admin, { pricing: PRICING });
    pricedAgent = (await createAgent(admin, { provider_id: pricedProvider, quota: { window: 'daily', max_requests: 1000, max_tokens: 10_000_000 }, max_concurrency: 5 })).agent_id;
  });

  it('completes a task on the local provider with its session, tokens and cost from the provider\'s pricing', async () => {
    const before = await stats(admin);
    const created = await createTask(user, {
      type: 'bug_fix',
      payload: { description: 'Login fails for e-mails with a plus sign', error_message: 'ValueError: invalid address', steps_to_reproduce: ['register a+b@x.io', 'log in'] },
      agent_id: pricedAgent,
      priority: 7,
      tags: ['auth'],
    });
    expect(['pending', 'queued']).toContain(created.status);

    const task = await waitForStatus(user, created.task_id, ['completed', 'failed']);
    expect(task.status).toBe('completed');
    expect(task.agent_id).toBe(pricedAgent);
    expect(task.provider_id).toBe(pricedProvider);
    expect(task.model).toBe('local-deterministic');
    expect(task.result.output).toMatch(/^\[local\]/);
    expect(task.error).toBeNull();
    expect(task.attempts).toBe(1);
    expect(task.tokens_in).toBeGreaterThan(0);
    expect(task.tokens_out).toBeGreaterThan(0);
    expect(task.cost_usd).toBeGreaterThan(0);
    expect(task.cost_usd).toBe(costUsd(PRICING, task.tokens_in, task.tokens_out));
    expect(task.duration_ms).toBeGreaterThanOrEqual(0);
    expect(Date.parse(task.completed_at)).toBeGreaterThanOrEqual(Date.parse(task.started_at));

    const sessions = await sessionsOf(user, created.task_id);
    expect(sessions).toHaveLength(1);
    const [s] = sessions;
    expect(s).toMatchObject({ attempt: 1, agent_id: pricedAgent, provider_id: pricedProvider, outcome: 'completed', error: null, tokens_in: task.tokens_in, tokens_out: task.tokens_out, cost_usd: task.cost_usd });
    expect(s.prompt).toContain('ValueError: invalid address');
    expect(s.response).toBe(task.result.output);
    expect(s.latency_ms).toBeGreaterThanOrEqual(0);

    const after = await stats(admin);
    expect(after.by_status.completed).toBeGreaterThanOrEqual(before.by_status.completed + 1);
    expect(after.by_type.bug_fix).toBeGreaterThanOrEqual(before.by_type.bug_fix + 1);
    expect(after.tokens.total).toBeGreaterThanOrEqual(before.tokens.total + task.tokens_in + task.tokens_out);
    expect(after.cost_usd).toBeGreaterThan(before.cost_usd);
    expect(after.duration_ms.count).toBeGreaterThanOrEqual(before.duration_ms.count + 1);

    const quota = await call('GET', '/api/v1/agents/quota/status', { token: user.token });
    const mine = quota.body.data.agents.find((a: any) => a.agent_id === pricedAgent);
    expect(mine.used).toEqual({ requests: 1, tokens: task.tokens_in + task.tokens_out });
    expect(mine.remaining).toEqual({ requests: 999, tokens: 10_000_000 - task.tokens_in - task.tokens_out });
    expect(mine.available).toBe(true);
    expect(mine.last_used_at).not.toBeNull();
  });

  it('runs on the seeded default agent of the local provider', async () => {
    const created = await createTask(user, customTask('Summarise: the build is red since Tuesday', { provider_id: 'local' }));
    const task = await waitForStatus(user, created.task_id, ['completed', 'failed']);
    expect(task.status).toBe('completed');
    const agents = await call('GET', '/api/v1/agents?provider_id=local', { token: user.token });
    expect(agents.body.data.items.map((a: any) => a.agent_id)).toContain(task.agent_id);
  });

  it('streams to a WebSocket client: created → running → completed in order, output chunks in order', async () => {
    const slow = await registerLocalProvider(admin, { chunkDelayMs: 40 });
    const socket = await openSocket('/ws', user.token);
    try {
      socket.send({ action: 'subscribe', channels: ['tasks'] });
      await socket.waitFor((m) => m.type === 'subscribed');
      const created = await createTask(user, customTask('# Plan\n- step one\n- step two\n```ts\nconst a = 1;\n```', { provider_id: slow }));
      socket.send({ action: 'subscribe', channels: [`task:${created.task_id}`] });
      await socket.waitFor((m) => m.type === 'task.updated' && m.channel === 'tasks' && m.data.task_id === created.task_id && m.data.status === 'completed', 30_000);

      const onTasks = socket.messages.filter((m) => m.channel === 'tasks' && m.data?.task_id === created.task_id);
      const sequence = onTasks.map((m) => (m.type === 'task.created' ? 'created' : m.data.status));
      const order = ['created', 'running', 'completed'].map((step) => sequence.indexOf(step));
      expect(order.every((i) => i >= 0), JSON.stringify(sequence)).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      const versions = onTasks.map((m) => m.data.version);
      expect([...versions].sort((a, b) => a - b)).toEqual(versions);

      const final = await getTask(user, created.task_id);
      const chunks = socket.messages.filter((m) => m.type === 'task.output' && m.data.task_id === created.task_id);
      expect(chunks.length).toBeGreaterThan(0);
      const seqs = chunks.map((c) => c.data.seq);
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
      expect(chunks.every((c) => c.channel === `task:${created.task_id}`)).toBe(true);
      // Subscribed just after creation: the output seen is the whole output or its end.
      expect(final.result.output.endsWith(chunks.map((c) => c.data.text).join(''))).toBe(true);
    } finally {
      await socket.close();
    }
  });

  it('cancels a running task: the provider call is stopped and the task stays cancelled', async () => {
    const slow = await registerLocalProvider(admin, { chunkDelayMs: 1000 });
    const created = await createTask(user, customTask('A long answer, please', { provider_id: slow }));
    await waitForStatus(user, created.task_id, ['running']);
    const res = await call('POST', `/api/v1/tasks/${created.task_id}/cancel`, { token: user.token, body: { reason: 'changed my mind' } });
    expect(res.status).toBe(200);
    expect(res.body.data.status).toBe('cancelled');
    expect(res.body.data.error).toMatchObject({ code: 'cancelled', message: 'changed my mind' });

    const sessions = await eventually(() => sessionsOf(user, created.task_id), (s) => s.length === 1, 30_000);
    expect(sessions[0]).toMatchObject({ outcome: 'cancelled', response: null });
    const task = await getTask(user, created.task_id);
    expect(task.status).toBe('cancelled');
    expect(task.result).toBeNull();

    const again = await call('POST', `/api/v1/tasks/${created.task_id}/cancel`, { token: user.token });
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('invalid_state');
  });

  it('times an attempt out, retries it with backoff (queued, never failed mid-retry), then fails with the timeout', async () => {
    const slow = await registerLocalProvider(admin, { chunkDelayMs: 1000 });
    const socket = await openSocket('/ws', user.token);
    try {
      socket.send({ action: 'subscribe', channels: ['tasks'] });
      await socket.waitFor((m) => m.type === 'subscribed');
      const created = await createTask(user, customTask('slow answer', { provider_id: slow, timeout_seconds: 1, max_attempts: 2 }));
      const task = await waitForStatus(user, created.task_id, ['failed', 'completed'], 60_000);
      expect(task).toMatchObject({ status: 'failed', attempts: 2, error: { code: 'timeout', retryable: true } });
      const sessions = await sessionsOf(user, created.task_id);
      expect(sessions.map((s) => [s.attempt, s.outcome, s.error?.code])).toEqual([
        [1, 'retrying', 'timeout'],
        [2, 'failed', 'timeout'],
      ]);
      await socket.waitFor((m) => m.data?.task_id === created.task_id && m.data.status === 'failed');
      const statuses = socket.messages.filter((m) => m.type === 'task.updated' && m.data.task_id === created.task_id).map((m) => m.data.status);
      expect(statuses.indexOf('failed')).toBe(statuses.length - 1);
      expect(statuses.slice(statuses.indexOf('running') + 1)).toContain('queued');
      const retryWait = socket.messages.find((m) => m.data?.task_id === created.task_id && m.data.status === 'queued' && m.data.attempts === 1);
      expect(retryWait.data.waiting_reason).toBe('retry_backoff');
      expect(Date.parse(retryWait.data.next_attempt_at)).toBeGreaterThan(Date.parse(retryWait.data.updated_at));
    } finally {
      await socket.close();
    }
  });

  it('fails at once with cost_limit_exceeded when the prompt alone costs more than max_cost_usd', async () => {
    const dear = await registerLocalProvider(admin, { pricing: { input_per_million: 100_000, output_per_million: 100_000 } });
    const created = await createTask(user, customTask('Anything', { provider_id: dear, max_cost_usd: 0.0001 }));
    const task = await waitForStatus(user, created.task_id, ['completed', 'failed']);
    expect(task.status).toBe('failed');
    expect(task.error).toMatchObject({ code: 'cost_limit_exceeded', retryable: false });
    expect(task.attempts).toBe(1);
    expect(task.cost_usd).toBe(0);
  });

  it('stops the call when the streamed output reaches max_cost_usd, and a retry runs it again', async () => {
    const dearOutput = await registerLocalProvider(admin, { pricing: { input_per_million: 1, output_per_million: 100_000 }, chunkDelayMs: 5 });
    const created = await createTask(user, customTask('Write a lot', { provider_id: dearOutput, max_cost_usd: 0.5 }));
    const task = await waitForStatus(user, created.task_id, ['completed', 'failed']);
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('cost_limit_exceeded');
    expect((await sessionsOf(user, created.task_id))[0]).toMatchObject({ outcome: 'failed', error: { code: 'cost_limit_exceeded' } });

    const retried = await call('POST', `/api/v1/tasks/${created.task_id}/retry`, { token: user.token });
    expect(retried.status).toBe(200);
    expect(retried.body.data.attempts).toBe(0);
    expect(['pending', 'queued', 'running']).toContain(retried.body.data.status);
    await eventually(() => sessionsOf(user, created.task_id), (s) => s.length === 2, 30_000);
    expect((await waitForStatus(user, created.task_id, ['failed'])).error.code).toBe('cost_limit_exceeded');
  });

  it('only retries failed or cancelled tasks', async () => {
    const created = await createTask(user, customTask('quick', { provider_id: 'local' }));
    await waitForStatus(user, created.task_id, ['completed']);
    const res = await call('POST', `/api/v1/tasks/${created.task_id}/retry`, { token: user.token });
    expect(res.status).toBe(409);
    expect(res.body.error).toBe('invalid_state');
    const del = await call('DELETE', `/api/v1/tasks/${created.task_id}`, { token: user.token });
    expect(del.status).toBe(200);
    expect((await call('GET', `/api/v1/tasks/${created.task_id}`, { token: user.token })).status).toBe(404);
    expect((await call('GET', `/api/v1/tasks/${created.task_id}/sessions`, { token: user.token })).status).toBe(404);
  });

  describe('a task waiting for quota', () => {
    let agentId: string;
    let waiting: string;

    beforeAll(async () => {
      const provider = await registerLocalProvider(admin);
      agentId = (await createAgent(admin, { provider_id: provider, quota: { window: 'daily', max_requests: 1 }, max_concurrency: 1 })).agent_id;
      const first = await createTask(user, customTask('first', { agent_id: agentId }));
      await waitForStatus(user, first.task_id, ['completed']);
      waiting = (await createTask(user, customTask('second', { agent_id: agentId, priority: 3 }))).task_id;
    });

    it('stays queued with waiting_reason quota until the window resets, and the quota status says so', async () => {
      const task = await eventually(() => getTask(user, waiting), (t) => t.waiting_reason === 'quota');
      expect(task.status).toBe('queued');
      expect(task.attempts).toBe(0);
      const quota = await call('GET', '/api/v1/agents/quota/status', { token: user.token });
      const mine = quota.body.data.agents.find((a: any) => a.agent_id === agentId);
      expect(mine).toMatchObject({ used: { requests: 1 }, remaining: { requests: 0 }, available: false });
      expect(Date.parse(task.next_attempt_at)).toBeGreaterThanOrEqual(Date.parse(mine.resets_at));
      expect(quota.body.data.totals.agents).toBeGreaterThanOrEqual(1);
    });

    it('can be edited while it waits, but not by another user (who cannot see it: 404); an operator may', async () => {
      const other = await sessionAs('user');
      const denied = await call('PATCH', `/api/v1/tasks/${waiting}`, { token: other.token, body: { priority: 9 } });
      expect(denied.status).toBe(404);
      const res = await call('PATCH', `/api/v1/tasks/${waiting}`, { token: user.token, body: { priority: 9, title: 'renamed', tags: ['later'] } });
      expect(res.status).toBe(200);
      expect(res.body.data).toMatchObject({ priority: 9, title: 'renamed', tags: ['later'], status: 'queued' });
      const operator = await sessionAs('operator');
      const cancelled = await call('POST', `/api/v1/tasks/${waiting}/cancel`, { token: operator.token });
      expect(cancelled.status).toBe(200);
      const patchLate = await call('PATCH', `/api/v1/tasks/${waiting}`, { token: user.token, body: { priority: 1 } });
      expect(patchLate.status).toBe(409);
    });
  });

  it('lists with filters, newest first, and pages with a cursor that belongs to its query', async () => {
    const lister = await sessionAs('user');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createTask(lister, customTask(`list ${i}`, { provider_id: 'local', tags: [i % 2 ? 'odd' : 'even'], priority: i + 1 }))).task_id);
    const page1 = await call('GET', `/api/v1/tasks?created_by=${lister.userId}&limit=2`, { token: lister.token });
    expect(page1.status).toBe(200);
    expect(page1.body.data.items.map((t: any) => t.task_id)).toEqual([ids[4], ids[3]]);
    const page2 = await call('GET', `/api/v1/tasks?created_by=${lister.userId}&limit=2&cursor=${encodeURIComponent(page1.body.data.next_cursor)}`, { token: lister.token });
    expect(page2.body.data.items.map((t: any) => t.task_id)).toEqual([ids[2], ids[1]]);
    const foreign = await call('GET', `/api/v1/tasks?limit=2&cursor=${encodeURIComponent(page1.body.data.next_cursor)}`, { token: lister.token });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error).toBe('invalid_cursor');

    const odd = await call('GET', `/api/v1/tasks?created_by=${lister.userId}&tag=odd`, { token: lister.token });
    expect(odd.body.data.items.map((t: any) => t.task_id)).toEqual([ids[3], ids[1]]);
    const p5 = await call('GET', `/api/v1/tasks?created_by=${lister.userId}&priority=5&type=custom`, { token: lister.token });
    expect(p5.body.data.items.map((t: any) => t.task_id)).toEqual([ids[4]]);
    for (const id of ids) await waitForStatus(lister, id, ['completed']);
    const done = await call('GET', `/api/v1/tasks?status=completed&created_by=${lister.userId}&provider_id=local`, { token: lister.token });
    expect(done.body.data.items).toHaveLength(5);
    const byStatus = await call('GET', `/api/v1/tasks?status=completed&limit=100`, { token: lister.token });
    expect(byStatus.body.data.items.every((t: any) => t.status === 'completed')).toBe(true);
    const window = await call('GET', `/api/v1/tasks?created_by=${lister.userId}&created_after=${encodeURIComponent(new Date(Date.parse((await getTask(lister, ids[1])).created_at)).toISOString())}&created_before=${encodeURIComponent((await getTask(lister, ids[3])).created_at)}`, { token: lister.token });
    expect(window.body.data.items.map((t: any) => t.task_id)).toEqual(expect.arrayContaining([ids[3], ids[2], ids[1]]));
    expect(window.body.data.items.map((t: any) => t.task_id)).not.toContain(ids[4]);
  });

  it('executes a task and answers with its result; a batch with per-item results', async () => {
    const one = await call('POST', '/api/v1/providers/execute', { token: user.token, body: customTask('execute me', { provider_id: 'local' }) });
    expect(one.status).toBe(200);
    expect(one.body.data.task).toMatchObject({ status: 'completed', provider_id: 'local' });
    expect(one.body.data.task.result.output).toMatch(/^\[local\]/);

    const slow = await registerLocalProvider(admin, { chunkDelayMs: 300 });
    const pending = await call('POST', '/api/v1/providers/execute', { token: user.token, body: customTask('slow', { provider_id: slow, wait_seconds: 0 }) });
    expect(pending.status).toBe(202);
    expect(['pending', 'queued', 'running']).toContain(pending.body.data.task.status);

    const batch = await call('POST', '/api/v1/providers/execute/batch', {
      token: user.token,
      body: { items: [customTask('b1', { provider_id: 'local' }), customTask('b2', { provider_id: 'local' }), customTask('b3', { provider_id: 'local' })], max_concurrency: 2 },
    });
    expect(batch.status).toBe(200);
    expect(batch.body.data).toMatchObject({ completed: 3, failed: 0, unfinished: 0 });
    expect(batch.body.data.items.map((i: any) => i.index)).toEqual([0, 1, 2]);
    const first = await getTask(user, batch.body.data.items[0].task_id);
    expect(first.batch_id).toBe(batch.body.data.batch_id);
  });

  it('replays a create with the same Idempotency-Key and rejects the key with another body', async () => {
    const key = `tasks-${Date.now()}-${Math.random()}`;
    const body = customTask('idempotent', { provider_id: 'local' });
    const a = await call('POST', '/api/v1/tasks', { token: user.token, body, headers: { 'Idempotency-Key': key } });
    const b = await call('POST', '/api/v1/tasks', { token: user.token, body, headers: { 'Idempotency-Key': key } });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.data.task_id).toBe(a.body.data.task_id);
    const c = await call('POST', '/api/v1/tasks', { token: user.token, body: customTask('another'), headers: { 'Idempotency-Key': key } });
    expect(c.status).toBe(409);
    expect(c.body.error).toBe('idempotency_conflict');
  });
});
