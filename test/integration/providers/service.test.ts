import { beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../../shared/platform/runtime.js';
import { ManualClock, LocalSecretStore } from '../../../shared/platform/local/index.js';
import {
  eligibleProviders,
  ensureLocalProvider,
  getProvider,
  isCircuitOpen,
  providerClient,
  registerProvider,
  unregisterProvider,
  LOCAL_PROVIDER_ID,
  RATE_LIMITED_LOCALLY,
} from '../../../shared/providers/service.js';
import { recordProviderCall } from '../../../shared/providers/status.js';
import { registerBody } from '../../../shared/providers/model.js';
import { DEFAULT_CIRCUIT_POLICY } from '../../../shared/providers/circuit-breaker.js';
import { ProviderError } from '../../../shared/providers/types.js';
import { ProviderRepository } from '../../../shared/providers/repo.js';
import { FakeLlmServer } from '../../support/fake-llm.js';
import { isolatedDeps, PRICING } from './support.js';
import type { Principal } from '../../../shared/platform/principal.js';

/** The provider service on a table of its own, so that every provider in it is one this file made. */
const principal: Principal = { userId: '01JD0000000000000000000000', username: 'tester', roles: ['admin'], permissions: [], sessionId: 's' };
const clock = new ManualClock('2026-01-08T12:00:00.000Z');
const secrets = new LocalSecretStore(null);
let deps: Deps;

const body = (over: Record<string, unknown>) =>
  registerBody.parse({ type: 'openai', name: 'p', base_url: 'http://127.0.0.1:9/v1', model: 'm', pricing: PRICING, ...over });

async function failures(id: string, n: number) {
  for (let i = 0; i < n; i++) {
    await recordProviderCall(deps, { providerId: id, ok: false, latencyMs: 5, tokensIn: 0, tokensOut: 0, costUsd: 0, errorCode: 'server_error', retryable: true });
  }
}

beforeAll(async () => {
  deps = await isolatedDeps({ clock, secrets });
});

describe('provider service', () => {
  it('ensureLocalProvider registers `local` once (idempotent)', async () => {
    await ensureLocalProvider(deps);
    await ensureLocalProvider(deps);
    const local = await getProvider(deps, LOCAL_PROVIDER_ID);
    expect(local).toMatchObject({ type: 'local', model: 'local-deterministic', enabled: true, created_by: 'system' });
    const client = await providerClient(deps, local!);
    const result = await client.complete({ model: local!.model, prompt: 'hello', signal: new AbortController().signal });
    expect(result.output.startsWith('[local]')).toBe(true);
    expect(await eligibleProviders(deps)).toEqual([local]);
  });

  it('routes by priority; the circuit excludes a failing provider; local is never the fallback', async () => {
    await registerProvider(deps, principal, 'primary', body({ priority: 10 }));
    await registerProvider(deps, principal, 'secondary', body({ priority: 20 }));
    await registerProvider(deps, principal, 'specialist', body({ priority: 5, capabilities: ['security_audit'] }));
    await registerProvider(deps, principal, 'switched-off', body({ priority: 1, enabled: false }));
    const ids = async (capability?: string) => (await eligibleProviders(deps, { capability })).map((p) => p.provider_id);

    expect(await ids()).toEqual(['specialist', 'primary', 'secondary']);
    expect(await ids('security_audit')).toEqual(['specialist', 'primary', 'secondary']);
    expect(await ids('testing')).toEqual(['primary', 'secondary']);

    await failures('primary', DEFAULT_CIRCUIT_POLICY.consecutiveFailures);
    expect(await isCircuitOpen(deps, 'primary')).toBe(true);
    expect(await ids('testing')).toEqual(['secondary']);

    await failures('secondary', DEFAULT_CIRCUIT_POLICY.consecutiveFailures);
    expect(await ids('testing')).toEqual([]); // not `local`: it never stands in for a failing provider

    clock.advance(DEFAULT_CIRCUIT_POLICY.cooldownSeconds * 1000);
    expect(await isCircuitOpen(deps, 'primary')).toBe(false); // half-open: one trial is let through
    await recordProviderCall(deps, { providerId: 'primary', ok: true, latencyMs: 100, tokensIn: 1, tokensOut: 1, costUsd: 0 });
    const circuit = await new ProviderRepository(deps.store).circuit('primary');
    expect(circuit).toMatchObject({ state: 'closed', consecutive_failures: 0 });
    expect(await ids('testing')).toEqual(['primary', 'secondary']);

    for (const id of ['primary', 'secondary', 'specialist', 'switched-off']) await unregisterProvider(deps, id);
    expect(await ids()).toEqual([LOCAL_PROVIDER_ID]);
  });

  it('concurrent calls lose no usage and no breaker outcome', async () => {
    await registerProvider(deps, principal, 'busy', body({ priority: 900 }));
    const calls = Array.from({ length: 20 }, (_, i) =>
      recordProviderCall(deps, { providerId: 'busy', ok: i % 4 !== 0, latencyMs: 100 + i, tokensIn: 10, tokensOut: 5, costUsd: 0.001, errorCode: 'rate_limited', retryable: true }),
    );
    await Promise.all(calls);
    const repo = new ProviderRepository(deps.store);
    const [day] = await repo.usageByDay('busy', '2026-01-08', '2026-01-08');
    expect(day.item).toMatchObject({ requests: 20, successes: 15, failures: 5, tokens_in: 200, tokens_out: 100, err_rate_limited: 5 });
    expect(Number(day.item.cost_usd)).toBeCloseTo(0.02, 10);
    const circuit = await repo.circuit('busy');
    expect(circuit.window_calls).toBe(20);
    expect(circuit.window_failures).toBe(5);
    await unregisterProvider(deps, 'busy');
  });

  it('a healthy busy provider: concurrent successes are all counted without contending for the breaker', async () => {
    await registerProvider(deps, principal, 'healthy-busy', body({ priority: 900 }));
    await recordProviderCall(deps, { providerId: 'healthy-busy', ok: true, latencyMs: 10, tokensIn: 1, tokensOut: 1, costUsd: 0 });
    const repo = new ProviderRepository(deps.store);
    const first = await repo.circuit('healthy-busy');
    await Promise.all(
      Array.from({ length: 30 }, () => recordProviderCall(deps, { providerId: 'healthy-busy', ok: true, latencyMs: 10, tokensIn: 1, tokensOut: 1, costUsd: 0 })),
    );
    const after = await repo.circuit('healthy-busy');
    expect(after).toMatchObject({ state: 'closed', window_calls: 31, window_failures: 0, version: first.version });
    await recordProviderCall(deps, { providerId: 'healthy-busy', ok: false, latencyMs: 10, tokensIn: 0, tokensOut: 0, costUsd: 0, errorCode: 'timeout', retryable: true });
    expect(await repo.circuit('healthy-busy')).toMatchObject({ consecutive_failures: 1, window_calls: 32, window_failures: 1, version: first.version + 1 });
    await unregisterProvider(deps, 'healthy-busy');
  });

  it('keeps the API key in the secret store only, reads it for the client, removes it on unregister', async () => {
    const fake = await FakeLlmServer.start();
    try {
      const record = await registerProvider(deps, principal, 'keyed', body({ base_url: fake.openaiBaseUrl, api_key: 'sk-keyed-secret-0000' }));
      expect(record.api_key_ref).toBeDefined();
      expect(await secrets.get(record.api_key_ref!)).toBe('sk-keyed-secret-0000');
      const stored = await getProvider(deps, 'keyed');
      expect(JSON.stringify(stored)).not.toContain('sk-keyed-secret');

      await (await providerClient(deps, stored!)).complete({ model: stored!.model, prompt: 'x', signal: new AbortController().signal });
      expect(fake.completions[0].headers.authorization).toBe('Bearer sk-keyed-secret-0000');

      // An agent with its own key and model.
      const agentKey = await secrets.put('agent-key', 'sk-agent-own-key');
      await (await providerClient(deps, stored!, { api_key_ref: agentKey, model: 'agent-model' })).complete({ model: 'agent-model', prompt: 'y', signal: new AbortController().signal });
      expect(fake.completions[1].headers.authorization).toBe('Bearer sk-agent-own-key');
      expect(fake.completions[1].body.model).toBe('agent-model');

      await unregisterProvider(deps, 'keyed');
      await expect(secrets.get(record.api_key_ref!)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
      const err = await providerClient(deps, stored!).catch((e) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ code: 'api_key_missing', retryable: false });
    } finally {
      await fake.close();
    }
  });

  it('a registration that loses to an existing id stores no secret', async () => {
    await registerProvider(deps, principal, 'taken', body({ api_key: 'sk-first-000000000' }));
    const before = (await new ProviderRepository(deps.store).get('taken'))!;
    await expect(registerProvider(deps, principal, 'taken', body({ api_key: 'sk-second-00000000' }))).rejects.toMatchObject({ kind: 'conflict', code: 'conflict' });
    const after = (await new ProviderRepository(deps.store).get('taken'))!;
    expect(after).toEqual(before);
    expect(await secrets.get(after.api_key_ref!)).toBe('sk-first-000000000');
    await unregisterProvider(deps, 'taken');
  });

  it('enforces the configured rate limits before the call leaves, per minute, without counting refusals as provider failures', async () => {
    const fake = await FakeLlmServer.start();
    try {
      const call = (client: Awaited<ReturnType<typeof providerClient>>) =>
        client.complete({ model: 'm', prompt: 'x', signal: new AbortController().signal }).then(
          () => 'ok',
          (e: ProviderError) => e,
        );
      clock.set('2026-01-08T13:00:10.000Z');
      const rpm = await registerProvider(deps, principal, 'rpm-limited', body({ base_url: fake.openaiBaseUrl, rate_limits: { requests_per_minute: 2 } }));
      const client = await providerClient(deps, rpm);
      expect(await call(client)).toBe('ok');
      expect(await call(client)).toBe('ok');
      const refused = await call(client);
      expect(refused).toBeInstanceOf(ProviderError);
      expect(refused).toMatchObject({ code: RATE_LIMITED_LOCALLY, retryable: true, retryAfterSeconds: 50 });
      expect(fake.completions).toHaveLength(2);
      await recordProviderCall(deps, { providerId: 'rpm-limited', ok: false, latencyMs: 0, tokensIn: 0, tokensOut: 0, costUsd: 0, errorCode: RATE_LIMITED_LOCALLY, retryable: true });
      expect(await new ProviderRepository(deps.store).usageByDay('rpm-limited', '2026-01-08', '2026-01-08')).toEqual([]);
      expect((await new ProviderRepository(deps.store).circuit('rpm-limited')).consecutive_failures).toBe(0);
      clock.advance(60_000);
      expect(await call(client)).toBe('ok');

      fake.reset();
      fake.enqueue({ reply: 'abc', usage: { input: 8, output: 4 } });
      const tpm = await registerProvider(deps, principal, 'tpm-limited', body({ base_url: fake.openaiBaseUrl, rate_limits: { tokens_per_minute: 10 } }));
      const tokenClient = await providerClient(deps, tpm);
      expect(await call(tokenClient)).toBe('ok');
      expect(await call(tokenClient)).toMatchObject({ code: RATE_LIMITED_LOCALLY, message: 'provider tpm-limited is limited to 10 tokens per minute' });
      expect(fake.completions).toHaveLength(1);
      await unregisterProvider(deps, 'rpm-limited');
      await unregisterProvider(deps, 'tpm-limited');
    } finally {
      await fake.close();
    }
  });
});
