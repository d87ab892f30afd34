import { ProviderError } from './types.js';

/** Longest provider message kept; providers sometimes echo the whole request back. */
const MAX_MESSAGE_CHARS = 500;

interface StatusClass {
  code: string;
  retryable: boolean;
}

/**
 * What an HTTP status from a provider means for a retry. 429, 408 and 5xx (including Anthropic's 529
 * "overloaded") are transient; 400/401/403/404 and the other 4xx will fail the same way again.
 */
export function classifyStatus(status: number): StatusClass {
  if (status === 429) return { code: 'rate_limited', retryable: true };
  if (status === 408) return { code: 'timeout', retryable: true };
  if (status === 529) return { code: 'overloaded', retryable: true };
  if (status >= 500) return { code: 'server_error', retryable: true };
  if (status === 400 || status === 422) return { code: 'bad_request', retryable: false };
  if (status === 401) return { code: 'authentication_failed', retryable: false };
  if (status === 403) return { code: 'permission_denied', retryable: false };
  if (status === 404) return { code: 'not_found', retryable: false };
  if (status === 413) return { code: 'request_too_large', retryable: false };
  return { code: 'client_error', retryable: false };
}

/**
 * Seconds to wait from `Retry-After` (delta seconds or an HTTP date) or `retry-after-ms` (OpenAI).
 * Undefined when the provider did not say or said something unreadable.
 */
export function parseRetryAfter(headers: { get(name: string): string | null }, now: Date): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.max(0, Number(ms) / 1000);
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, (at - now.getTime()) / 1000);
}

/**
 * The provider's own message from an error body. Anthropic answers `{ type: 'error', error: { type,
 * message } }`, OpenAI-compatible servers `{ error: { message } }` or `{ error: 'text' }` (Ollama),
 * some `{ message }` or `{ detail }`.
 */
export function providerMessage(body: string): string | undefined {
  const text = body.trim();
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const error = parsed.error;
    const candidates = [
      typeof error === 'object' && error !== null ? (error as Record<string, unknown>).message : undefined,
      typeof error === 'string' ? error : undefined,
      parsed.message,
      parsed.detail,
    ];
    const found = candidates.find((c): c is string => typeof c === 'string' && c.trim() !== '');
    return found ? truncate(found) : undefined;
  } catch {
    return text.startsWith('<') ? undefined : truncate(text);
  }
}

/** A ProviderError from a non-2xx HTTP answer. */
export function httpError(providerLabel: string, status: number, statusText: string, body: string, retryAfterSeconds?: number): ProviderError {
  const { code, retryable } = classifyStatus(status);
  const message = providerMessage(body) ?? `${providerLabel} answered HTTP ${status}${statusText ? ` ${statusText}` : ''}`;
  return new ProviderError(code, message, retryable, status, retryable ? retryAfterSeconds : undefined);
}

/** Error types some providers send inside a stream instead of as an HTTP status. */
const RETRYABLE_STREAM_ERRORS = new Set(['overloaded_error', 'api_error', 'rate_limit_error', 'timeout_error', 'server_error']);

export function streamError(type: string | undefined, message: string | undefined, providerLabel: string): ProviderError {
  const retryable = type === undefined || RETRYABLE_STREAM_ERRORS.has(type);
  return new ProviderError(
    type === 'rate_limit_error' ? 'rate_limited' : retryable ? 'stream_error' : (type ?? 'stream_error'),
    truncate(message ?? `${providerLabel} reported an error in the middle of the stream`),
    retryable,
  );
}

/**
 * A failure that is not an HTTP answer: the request was aborted (timeout → retryable; cancellation →
 * not), or the network failed (refused, reset, DNS) → retryable.
 */
export function transportError(err: unknown, signal: AbortSignal, providerLabel: string): ProviderError {
  if (err instanceof ProviderError) return err;
  if (signal.aborted) return abortError(signal, providerLabel);
  const e = err as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return new ProviderError('timeout', `${providerLabel} did not answer in time`, true);
  const code = e?.cause?.code ?? e?.code;
  const reason = code ?? e?.cause?.message ?? e?.message ?? 'unknown error';
  return new ProviderError('network_error', `could not reach ${providerLabel}: ${truncate(reason)}`, true);
}

/** Timeout (AbortSignal.timeout's TimeoutError) is retryable; a cancellation is not. */
export function abortError(signal: AbortSignal, providerLabel: string): ProviderError {
  const reason = signal.reason as { name?: string } | undefined;
  if (reason?.name === 'TimeoutError') return new ProviderError('timeout', `${providerLabel} did not finish before the timeout`, true);
  return new ProviderError('cancelled', `the call to ${providerLabel} was cancelled`, false);
}

function truncate(text: string): string {
  const clean = text.trim();
  return clean.length > MAX_MESSAGE_CHARS ? `${clean.slice(0, MAX_MESSAGE_CHARS - 1)}…` : clean;
}
