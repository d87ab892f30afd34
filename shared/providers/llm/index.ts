/**
 * The only place LLM clients are built: a registry of one factory per provider type, and
 * `buildLlmClient`, which turns a stored provider (its API key read from the secret store by reference)
 * into a ready client, optionally gated (the provider's configured rate limits).
 */
import type { LlmResult, SecretStore } from '../../platform/ports.js';
import { ProviderError, type LlmProvider, type ProviderRecord, type ProviderType } from '../types.js';
import { cliSettingsSchema } from '../model.js';
import { AnthropicProvider } from './anthropic.js';
import { OpenAiProvider } from './openai.js';
import { BedrockProvider } from './bedrock.js';
import { CliProvider, cliProvidersEnabled, CLI_PROVIDER_ENV } from './cli.js';
import { LocalProvider } from './local.js';

export { AnthropicProvider, OpenAiProvider, BedrockProvider, CliProvider, LocalProvider };
export { LOCAL_MODEL } from './local.js';
export { CLI_PROVIDER_ENV, cliProvidersEnabled, refusedCredentialVariables } from './cli.js';

export class ProviderConfigError extends Error {}

interface FactoryInput {
  record: ProviderRecord;
  settings: Record<string, unknown>;
  model: string;
  apiKey?: string;
}

const num = (v: unknown) => (typeof v === 'number' ? v : undefined);

/** One factory per provider type; a stored configuration that cannot make a client throws ProviderConfigError. */
const FACTORIES: { readonly [T in ProviderType]: (input: FactoryInput) => LlmProvider } = {
  anthropic: ({ record, settings, model, apiKey }) => {
    if (!apiKey) throw new ProviderConfigError(`provider ${record.provider_id} has no API key`);
    return new AnthropicProvider({
      baseUrl: record.base_url,
      apiKey,
      model,
      maxTokens: num(settings.max_tokens),
      timeoutSeconds: num(settings.timeout_seconds),
    });
  },
  openai: ({ record, settings, model, apiKey }) =>
    new OpenAiProvider({
      baseUrl: record.base_url,
      apiKey,
      model,
      maxTokens: num(settings.max_tokens),
      timeoutSeconds: num(settings.timeout_seconds),
    }),
  bedrock: ({ record, settings, model }) => {
    if (typeof settings.region !== 'string') throw new ProviderConfigError(`provider ${record.provider_id} has no region`);
    return new BedrockProvider({
      region: settings.region,
      endpoint: record.base_url,
      model,
      maxTokens: num(settings.max_tokens),
      timeoutSeconds: num(settings.timeout_seconds),
    });
  },
  cli: ({ record, settings, model }) => {
    const parsed = cliSettingsSchema.safeParse(settings);
    if (!parsed.success) throw new ProviderConfigError(`provider ${record.provider_id} has invalid cli settings`);
    return new CliProvider({ ...parsed.data, model });
  },
  local: ({ settings }) => new LocalProvider({ chunkDelayMs: num(settings.chunk_delay_ms) }),
};

/**
 * Turns a stored provider (and its API key, already read from the secret store) into a client of the
 * provider's type.
 */
export function createLlmProvider(record: ProviderRecord, options: { apiKey?: string; model?: string } = {}): LlmProvider {
  const factory = FACTORIES[record.type];
  if (!factory) throw new ProviderConfigError(`provider ${record.provider_id} has an unknown type ${record.type}`);
  return factory({ record, settings: (record.settings ?? {}) as Record<string, unknown>, model: options.model ?? record.model, apiKey: options.apiKey });
}

/** Runs around each completion of a gated client. */
export interface CallGate {
  /** Before the call leaves: throws (a ProviderError) to refuse it without reaching the provider. */
  admit(): Promise<void>;
  /** After the call completed. */
  completed(result: LlmResult): Promise<void>;
}

export interface ClientOptions {
  secrets: SecretStore;
  /** The API key's reference in the secret store (an agent may bring its own). */
  apiKeyRef?: string;
  /** The model to call instead of the provider's (an agent's own). */
  model?: string;
  gate?: CallGate;
}

/**
 * A ready client for the provider. A key that is gone from the secret store, a cli provider while cli
 * providers are disabled, or a stored configuration that cannot make a client fail with a non-retryable
 * ProviderError; a secret store that is down throws its own error.
 */
export async function buildLlmClient(record: ProviderRecord, options: ClientOptions): Promise<LlmProvider> {
  let apiKey: string | undefined;
  if (options.apiKeyRef) {
    try {
      apiKey = await options.secrets.get(options.apiKeyRef);
    } catch (err) {
      if ((err as { name?: string }).name === 'ResourceNotFoundException') {
        throw new ProviderError('api_key_missing', `the API key of provider ${record.provider_id} is no longer in the secret store`, false);
      }
      throw err;
    }
  }
  if (record.type === 'cli' && !cliProvidersEnabled()) {
    throw new ProviderError('cli_disabled', `cli providers are disabled (set ${CLI_PROVIDER_ENV}=true)`, false);
  }
  let client: LlmProvider;
  try {
    client = createLlmProvider(record, { apiKey, model: options.model });
  } catch (err) {
    if (err instanceof ProviderConfigError) throw new ProviderError('provider_misconfigured', err.message, false);
    throw err;
  }
  return options.gate ? gated(client, options.gate) : client;
}

function gated(client: LlmProvider, gate: CallGate): LlmProvider {
  return {
    type: client.type,
    check: (signal) => client.check(signal),
    async complete(request) {
      await gate.admit();
      const result = await client.complete(request);
      await gate.completed(result);
      return result;
    },
  };
}
