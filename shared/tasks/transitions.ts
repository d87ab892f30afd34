import { ProviderError } from '../providers/types.js';
import type { TaskError } from './model.js';
import type { TaskStatus } from './status.js';

/**
 * The task state machine: which status may follow which, how a failed attempt is classified and
 * retried. Every transition is a conditional write on the task as it was read.
 *
 * pending: stored, not yet handed to the queue; queued: a message is (or will be, after a delay) on the
 * queue; running: a worker holds its lease; completed / failed / cancelled: terminal until a manual retry.
 * running → queued is a retry after a retryable error (never `failed` mid-retry).
 */
export const TRANSITIONS: Record<TaskStatus, readonly TaskStatus[]> = {
  pending: ['queued', 'running', 'cancelled', 'failed'],
  queued: ['running', 'cancelled', 'failed', 'queued'],
  running: ['completed', 'failed', 'queued', 'cancelled'],
  completed: [],
  failed: ['pending'],
  cancelled: ['pending'],
};

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export const canCancel = (s: TaskStatus) => canTransition(s, 'cancelled');
export const canRetry = (s: TaskStatus) => canTransition(s, 'pending');

// ---------------------------------------------------------------- failures

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

// ---------------------------------------------------------------- timing

/**
 * Retry timing. Exponential backoff with "equal jitter" (half fixed, half random), so that tasks that
 * failed together (a provider's 429 burst) do not come back together; a provider's Retry-After is a
 * floor. SQS cannot delay a message longer than 900 s, which caps every single wait.
 */
export const BACKOFF_BASE_SECONDS = 2;
export const BACKOFF_CAP_SECONDS = 300;
export const MAX_QUEUE_DELAY_SECONDS = 900;

export function backoffSeconds(attempt: number, random: () => number = Math.random, retryAfterSeconds?: number): number {
  const exponential = Math.min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** Math.max(0, attempt - 1));
  const jittered = exponential / 2 + random() * (exponential / 2);
  return Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(retryAfterSeconds ?? 0, jittered));
}

/**
 * Delay before trying again when every agent is busy (concurrency), out of quota, or its provider's
 * circuit is open. A quota wait ends when the window resets, a provider wait when the breaker lets a
 * trial call through; higher-priority tasks come back first (priority 10 at once, 1 last), spread
 * by jitter so a reset does not start a stampede.
 */
export function waitSeconds(reason: 'quota' | 'concurrency' | 'provider', priority: number, untilMs: number | undefined, nowMs: number, random: () => number = Math.random): number {
  const priorityOffset = (10 - priority) * 0.5;
  if (reason !== 'concurrency' && untilMs !== undefined) {
    return Math.max(0, (untilMs - nowMs) / 1000) + priorityOffset + random() * 2;
  }
  return 1 + priorityOffset / 2 + random() * 2;
}

/** The part of a wait one queue message can cover; the worker sends the rest again when it arrives early. */
export function queueDelay(seconds: number): number {
  return Math.max(0, Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil(seconds)));
}
