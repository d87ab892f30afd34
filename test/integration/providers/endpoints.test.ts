import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { call, adminSession, userWithRole, openSocket, type Session } from '../../support/client.js';
import { FakeLlmServer } from '../../support/fake-llm.js';
import { recordProviderCall } from '../../../shared/providers/status.js';
import { DEFAULT_CIRCUIT_POLICY } from '../../../shared/providers/circuit-breaker.js';
import { newProviderId, PRICING, storedItem, testDeps } from './support.js';

const API = '/api/v1/providers';
let admin: Session;
let viewer: Session;
let operator: Session;
let fake: FakeLlmServer;
const deps = testDeps();
const created: string[] = [];

/** Test providers rank last (priority 1000) so that tasks routed by priority elsewhere are not sent to them. */
function openaiBody(overrides: Record<string, unknown> = {}) {
  return {
    type: 'openai',
    name: 'Fake OpenAI',
    base_url: fake.openaiBaseUrl,
    model: 'gpt-fake',
    api_key: 'sk-test-0123456789-abcd',
    pricing: PRICING,
    capabilities: ['code_analysis'],
    rate_limits: { requests_per_minute: 60 },
    priority: 1000,
    ...overrides,
  };
}

async function register(id: string, body: Record<string, unknown>) {
  const res = await call('POST', `${API}/${id}/register`, { token: admin.token, body });
  if (res.status === 201) created.push(id);
  return res;
}

beforeAll(async () => {
  admin = await adminSession();
  viewer = await userWithRole('viewer', admin);
  operator = await userWithRole('operator', admin);
  fake = await FakeLlmServer.start();
});

afterAll(async () => {
  for (const id of created) await call('DELETE', `${API}/${id}`, { token: admin.token });
  await fake.close();
});

beforeEach(() => fake.reset());

describe('provider registration and listing', () => {
  it('registers a provider: 201, key masked, key kept out of the table', async () => {
    const id = newProviderId();
    const res = await register(id, openaiBody());
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({
      provider_id: id,
      type: 'openai',
      base_url: fake.openaiBaseUrl,
      model: 'gpt-fake',
      api_key: '****abcd',
      pricing: PRICING,
      capabilities: ['code_analysis'],
      rate_limits: { requests_per_minute: 60 },
      priority: 1000,
      enabled: true,
      created_by: admin.userId,
    });
    expect(JSON.stringify(res.body)).not.toContain('sk-test-0123456789');

    const item = await storedItem(deps, `PROVIDER#${id}`, 'PROVIDER');
    expect(item).toBeDefined();
    expect(JSON.stringify(item)).not.toContain('sk-test-0123456789');
    expect(item!.api_key_ref).toMatch(new RegExp(`^local:secret:${id}/`));

    const one = await call('GET', `${API}/${id}`, { token: viewer.token });
    expect(one.status).toBe(200);
    expect(one.body.data.api_key).toBe('****abcd');
  });

  it('lists providers by priority with a cursor, keys masked', async () => {
    const ids = [newProviderId('list'), newProviderId('list')];
    for (const id of ids) expect((await register(id, openaiBody({ priority: 999 }))).status).toBe(201);
    const seen: any[] = [];
    let cursor: string | null = null;
    do {
      const res: any = await call('GET', `${API}?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token: viewer.token });
      expect(res.status).toBe(200);
      expect(res.body.data.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.data.items);
      cursor = res.body.data.next_cursor;
    } while (cursor);
    const mine = seen.filter((p) => ids.includes(p.provider_id));
    expect(mine.map((p) => p.provider_id).sort()).toEqual([...ids].sort());
    expect(mine.every((p) => p.api_key === '****abcd')).toBe(true);
    const priorities = seen.map((p) => p.priority);
    expect([...priorities].sort((a, b) => a - b)).toEqual(priorities);

    const filtered = await call('GET', `${API}?type=openai&limit=100`, { token: viewer.token });
    expect(filtered.body.data.items.every((p: any) => p.type === 'openai')).toBe(true);
  });

  it('a tampered cursor is a 400', async () => {
    const res = await call('GET', `${API}?cursor=abc.def`, { token: viewer.token });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_cursor');
  });

  it('registers the other types: anthropic, bedrock, local', async () => {
    const anthropic = await register(newProviderId(), {
      type: 'anthropic',
      name: 'Fake Anthropic',
      base_url: fake.anthropicBaseUrl,
      model: 'claude-fake',
      api_key: 'short',
      pricing: PRICING,
      priority: 1000,
      settings: { max_tokens: 1024 },
    });
    expect(anthropic.status).toBe(201);
    expect(anthropic.body.data.api_key).toBe('****');
    const bedrock = await register(newProviderId(), {
      type: 'bedrock',
      name: 'Bedrock',
      model: 'anthropic.claude-3-haiku',
      pricing: PRICING,
      priority: 1000,
      settings: { region: 'eu-west-1' },
    });
    expect(bedrock.status).toBe(201);
    expect(bedrock.body.data).toMatchObject({ api_key: null, settings: { region: 'eu-west-1' } });
    const local = await register(newProviderId(), { type: 'local', name: 'Another local', priority: 1000 });
    expect(local.status).toBe(201);
    expect(local.body.data).toMatchObject({ model: 'local-deterministic', pricing: { input_per_million: 0, output_per_million: 0 } });
  });
});

describe('bad input changes nothing', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['empty body', {}, 'type'],
    ['unknown field', { status: 'enabled' }, 'status'],
    ['unknown type', { type: 'gemini' }, 'type'],
    ['anthropic without key', { type: 'anthropic', api_key: undefined }, 'api_key'],
    ['missing model', { model: undefined }, 'model'],
    ['missing pricing', { pricing: undefined }, 'pricing'],
    ['negative pricing', { pricing: { input_per_million: -1, output_per_million: 1 } }, 'pricing.input_per_million'],
    ['non-http base_url', { base_url: 'file:///etc/passwd' }, 'base_url'],
    ['priority out of range', { priority: 5000 }, 'priority'],
    ['bad capability', { capabilities: ['Not A Slug!'] }, 'capabilities.0'],
    ['unknown setting', { settings: { temperature_override: 2 } }, 'settings.temperature_override'],
    ['bedrock without region', { type: 'bedrock', api_key: undefined, settings: undefined }, 'settings'],
    ['cli while disabled', { type: 'cli', api_key: undefined, base_url: undefined, settings: { command: 'claude' } }, 'type'],
    ['api_key on local', { type: 'local', model: undefined, base_url: undefined }, 'api_key'],
  ];

  it.each(cases)('%s → 422 naming %s, nothing stored', async (_name, change, field) => {
    const id = newProviderId('bad');
    const body = { ...openaiBody(), ...change };
    for (const [k, v] of Object.entries(change)) if (v === undefined) delete (body as Record<string, unknown>)[k];
    if (_name === 'empty body' || _name === 'unknown field') {
      for (const k of Object.keys(body)) if (!(k in change)) delete (body as Record<string, unknown>)[k];
    }
    const res = await register(id, body);
    expect(res.status).toBe(422);
    expect(res.body.error).toBe('validation_error');
    expect(res.body.errors.map((e: any) => e.path)).toContain(field);
    expect(await storedItem(deps, `PROVIDER#${id}`, 'PROVIDER')).toBeUndefined();
    expect((await call('GET', `${API}/${id}`, { token: admin.token })).status).toBe(404);
  });

  it('an invalid or reserved provider id is a 422', async () => {
    for (const id of ['Upper-Case', 'has.dot', '-leading-dash', 'x'.repeat(65), 'status', 'analytics', 'recommendations', 'execute']) {
      const res = await call('POST', `${API}/${encodeURIComponent(id)}/register`, { token: admin.token, body: openaiBody() });
      expect(res.status, id).toBe(422);
      expect(res.body.errors[0].path).toBe('path.provider_id');
    }
  });

  it('a duplicate id is a 409 and leaves the first registration as it was', async () => {
    const id = newProviderId('dup');
    expect((await register(id, openaiBody({ name: 'First' }))).status).toBe(201);
    const again = await register(id, openaiBody({ name: 'Second', api_key: 'sk-second-key-9999' }));
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('conflict');
    const stored = await call('GET', `${API}/${id}`, { token: admin.token });
    expect(stored.body.data).toMatchObject({ name: 'First', api_key: '****abcd' });
  });

  it('a body that is not JSON is a 400, another content type a 415', async () => {
    const id = newProviderId('bad');
    const notJson = await call('POST', `${API}/${id}/register`, { token: admin.token, rawBody: '{"type":', headers: { 'content-type': 'application/json' } });
    expect(notJson.status).toBe(400);
    const text = await call('POST', `${API}/${id}/register`, { token: admin.token, rawBody: 'type=openai', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    expect(await storedItem(deps, `PROVIDER#${id}`, 'PROVIDER')).toBeUndefined();
  });

  it('operators and viewers may not register or delete (403), and nothing is stored', async () => {
    const id = newProviderId('rbac');
    for (const who of [operator, viewer]) {
      const res = await call('POST', `${API}/${id}/register`, { token: who.token, body: openaiBody() });
      expect(res.status).toBe(403);
    }
    expect(await storedItem(deps, `PROVIDER#${id}`, 'PROVIDER')).toBeUndefined();
    const existing = newProviderId('rbac');
    expect((await register(existing, openaiBody())).status).toBe(201);
    expect((await call('DELETE', `${API}/${existing}`, { token: operator.token })).status).toBe(403);
    expect((await call('GET', `${API}/${existing}`, { token: admin.token })).status).toBe(200);
  });

  it('bad query parameters are 422', async () => {
    const id = newProviderId();
    expect((await register(id, openaiBody())).status).toBe(201);
    for (const q of ['days=0', 'days=91', 'days=abc', 'days=1.5']) {
      const res = await call('GET', `${API}/${id}/usage?${q}`, { token: viewer.token });
      expect(res.status, q).toBe(422);
    }
    expect((await call('GET', `${API}/analytics?days=-1`, { token: viewer.token })).status).toBe(422);
    expect((await call('GET', `${API}?limit=0`, { token: viewer.token })).status).toBe(422);
    expect((await call('GET', `${API}?type=gemini`, { token: viewer.token })).status).toBe(422);
  });
});

describe('health, usage, status, analytics', () => {
  it('health makes a live call to the provider with its stored key and reports latency', async () => {
    const id = newProviderId('health');
    expect((await register(id, openaiBody())).status).toBe(201);
    const res = await call('GET', `${API}/${id}/health`, { token: viewer.token });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ provider_id: id, type: 'openai', healthy: true, error: null, circuit: { state: 'closed' } });
    expect(res.body.data.latency_ms).toBeGreaterThanOrEqual(0);
    const listing = fake.requests.find((r) => r.path === '/v1/models');
    expect(listing?.headers.authorization).toBe('Bearer sk-test-0123456789-abcd');
  });

  it("a failed check shows the target's message to provider managers only; others see code and status", async () => {
    const id = newProviderId('health');
    expect((await register(id, openaiBody())).status).toBe(201);
    fake.enqueue({ kind: 'error', status: 401, message: 'Incorrect API key provided' });
    const bad = await call('GET', `${API}/${id}/health`, { token: admin.token });
    expect(bad.status).toBe(200);
    expect(bad.body.data).toMatchObject({
      healthy: false,
      cached: false,
      error: { code: 'authentication_failed', message: 'Incorrect API key provided', status: 401, retryable: false },
    });

    // Within the interval: the last check, not a live one; the viewer does not see the target's words.
    const seen = fake.requests.length;
    const cached = await call('GET', `${API}/${id}/health`, { token: viewer.token });
    expect(cached.status).toBe(200);
    expect(cached.body.data).toMatchObject({
      healthy: false,
      cached: true,
      error: { code: 'authentication_failed', message: null, status: 401, retryable: false },
    });
    expect(fake.requests.length).toBe(seen);
    expect(JSON.stringify(cached.body)).not.toContain('Incorrect API key');

    const status = await call('GET', `${API}/status`, { token: viewer.token });
    const mine = status.body.data.providers.find((p: any) => p.provider_id === id);
    expect(mine.last_check).toMatchObject({ ok: false, error_code: 'authentication_failed', error_message: null });
    expect(mine.health).toBe('unhealthy');
    expect(JSON.stringify(status.body)).not.toContain('Incorrect API key');

    const forAdmin = await call('GET', `${API}/status`, { token: admin.token });
    const adminView = forAdmin.body.data.providers.find((p: any) => p.provider_id === id);
    expect(adminView.last_check).toMatchObject({ error_message: 'Incorrect API key provided' });
  });

  it('live health checks are limited to one per provider per 10 s (the rest get the last check)', async () => {
    const id = newProviderId('health');
    expect((await register(id, openaiBody())).status).toBe(201);
    const answers = await Promise.all(Array.from({ length: 5 }, () => call('GET', `${API}/${id}/health`, { token: viewer.token })));
    const live = answers.filter((r) => r.status === 200 && r.body.data.cached === false);
    expect(live).toHaveLength(1);
    for (const r of answers) expect([200, 429]).toContain(r.status);
    expect(fake.requests.filter((r) => r.path === '/v1/models')).toHaveLength(1);
  });

  it('health of an unreachable provider is reported, not thrown', async () => {
    const down = await FakeLlmServer.start();
    const url = down.openaiBaseUrl;
    await down.close();
    const id = newProviderId('down');
    expect((await register(id, openaiBody({ base_url: url }))).status).toBe(201);
    const res = await call('GET', `${API}/${id}/health`, { token: viewer.token });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ healthy: false, error: { code: 'network_error', retryable: true } });
  });

  it('unknown providers are 404 on every per-provider route', async () => {
    const id = newProviderId('missing');
    for (const [method, path] of [
      ['GET', `${API}/${id}`],
      ['GET', `${API}/${id}/health`],
      ['GET', `${API}/${id}/usage`],
      ['DELETE', `${API}/${id}`],
    ] as const) {
      const res = await call(method, path, { token: admin.token });
      expect(res.status, `${method} ${path}`).toBe(404);
    }
  });

  it('usage, status and analytics are computed from the recorded calls', async () => {
    const id = newProviderId('usage');
    expect((await register(id, openaiBody())).status).toBe(201);
    await recordProviderCall(deps, { providerId: id, ok: true, latencyMs: 200, tokensIn: 1000, tokensOut: 500, costUsd: 0.0105 });
    await recordProviderCall(deps, { providerId: id, ok: true, latencyMs: 400, tokensIn: 2000, tokensOut: 100, costUsd: 0.0075 });
    await recordProviderCall(deps, { providerId: id, ok: false, latencyMs: 50, tokensIn: 0, tokensOut: 0, costUsd: 0, errorCode: 'rate_limited', retryable: true });

    const usage = await call('GET', `${API}/${id}/usage?days=3`, { token: viewer.token });
    expect(usage.status).toBe(200);
    const { by_day, totals } = usage.body.data;
    expect(by_day).toHaveLength(3);
    expect(by_day.slice(0, 2).every((d: any) => d.requests === 0 && d.success_rate === null)).toBe(true);
    const expected = {
      requests: 3,
      successes: 2,
      failures: 1,
      tokens_in: 3000,
      tokens_out: 600,
      cost_usd: 0.018,
      avg_latency_ms: 300,
      success_rate: 0.6667,
      errors_by_code: { rate_limited: 1 },
    };
    expect(by_day[2]).toMatchObject(expected);
    expect(totals).toMatchObject(expected);
    expect(totals.p50_latency_ms).toBe(250);
    expect(totals.p95_latency_ms).toBe(475); // interpolated: 90 % into (250, 500]

    const status = await call('GET', `${API}/status`, { token: viewer.token });
    expect(status.status).toBe(200);
    const mine = status.body.data.providers.find((p: any) => p.provider_id === id);
    expect(mine).toMatchObject({ circuit: { state: 'closed', consecutive_failures: 1 }, recent: { ...expected, window_hours: 24 } });
    expect(mine.health).toBe('healthy');
    expect(status.body.data.summary.total).toBe(status.body.data.providers.length);

    const analytics = await call('GET', `${API}/analytics?days=1`, { token: viewer.token });
    expect(analytics.status).toBe(200);
    const row = analytics.body.data.providers.find((p: any) => p.provider_id === id);
    expect(row).toMatchObject({ ...expected, registered: true, name: 'Fake OpenAI', type: 'openai' });
    expect(analytics.body.data.totals.requests).toBeGreaterThanOrEqual(3);
    expect(analytics.body.data.rankings.by_requests.some((r: any) => r.provider_id === id && r.value === 3)).toBe(true);
    expect(analytics.body.data.rankings.by_cost_per_success_usd.find((r: any) => r.provider_id === id).value).toBe(0.009);
    const today = analytics.body.data.by_day.at(-1);
    expect(today.requests).toBeGreaterThanOrEqual(3);
  });

  it('the circuit opens after repeated retryable failures: status shows it, WebSocket subscribers hear of it', async () => {
    const id = newProviderId('breaker');
    expect((await register(id, openaiBody())).status).toBe(201);
    const socket = await openSocket('/ws', viewer.token);
    try {
      socket.send({ action: 'subscribe', channels: ['providers'] });
      await socket.waitFor((m) => m.type === 'subscribed');
      for (let i = 0; i < DEFAULT_CIRCUIT_POLICY.consecutiveFailures; i++) {
        await recordProviderCall(deps, { providerId: id, ok: false, latencyMs: 10, tokensIn: 0, tokensOut: 0, costUsd: 0, errorCode: 'server_error', retryable: true });
      }
      const event = await socket.waitFor((m) => m.type === 'provider.health_changed' && m.data.provider_id === id);
      expect(event).toMatchObject({ channel: 'providers', data: { from: 'closed', to: 'open', consecutive_failures: 5 } });
      expect(event.data.retry_at).toBeTruthy();

      const status = await call('GET', `${API}/status`, { token: viewer.token });
      const mine = status.body.data.providers.find((p: any) => p.provider_id === id);
      expect(mine).toMatchObject({ health: 'unhealthy', circuit: { state: 'open', last_error_code: 'server_error' } });
      expect(mine.circuit.reason).toContain('5 consecutive failures');
    } finally {
      await socket.close();
    }
  });
});

describe('recommendations', () => {
  it('ranks registered providers with the score broken down, against the constraints', async () => {
    const cheap = newProviderId('reco');
    const pricy = newProviderId('reco');
    const capability = `cap-${cheap.slice(-8)}`;
    expect((await register(cheap, openaiBody({ capabilities: [capability], pricing: { input_per_million: 0.5, output_per_million: 1 } }))).status).toBe(201);
    expect((await register(pricy, openaiBody({ capabilities: [capability], pricing: { input_per_million: 15, output_per_million: 75 } }))).status).toBe(201);
    for (let i = 0; i < 4; i++) await recordProviderCall(deps, { providerId: pricy, ok: true, latencyMs: 300, tokensIn: 10, tokensOut: 10, costUsd: 0.001 });

    const res = await call('POST', `${API}/recommendations`, {
      token: viewer.token,
      // General-purpose providers registered by other files also qualify: ask for the whole ranking.
      body: { capability, constraints: { max_cost_usd: 0.01 }, expected_tokens: { input: 1000, output: 1000 }, limit: 50 },
    });
    expect(res.status).toBe(200);
    const { recommendations, basis } = res.body.data;
    const mine = recommendations.filter((r: any) => [cheap, pricy].includes(r.provider_id));
    expect(mine.map((r: any) => r.provider_id)).toEqual([cheap, pricy]);
    expect(mine[0]).toMatchObject({ meets_constraints: true, estimated_cost_usd: 0.0015, breakdown: { success_rate: { source: 'prior', samples: 0 } } });
    expect(mine[1]).toMatchObject({ meets_constraints: false, estimated_cost_usd: 0.09, breakdown: { success_rate: { source: 'observed', samples: 4 }, latency: { source: 'observed', value: 300 } } });
    expect(mine[1].violations[0]).toContain('max_cost_usd');
    expect(basis).toMatchObject({ capability, expected_tokens: { input: 1000, output: 1000 }, priors: { success_rate: 0.9 } });
  });

  it('bad input is a 422', async () => {
    for (const body of [{ nonsense: true }, { constraints: { max_cost_usd: -1 } }, { constraints: { min_success_rate: 2 } }, { task_type: 'poetry' }, { expected_tokens: { input: 1 } }]) {
      const res = await call('POST', `${API}/recommendations`, { token: viewer.token, body });
      expect(res.status, JSON.stringify(body)).toBe(422);
    }
  });
});

describe('static segments win over {provider_id}', () => {
  it('GET /providers/status and /providers/analytics are served as such, not as a provider id', async () => {
    const status = await call('GET', `${API}/status`, { token: viewer.token });
    expect(status.status).toBe(200);
    expect(status.body.data).toHaveProperty('summary');
    const analytics = await call('GET', `${API}/analytics`, { token: viewer.token });
    expect(analytics.status).toBe(200);
    expect(analytics.body.data).toHaveProperty('rankings');
  });

  it('POST /providers/recommendations is the ranking, and /providers/execute is not a provider route', async () => {
    const reco = await call('POST', `${API}/recommendations`, { token: viewer.token, body: {} });
    expect(reco.status).toBe(200);
    expect(reco.body.data).toHaveProperty('recommendations');
    const execute = await call('POST', `${API}/execute`, { token: viewer.token, body: {} });
    expect(execute.body?.errors?.some((e: any) => e.path === 'path.provider_id') ?? false).toBe(false);
  });
});

describe('unregister', () => {
  it('deletes the provider; a second delete is a 404; the id can be registered again', async () => {
    const id = newProviderId('del');
    expect((await register(id, openaiBody())).status).toBe(201);
    const res = await call('DELETE', `${API}/${id}`, { token: admin.token });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ provider_id: id, deleted: true });
    expect(await storedItem(deps, `PROVIDER#${id}`, 'PROVIDER')).toBeUndefined();
    expect(await storedItem(deps, `PROVIDER#${id}`, 'CIRCUIT')).toBeUndefined();
    expect((await call('DELETE', `${API}/${id}`, { token: admin.token })).status).toBe(404);
    expect((await register(id, openaiBody({ name: 'Again' }))).status).toBe(201);
  });
});
