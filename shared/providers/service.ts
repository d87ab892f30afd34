/**
 * Providers as the rest of the system uses them: the worker asks which providers are eligible and gets a
 * client for one (built by the registry in llm/index.ts, under the provider's configured rate limits);
 * the provider endpoints register, list and unregister them. Calls recorded, health, status, usage,
 * analytics and recommendations are in status.ts.
 */
import { newUlid } from '../platform/ids.js';
import type { Deps } from '../platform/runtime.js';
import { secretStore } from '../platform/use/secrets.js';
import { ProviderError, type LlmProvider, type ProviderRecord } from './types.js';
import { DEFAULT_CIRCUIT_POLICY, allowsCalls } from './circuit-breaker.js';
import type { RegisterBody } from './model.js';
import { routingOrder } from './routing.js';
import { ProviderExistsError, ProviderRepository } from './repo.js';
import { buildLlmClient, cliProvidersEnabled, CLI_PROVIDER_ENV, LOCAL_MODEL, refusedCredentialVariables, type CallGate } from './llm/index.js';
import { conflict, notFound, validationError } from '../platform/errors.js';
import { logger } from '../platform/logger.js';
import { can, type Principal } from '../platform/principal.js';
import { getConfig } from '../platform/config.js';
import { viewOf } from '../platform/view.js';
import { providerView as providerViewSchema } from './model.js';

export const LOCAL_PROVIDER_ID = 'local';
/** The local provider routes after any provider an admin registers with the default priority (100). */
export const LOCAL_PROVIDER_PRIORITY = 500;

const repo = (deps: Deps) => new ProviderRepository(deps.store);

/** Every registered provider, enabled or not. */
export async function allProviders(deps: Deps): Promise<ProviderRecord[]> {
  return repo(deps).all();
}

/** The provider's circuit breaker as stored. */
export async function providerCircuit(deps: Deps, providerId: string) {
  return repo(deps).circuit(providerId);
}

// ---------------------------------------------------------------------------------------------
// Used by the worker

export async function getProvider(deps: Deps, providerId: string): Promise<ProviderRecord | undefined> {
  return repo(deps).get(providerId);
}

/**
 * A client for the provider. The API key is read from the secret store by reference (an agent may bring
 * its own key and model). A key that is gone or a provider whose stored configuration cannot make a
 * client fail with a non-retryable ProviderError; a secret store that is down throws its own error.
 */
export async function providerClient(
  deps: Deps,
  record: ProviderRecord,
  override?: { model?: string; api_key_ref?: string },
): Promise<LlmProvider> {
  const limits = record.rate_limits;
  return buildLlmClient(record, {
    secrets: secretStore(deps),
    apiKeyRef: override?.api_key_ref ?? record.api_key_ref,
    model: override?.model,
    ...(limits?.requests_per_minute || limits?.tokens_per_minute ? { gate: rateLimitGate(deps, record) } : {}),
  });
}

/** Error code of a call refused here because the provider's configured rate limit is reached. */
export const RATE_LIMITED_LOCALLY = 'provider_rate_limit';

/**
 * Enforces the provider's configured rate limits (requests and tokens per minute, counted in the table
 * so every worker sees the same count) before the call leaves: a call over the limit fails retryable,
 * with the wait until the minute ends, and without reaching the provider.
 */
function rateLimitGate(deps: Deps, record: ProviderRecord): CallGate {
  const providers = repo(deps);
  const limits = record.rate_limits!;
  return {
    async admit() {
      const now = deps.clock.now();
      const window = await providers.countRequestInWindow(record.provider_id, now);
      const wait = Math.max(1, Math.ceil((window.resetAt.getTime() - now.getTime()) / 1000));
      if (limits.requests_per_minute && window.requests > limits.requests_per_minute) {
        throw new ProviderError(RATE_LIMITED_LOCALLY, `provider ${record.provider_id} is limited to ${limits.requests_per_minute} requests per minute`, true, undefined, wait);
      }
      if (limits.tokens_per_minute && window.tokens >= limits.tokens_per_minute) {
        throw new ProviderError(RATE_LIMITED_LOCALLY, `provider ${record.provider_id} is limited to ${limits.tokens_per_minute} tokens per minute`, true, undefined, wait);
      }
    },
    async completed(result) {
      await providers.addTokensInWindow(record.provider_id, result.tokensIn + result.tokensOut, deps.clock.now());
    },
  };
}

/**
 * Providers a task may run on, in routing order (see `routingOrder`: enabled, declaring the capability
 * or none, by priority, the local provider never as a fallback), without those whose circuit is open.
 */
export async function eligibleProviders(deps: Deps, opts: { capability?: string } = {}): Promise<ProviderRecord[]> {
  const routable = routingOrder(await repo(deps).all(), opts.capability);
  if (!routable.length) return [];
  const circuits = await repo(deps).circuits(routable.map((p) => p.provider_id));
  const now = deps.clock.now();
  return routable.filter((p) => allowsCalls(circuits.get(p.provider_id)!, now, DEFAULT_CIRCUIT_POLICY));
}

/** A provider and its circuit breaker, read together. */
export async function providerWithCircuit(deps: Deps, providerId: string) {
  return repo(deps).withCircuit(providerId);
}

export async function isCircuitOpen(deps: Deps, providerId: string): Promise<boolean> {
  return !allowsCalls(await repo(deps).circuit(providerId), deps.clock.now(), DEFAULT_CIRCUIT_POLICY);
}

/** Registers the local provider (id `local`) unless it exists: the local runtime's default. */
export async function ensureLocalProvider(deps: Deps): Promise<void> {
  const at = deps.clock.now().toISOString();
  try {
    await repo(deps).create({
      provider_id: LOCAL_PROVIDER_ID,
      type: 'local',
      name: 'Local deterministic provider (offline, for development)',
      model: LOCAL_MODEL,
      pricing: { input_per_million: 0, output_per_million: 0 },
      capabilities: [],
      priority: LOCAL_PROVIDER_PRIORITY,
      enabled: true,
      settings: {},
      created_by: 'system',
      created_at: at,
      updated_at: at,
    });
  } catch (err) {
    if (!(err instanceof ProviderExistsError)) throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Used by the provider endpoints

export function maskKey(last4: string | undefined): string | null {
  if (last4 === undefined) return null;
  return `****${last4}`;
}

/**
 * A provider as a principal may see it: a `cli` provider's settings (the command it runs, its
 * arguments, the variables it inherits) only for provider managers (others get `{}`).
 */
export function providerView(p: ProviderRecord, principal: Principal) {
  const settingsVisible = p.type !== 'cli' || can(principal, 'providers:manage');
  return viewOf(providerViewSchema, p, { api_key: maskKey(p.api_key_last4), settings: settingsVisible ? (p.settings ?? {}) : {} });
}

/** Keys shorter than this show no characters at all when masked. */
const MIN_KEY_LENGTH_FOR_HINT = 12;

/**
 * Stores the provider; its API key goes to the secret store under a name of its own (so that a
 * registration that loses a race removes only its own secret) and only the reference is kept.
 */
export async function registerProvider(deps: Deps, principal: Principal, providerId: string, body: RegisterBody): Promise<ProviderRecord> {
  if (body.type === 'cli' && !cliProvidersEnabled()) {
    throw validationError([{ path: 'type', message: `cli providers are disabled on this deployment (${CLI_PROVIDER_ENV} is not true)` }]);
  }
  if (body.type === 'cli') {
    const envAllow = (body.settings.env_allow ?? []) as string[];
    const refused = refusedCredentialVariables(envAllow, getConfig().cliEnvAllowCredentials);
    if (refused.length) {
      throw validationError(
        refused.map((name) => ({
          path: `settings.env_allow.${envAllow.indexOf(name)}`,
          message: `${name} looks like a credential (AWS_*, *_SECRET*, *_TOKEN*, *_KEY*) and is not in CLI_ENV_ALLOW_CREDENTIALS`,
        })),
      );
    }
  }
  const providers = repo(deps);
  if (await providers.get(providerId)) throw conflict(`Provider ${providerId} already exists`);
  const apiKey = body.api_key;
  const at = deps.clock.now().toISOString();
  let apiKeyRef: string | undefined;
  if (apiKey !== undefined) apiKeyRef = await secretStore(deps).put(`${providerId}/${newUlid()}`, apiKey);
  const record: ProviderRecord = {
    provider_id: providerId,
    type: body.type,
    name: body.name,
    ...(body.base_url ? { base_url: body.base_url } : {}),
    model: body.model,
    ...(apiKeyRef ? { api_key_ref: apiKeyRef } : {}),
    ...(apiKey !== undefined ? { api_key_last4: apiKey.length >= MIN_KEY_LENGTH_FOR_HINT ? apiKey.slice(-4) : '' } : {}),
    pricing: body.pricing,
    capabilities: body.capabilities,
    ...(body.rate_limits ? { rate_limits: body.rate_limits } : {}),
    priority: body.priority,
    enabled: body.enabled,
    settings: body.settings,
    created_by: principal.userId,
    created_at: at,
    updated_at: at,
  };
  try {
    await providers.create(record);
  } catch (err) {
    if (apiKeyRef) await secretStore(deps).remove(apiKeyRef).catch((e) => logger.error('secret of a provider not registered was not removed', { provider_id: providerId, error: e as Error }));
    if (err instanceof ProviderExistsError) throw conflict(`Provider ${providerId} already exists`);
    throw err;
  }
  return record;
}

/** Deletes the provider and its circuit breaker, then its secret. */
export async function unregisterProvider(deps: Deps, providerId: string): Promise<ProviderRecord> {
  const deleted = await repo(deps).delete(providerId);
  if (!deleted) throw notFound('Provider');
  if (deleted.api_key_ref) {
    await secretStore(deps).remove(deleted.api_key_ref).catch((err) => {
      logger.error('provider secret could not be removed', { provider_id: providerId, error: (err as Error).name });
    });
  }
  return deleted;
}

export async function listProviders(deps: Deps, limit: number, startKey?: Record<string, unknown>, type?: string) {
  return repo(deps).list(limit, startKey, type);
}

export async function requireProvider(deps: Deps, providerId: string): Promise<ProviderRecord> {
  const record = await repo(deps).get(providerId);
  if (!record) throw notFound('Provider');
  return record;
}

