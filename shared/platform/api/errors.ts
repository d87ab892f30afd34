/** Errors that map one-to-one onto the contract's error format. Anything else becomes a 500. */
import { DomainError, type ErrorKind, type FieldError } from '../errors.js';

export type { FieldError };

/** An answer in the contract's error format: status, code, detail, field errors and extra headers. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
    this.name = 'ApiError';
  }
}

/** The one mapping from the domain's error kinds to HTTP statuses. */
export const HTTP_STATUS: Record<ErrorKind, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  invalid_state: 409,
  invalid_input: 422,
  rate_limited: 429,
  unavailable: 503,
};

export function toApiError(err: DomainError): ApiError {
  const headers = err.retryAfterSeconds !== undefined ? { 'Retry-After': String(err.retryAfterSeconds) } : undefined;
  return new ApiError(HTTP_STATUS[err.kind], err.code, err.detail, err.errors, headers);
}

// Failures of the HTTP exchange itself, which no use case raises.
export const invalidJson = (detail = 'Request body is not valid JSON') => new ApiError(400, 'invalid_json', detail);
export const invalidCursor = () => new ApiError(400, 'invalid_cursor', 'cursor is invalid or belongs to another query');
export const routeNotFound = (routeKey: string) => new ApiError(404, 'not_found', `No route for ${routeKey}`);
export const payloadTooLarge = (limit: number) =>
  new ApiError(413, 'payload_too_large', `Request body exceeds the limit of ${limit} bytes`);
export const unsupportedMediaType = (accepted: string[]) =>
  new ApiError(415, 'unsupported_media_type', `Content-Type must be ${accepted.join(' or ')}`);

/** Errors thrown by a dependency (store, queue, provider) that is down rather than rejecting the call. */
export function isDependencyDown(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; cause?: unknown };
  const code = e.code ?? (e.cause as { code?: string } | undefined)?.code;
  if (code && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'UND_ERR_SOCKET'].includes(code)) return true;
  if (e.name && ['TimeoutError', 'RequestTimeout', 'ServiceUnavailable', 'InternalServerError', 'ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded'].includes(e.name)) return true;
  const status = e.$metadata?.httpStatusCode;
  return status !== undefined && status >= 500;
}
