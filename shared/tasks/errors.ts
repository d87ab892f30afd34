import { ProviderError } from '../providers/types.js';
import type { TaskError } from './model.js';

/** An attempt's failure, classified: retryable ones go back to the queue, the others fail the task at once. */
export interface AttemptFailure extends TaskError {
  retryAfterSeconds?: number;
}

/** Errors the execution path raises itself (not a provider's answer). */
export const TASK_ERRORS = {
  costLimit: 'cost_limit_exceeded',
  noAgent: 'no_agent',
  agentDisabled: 'agent_disabled',
  providerUnavailable: 'provider_unavailable',
  workerLost: 'worker_lost',
  deadLettered: 'dead_lettered',
  cancelled: 'cancelled',
  internal: 'internal_error',
} as const;

export function failure(code: string, message: string, retryable: boolean, retryAfterSeconds?: number): AttemptFailure {
  return { code, message, retryable, ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) };
}

/**
 * A provider's error keeps its code, message and class (the adapters classify: 429/5xx/network/timeout
 * retryable; 400/401/403 not). Anything else is our own fault: retryable (it may be a passing outage of
 * a dependency) and reported without its exception text.
 */
export function classify(err: unknown): AttemptFailure {
  if (err instanceof ProviderError) return failure(err.code, err.message, err.retryable, err.retryAfterSeconds);
  const e = err as { name?: string };
  if (e?.name === 'ProviderError' && typeof (err as ProviderError).retryable === 'boolean') {
    const p = err as ProviderError;
    return failure(p.code, p.message, p.retryable, p.retryAfterSeconds);
  }
  return failure(TASK_ERRORS.internal, 'The attempt failed because of an internal error', true);
}

export const toTaskError = (f: AttemptFailure): TaskError => ({ code: f.code, message: f.message, retryable: f.retryable });
