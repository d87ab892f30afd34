/** Errors that map one-to-one onto the contract's error format. Anything else becomes a 500. */
export interface FieldError {
  path: string;
  message: string;
}

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

export const badRequest = (detail: string, code = 'bad_request') => new ApiError(400, code, detail);
export const invalidJson = (detail = 'Request body is not valid JSON') => new ApiError(400, 'invalid_json', detail);
export const invalidCursor = () => new ApiError(400, 'invalid_cursor', 'cursor is invalid or belongs to another query');
export const unauthorized = (detail = 'Authentication required') => new ApiError(401, 'unauthorized', detail);
export const forbidden = (detail = 'You do not have permission to do this') => new ApiError(403, 'forbidden', detail);
export const notFound = (what = 'Resource') => new ApiError(404, 'not_found', `${what} not found`);
export const conflict = (detail: string) => new ApiError(409, 'conflict', detail);
export const invalidState = (detail: string) => new ApiError(409, 'invalid_state', detail);
export const idempotencyConflict = () =>
  new ApiError(409, 'idempotency_conflict', 'Idempotency-Key was already used with a different request');
export const payloadTooLarge = (limit: number) =>
  new ApiError(413, 'payload_too_large', `Request body exceeds the limit of ${limit} bytes`);
export const unsupportedMediaType = (accepted: string[]) =>
  new ApiError(415, 'unsupported_media_type', `Content-Type must be ${accepted.join(' or ')}`);
export const validationError = (errors: FieldError[]) =>
  new ApiError(422, 'validation_error', errors.length ? `${errors[0].path || 'body'}: ${errors[0].message}` : 'Invalid request', errors);
export const rateLimited = (retryAfterSeconds: number, detail = 'Too many requests') =>
  new ApiError(429, 'rate_limited', detail, undefined, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) });
export const dependencyUnavailable = (what: string, errors?: FieldError[]) =>
  new ApiError(503, 'dependency_unavailable', `${what} is unavailable, try again shortly`, errors);

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
