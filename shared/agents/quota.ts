/**
 * Fixed quota windows (UTC): an hourly window starts on the hour, a daily one at midnight. Usage is
 * counted per window in its own item, so a window "resets" simply because the next one has no usage.
 */
import { windowAt } from '../platform/window.js';

export const QUOTA_WINDOWS = ['hourly', 'daily'] as const;
export type QuotaWindow = (typeof QUOTA_WINDOWS)[number];

const WINDOW_SECONDS: Record<QuotaWindow, number> = { hourly: 3600, daily: 86_400 };

export interface Quota {
  window: QuotaWindow;
  /** Requests (provider calls) per window; null = unlimited. */
  max_requests: number | null;
  /** Input + output tokens per window; null = unlimited. */
  max_tokens: number | null;
}

export interface WindowBounds {
  start: Date;
  resetsAt: Date;
  /** Identifies the window's usage item. */
  key: string;
}

export function windowOf(window: QuotaWindow, now: Date): WindowBounds {
  const { start, resetAt } = windowAt(now, WINDOW_SECONDS[window]);
  const startDate = new Date(start * 1000);
  return { start: startDate, resetsAt: resetAt, key: `${window}#${startDate.toISOString()}` };
}

export interface WindowUsage {
  requests: number;
  tokens: number;
}

export interface QuotaState {
  used: WindowUsage;
  limit: { requests: number | null; tokens: number | null };
  remaining: { requests: number | null; tokens: number | null };
  resets_at: string;
  /** Room for one more request of `tokensNeeded` tokens. */
  available: boolean;
}

export function quotaState(quota: Quota, used: WindowUsage, now: Date, tokensNeeded = 1): QuotaState {
  const bounds = windowOf(quota.window, now);
  const remainingRequests = quota.max_requests === null ? null : Math.max(0, quota.max_requests - used.requests);
  const remainingTokens = quota.max_tokens === null ? null : Math.max(0, quota.max_tokens - used.tokens);
  return {
    used,
    limit: { requests: quota.max_requests, tokens: quota.max_tokens },
    remaining: { requests: remainingRequests, tokens: remainingTokens },
    resets_at: bounds.resetsAt.toISOString(),
    available: (remainingRequests === null || remainingRequests >= 1) && (remainingTokens === null || remainingTokens >= tokensNeeded),
  };
}

/**
 * The conditions a reservation must meet, as thresholds on the stored counters, because DynamoDB
 * conditions cannot add: `requests <= maxRequestsBefore` and `tokens <= maxTokensBefore`. A reservation
 * that can never fit (more tokens than the whole quota) is clamped to the quota so a big task still runs
 * alone in a fresh window rather than waiting forever.
 */
export function reservationThresholds(quota: Quota, tokens: number): { maxRequestsBefore: number | null; maxTokensBefore: number | null; tokens: number } {
  const reserved = quota.max_tokens === null ? tokens : Math.min(tokens, quota.max_tokens);
  return {
    maxRequestsBefore: quota.max_requests === null ? null : quota.max_requests - 1,
    maxTokensBefore: quota.max_tokens === null ? null : quota.max_tokens - reserved,
    tokens: reserved,
  };
}
