import type { LlmProvider, ProviderRecord } from '../types.js';
import { cliSettingsSchema } from '../model.js';
import { AnthropicProvider } from './anthropic.js';
import { OpenAiProvider } from './openai.js';
import { BedrockProvider } from './bedrock.js';
import { CliProvider } from './cli.js';
import { LocalProvider } from './local.js';

export { AnthropicProvider, OpenAiProvider, BedrockProvider, CliProvider, LocalProvider };
export { LOCAL_MODEL } from './local.js';
export { CLI_PROVIDER_ENV, cliProvidersEnabled } from './cli.js';

export class ProviderConfigError extends Error {}

/**
 * Turns a stored provider (and its API key, read from the secret store by the caller) into a client of
 * the provider's type.
 */
export function createLlmProvider(record: ProviderRecord, options: { apiKey?: string; model?: string } = {}): LlmProvider {
  const settings = (record.settings ?? {}) as Record<string, unknown>;
  const model = options.model ?? record.model;
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  switch (record.type) {
    case 'anthropic':
      if (!options.apiKey) throw new ProviderConfigError(`provider ${record.provider_id} has no API key`);
      return new AnthropicProvider({
        baseUrl: record.base_url,
        apiKey: options.apiKey,
        model,
        maxTokens: num(settings.max_tokens),
        timeoutSeconds: num(settings.timeout_seconds),
      });
    case 'openai':
      return new OpenAiProvider({
        baseUrl: record.base_url,
        apiKey: options.apiKey,
        model,
        maxTokens: num(settings.max_tokens),
        timeoutSeconds: num(settings.timeout_seconds),
      });
    case 'bedrock':
      if (typeof settings.region !== 'string') throw new ProviderConfigError(`provider ${record.provider_id} has no region`);
      return new BedrockProvider({
        region: settings.region,
        endpoint: record.base_url,
        model,
        maxTokens: num(settings.max_tokens),
        timeoutSeconds: num(settings.timeout_seconds),
      });
    case 'cli': {
      const parsed = cliSettingsSchema.safeParse(settings);
      if (!parsed.success) throw new ProviderConfigError(`provider ${record.provider_id} has invalid cli settings`);
      return new CliProvider({ ...parsed.data, model });
    }
    case 'local':
      return new LocalProvider({ chunkDelayMs: num(settings.chunk_delay_ms) });
  }
}
