import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { call, adminSession, openSocket, eventually, type Session } from '../../support/client.js';
import { FakeLlmServer } from '../../support/fake-llm.js';
import { costUsd } from '../../../shared/providers/types.js';
import { newProviderId, PRICING } from './support.js';

/**
 * Tasks run end to end in the local runtime on providers registered against local servers that speak
 * the OpenAI and Anthropic wire formats: the worker calls them, streams their output to WebSocket
 * subscribers, retries what is retryable and fails what is not, with the provider's own message.
 */
let admin: Session;
let fake: FakeLlmServer;
const created: string[] = [];

function gate() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

async function registerProvider(type: 'openai' | 'anthropic'): Promise<string> {
  const id = newProviderId(`e2e-${type}`);
  const body =
    type === 'openai'
      ? { type, name: 'Fake OpenAI', base_url: fake.openaiBaseUrl, model: 'gpt-fake', api_key: 'sk-e2e-openai-key-1234', pricing: PRICING, priority: 1000 }
      : { type, name: 'Fake Anthropic', base_url: fake.anthropicBaseUrl, model: 'claude-fake', api_key: 'sk-e2e-anthropic-key-5678', pricing: PRICING, priority: 1000 };
  const res = await call('POST', `/api/v1/providers/${id}/register`, { token: admin.token, body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  created.push(id);
  return id;
}

async function createTask(providerId: string, prompt: string, extra: Record<string, unknown> = {}) {
  const res = await call('POST', '/api/v1/tasks', {
    token: admin.token,
    body: { type: 'custom', title: 'provider e2e', payload: { prompt }, provider_id: providerId, ...extra },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.data.task_id as string;
}

const getTask = async (id: string): Promise<any> => (await call('GET', `/api/v1/tasks/${id}`, { token: admin.token })).body.data;
const finished = (t: any): boolean => ['completed', 'failed', 'cancelled'].includes(t.status);

beforeAll(async () => {
  admin = await adminSession();
  fake = await FakeLlmServer.start();
});

afterAll(async () => {
  for (const id of created) await call('DELETE', `/api/v1/providers/${id}`, { token: admin.token });
  await fake.close();
});

beforeEach(() => fake.reset());

describe.each(['openai', 'anthropic'] as const)('a task on a provider speaking the %s wire format', (type) => {
  it('completes with the provider output, streamed to a task:<id> subscriber in order', async () => {
    const providerId = await registerProvider(type);
    const release = gate();
    const chunks = ['Alpha ', 'beta ', 'gamma ', 'delta.'];
    fake.enqueue({ chunks, usage: { input: 30, output: 6 }, chunkDelayMs: 150, gate: release.promise });

    const taskId = await createTask(providerId, `Summarise the ${type} change`);
    const socket = await openSocket('/ws', admin.token);
    try {
      socket.send({ action: 'subscribe', channels: [`task:${taskId}`] });
      await socket.waitFor((m) => m.type === 'subscribed');
      await eventually(async () => fake.completions.length, (n) => n === 1);
      release.open();

      const task = await eventually(() => getTask(taskId), finished);
      expect(task).toMatchObject({ status: 'completed', provider_id: providerId, tokens_in: 30, tokens_out: 6, error: null });
      expect(task.result.output).toBe(chunks.join(''));
      expect(task.cost_usd).toBeCloseTo(costUsd(PRICING, 30, 6), 8);

      const done = await socket.waitFor((m) => m.type === 'task.updated' && m.data.status === 'completed');
      const outputs = socket.messages.filter((m) => m.type === 'task.output');
      expect(outputs.length).toBeGreaterThan(0);
      expect(outputs.map((m) => m.data.seq)).toEqual(outputs.map((_, i) => i));
      expect(outputs.map((m) => m.data.text).join('')).toBe(chunks.join(''));
      expect(socket.messages.indexOf(outputs[0])).toBeLessThan(socket.messages.indexOf(done));
    } finally {
      await socket.close();
    }

    const [sent] = fake.completions;
    expect(sent.body.stream).toBe(true);
    expect(JSON.stringify(sent.body.messages)).toContain(`Summarise the ${type} change`);
    if (type === 'openai') expect(sent.headers.authorization).toBe('Bearer sk-e2e-openai-key-1234');
    else expect(sent.headers['x-api-key']).toBe('sk-e2e-anthropic-key-5678');

    const usage = await call('GET', `/api/v1/providers/${providerId}/usage?days=1`, { token: admin.token });
    expect(usage.body.data.totals).toMatchObject({ requests: 1, successes: 1, tokens_in: 30, tokens_out: 6 });
  });

  it('429 then success: the task is retried and completes', async () => {
    const providerId = await registerProvider(type);
    fake.enqueue(
      { kind: 'error', status: 429, message: 'Rate limit reached', errorType: 'rate_limit_error', headers: { 'retry-after': '1' } },
      { reply: 'Recovered answer', usage: { input: 5, output: 3 } },
    );
    const taskId = await createTask(providerId, 'Try twice', { max_attempts: 3 });
    const task = await eventually(() => getTask(taskId), finished, 60_000);
    expect(task).toMatchObject({ status: 'completed', attempts: 2 });
    expect(task.result.output).toBe('Recovered answer');
    expect(fake.completions).toHaveLength(2);

    const sessions = (await call('GET', `/api/v1/tasks/${taskId}/sessions`, { token: admin.token })).body.data.items;
    const byAttempt = [...sessions].sort((a: any, b: any) => a.attempt - b.attempt);
    expect(byAttempt.map((s: any) => s.outcome)).toEqual(['retrying', 'completed']);
    expect(byAttempt[0].error).toMatchObject({ code: 'rate_limited', retryable: true, message: 'Rate limit reached' });

    const usage = await call('GET', `/api/v1/providers/${providerId}/usage?days=1`, { token: admin.token });
    expect(usage.body.data.totals).toMatchObject({ requests: 2, successes: 1, failures: 1, errors_by_code: { rate_limited: 1 } });
  });

  it("401 fails at once, without a retry, with the provider's message", async () => {
    const providerId = await registerProvider(type);
    fake.enqueue({ kind: 'error', status: 401, message: 'Incorrect API key provided', errorType: 'authentication_error' });
    const taskId = await createTask(providerId, 'Will not authenticate', { max_attempts: 3 });
    const task = await eventually(() => getTask(taskId), finished, 60_000);
    expect(task).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'authentication_failed', retryable: false } });
    expect(task.error.message).toContain('Incorrect API key provided');
    expect(fake.completions).toHaveLength(1);
  });
});
