import { afterEach, describe, expect, it } from 'vitest';
import type { SecretStore } from '../../../shared/platform/ports.js';
import {
  AnthropicProvider,
  BedrockProvider,
  buildLlmClient,
  CLI_PROVIDER_ENV,
  CliProvider,
  createLlmProvider,
  LocalProvider,
  OpenAiProvider,
  ProviderConfigError,
  type CallGate,
} from '../../../shared/providers/llm/index.js';
import { ProviderError, type ProviderRecord, type ProviderType } from '../../../shared/providers/types.js';

const record = (type: ProviderType, extra: Partial<ProviderRecord> = {}): ProviderRecord => ({
  provider_id: `p-${type}`,
  type,
  name: type,
  model: 'm',
  pricing: { input_per_million: 0, output_per_million: 0 },
  capabilities: [],
  priority: 100,
  enabled: true,
  settings: {},
  created_by: 'u',
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
  ...extra,
});

const secrets = (values: Record<string, string>): SecretStore => ({
  put: async () => 'ref',
  get: async (ref) => {
    if (ref in values) return values[ref];
    throw Object.assign(new Error('gone'), { name: 'ResourceNotFoundException' });
  },
  remove: async () => undefined,
});

const cliEnv = process.env[CLI_PROVIDER_ENV];
afterEach(() => {
  if (cliEnv === undefined) delete process.env[CLI_PROVIDER_ENV];
  else process.env[CLI_PROVIDER_ENV] = cliEnv;
});

describe('LLM client registry', () => {
  it('builds a client of the provider type', () => {
    expect(createLlmProvider(record('anthropic'), { apiKey: 'k' })).toBeInstanceOf(AnthropicProvider);
    expect(createLlmProvider(record('openai'))).toBeInstanceOf(OpenAiProvider);
    expect(createLlmProvider(record('bedrock', { settings: { region: 'eu-west-1' } }))).toBeInstanceOf(BedrockProvider);
    expect(createLlmProvider(record('cli', { settings: { command: 'echo' } }))).toBeInstanceOf(CliProvider);
    expect(createLlmProvider(record('local'))).toBeInstanceOf(LocalProvider);
  });

  it('refuses a stored configuration that cannot make a client', () => {
    expect(() => createLlmProvider(record('anthropic'))).toThrow(ProviderConfigError);
    expect(() => createLlmProvider(record('bedrock'))).toThrow(ProviderConfigError);
    expect(() => createLlmProvider(record('local', { type: 'unknown' as ProviderType }))).toThrow(ProviderConfigError);
  });

  it('reads the key by reference and fails non-retryably when the client cannot be made', async () => {
    const store = secrets({ 'ref-1': 'sk-123' });
    expect(await buildLlmClient(record('anthropic'), { secrets: store, apiKeyRef: 'ref-1' })).toBeInstanceOf(AnthropicProvider);
    await expect(buildLlmClient(record('anthropic'), { secrets: store, apiKeyRef: 'gone' })).rejects.toMatchObject({ code: 'api_key_missing', retryable: false });
    await expect(buildLlmClient(record('anthropic'), { secrets: store })).rejects.toMatchObject({ code: 'provider_misconfigured', retryable: false });
    delete process.env[CLI_PROVIDER_ENV];
    await expect(buildLlmClient(record('cli', { settings: { command: 'echo' } }), { secrets: store })).rejects.toMatchObject({ code: 'cli_disabled', retryable: false });
  });

  it('runs a gate around each completion, and a refusing gate keeps the call from the provider', async () => {
    const seen: string[] = [];
    let refuse = false;
    const gate: CallGate = {
      admit: async () => {
        seen.push('admit');
        if (refuse) throw new ProviderError('provider_rate_limit', 'limited', true, undefined, 5);
      },
      completed: async (result) => {
        seen.push(`completed ${result.tokensIn + result.tokensOut}`);
      },
    };
    const client = await buildLlmClient(record('local', { settings: { chunk_delay_ms: 0 } }), { secrets: secrets({}), gate });
    expect(client.type).toBe('local');
    const result = await client.complete({ model: 'm', prompt: 'hello', signal: new AbortController().signal });
    expect(seen).toEqual(['admit', `completed ${result.tokensIn + result.tokensOut}`]);
    refuse = true;
    await expect(client.complete({ model: 'm', prompt: 'hello', signal: new AbortController().signal })).rejects.toMatchObject({ code: 'provider_rate_limit' });
    expect(seen).toHaveLength(3);
  });
});
