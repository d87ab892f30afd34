/**
 * The errors use cases throw. They say what went wrong in the domain's words; `platform/api/errors.ts`
 * is the one place that turns them into HTTP statuses. Anything else thrown becomes a 500.
 */
export interface FieldError {
  path: string;
  message: string;
}

export type ErrorKind =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'invalid_state'
  | 'invalid_input'
  | 'rate_limited'
  | 'unavailable';

export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    /** The contract's error code (`error` in the body). */
    readonly code: string,
    readonly detail: string,
    readonly errors?: FieldError[],
    /** For `rate_limited`: when to try again. */
    readonly retryAfterSeconds?: number,
  ) {
    super(detail);
    this.name = 'DomainError';
  }
}

export const badRequest = (detail: string, code = 'bad_request') => new DomainError('bad_request', code, detail);
export const unauthorized = (detail = 'Authentication required') => new DomainError('unauthorized', 'unauthorized', detail);
export const forbidden = (detail = 'You do not have permission to do this') => new DomainError('forbidden', 'forbidden', detail);
export const notFound = (what = 'Resource') => new DomainError('not_found', 'not_found', `${what} not found`);
export const conflict = (detail: string) => new DomainError('conflict', 'conflict', detail);
export const invalidState = (detail: string) => new DomainError('invalid_state', 'invalid_state', detail);
export const idempotencyConflict = () =>
  new DomainError('conflict', 'idempotency_conflict', 'Idempotency-Key was already used with a different request');
export const validationError = (errors: FieldError[]) =>
  new DomainError('invalid_input', 'validation_error', errors.length ? `${errors[0].path || 'body'}: ${errors[0].message}` : 'Invalid request', errors);
export const rateLimited = (retryAfterSeconds: number, detail = 'Too many requests') =>
  new DomainError('rate_limited', 'rate_limited', detail, undefined, Math.max(1, Math.ceil(retryAfterSeconds)));
export const dependencyUnavailable = (what: string, errors?: FieldError[]) =>
  new DomainError('unavailable', 'dependency_unavailable', `${what} is unavailable, try again shortly`, errors);

/** Errors that are the caller's to fix: repeating the same call cannot succeed. */
export function isClientError(err: unknown): err is DomainError {
  return err instanceof DomainError && err.kind !== 'unavailable';
}
