/**
 * The provider record and its types. The LlmProvider port is in `shared/platform/ports.ts` (re-exported
 * here for the provider types); the adapters (one per provider type) and the registry that turns a
 * stored provider into a client (`createLlmProvider`, `buildLlmClient`) are in `shared/providers/llm/`.
 */
import type { LlmProvider as LlmPort } from '../platform/ports.js';

export type { LlmRequest, LlmResult } from '../platform/ports.js';

export const PROVIDER_TYPES = ['anthropic', 'openai', 'bedrock', 'cli', 'local'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

/** A client of one of the provider types. */
export type LlmProvider = LlmPort<ProviderType>;

/**
 * A failed provider call, classified. Retryable: 429, 5xx, network errors, timeouts. Not retryable:
 * 400/401/403/404, invalid payloads. `message` is the provider's own message (safe to show).
 */
export class ProviderError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    /** Seconds the provider asked us to wait (Retry-After), when it said. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

export interface ProviderPricing {
  /** USD per million input tokens. */
  input_per_million: number;
  /** USD per million output tokens. */
  output_per_million: number;
}

export interface ProviderRecord {
  provider_id: string;
  type: ProviderType;
  name: string;
  base_url?: string;
  model: string;
  /** Reference into the SecretStore; the key itself is never stored in the table nor returned. */
  api_key_ref?: string;
  /** Last four characters, for the masked display. */
  api_key_last4?: string;
  pricing: ProviderPricing;
  capabilities: string[];
  rate_limits?: { requests_per_minute?: number; tokens_per_minute?: number };
  priority: number;
  enabled: boolean;
  /** Type-specific settings: cli command/args/cwd/output cap; bedrock region; etc. */
  settings?: Record<string, unknown>;
  created_by: string;
  created_at: string;
  updated_at: string;
}

export function costUsd(pricing: ProviderPricing, tokensIn: number, tokensOut: number): number {
  return Math.round(((tokensIn * pricing.input_per_million + tokensOut * pricing.output_per_million) / 1_000_000) * 1e8) / 1e8;
}
