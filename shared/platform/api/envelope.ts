import type { FieldError } from '../errors.js';

export function nowIso(): string {
  return new Date().toISOString();
}

export function successBody(data: unknown, message: string): string {
  return JSON.stringify({ data: data ?? null, message, timestamp: nowIso() });
}

export function errorBody(code: string, detail: string, requestId: string, errors?: FieldError[]): string {
  return JSON.stringify({ detail, error: code, ...(errors ? { errors } : {}), request_id: requestId, timestamp: nowIso() });
}

/** A list as the contract fixes it: items plus the opaque cursor of the next page. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}
