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
