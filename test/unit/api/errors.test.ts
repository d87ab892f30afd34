import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { ApiError, isDependencyDown, toApiError } from '../../../shared/platform/api/errors.js';
import { rateLimited, validationError } from '../../../shared/platform/errors.js';
import { errorBody, successBody } from '../../../shared/platform/api/envelope.js';
import { zodIssues } from '../../../shared/platform/api/middleware.js';

describe('the error envelope', () => {
  it('carries detail, error, errors, request_id and an ISO timestamp', () => {
    const body = JSON.parse(errorBody('validation_error', 'priority: too big', 'req-1', [{ path: 'priority', message: 'too big' }]));
    expect(body).toEqual({ detail: 'priority: too big', error: 'validation_error', errors: [{ path: 'priority', message: 'too big' }], request_id: 'req-1', timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) });
    expect(JSON.parse(errorBody('not_found', 'x', 'r'))).not.toHaveProperty('errors');
  });

  it('wraps success data with a message and a timestamp', () => {
    expect(JSON.parse(successBody({ a: 1 }, 'OK'))).toMatchObject({ data: { a: 1 }, message: 'OK' });
    expect(JSON.parse(successBody(undefined, 'Deleted')).data).toBeNull();
  });

  it('names the first failing field in the detail of a validation error', () => {
    const err = toApiError(validationError([{ path: 'priority', message: 'Too big' }, { path: 'name', message: 'Required' }]));
    expect(err).toMatchObject({ status: 422, code: 'validation_error', detail: 'priority: Too big' });
  });

  it('rounds Retry-After up to whole seconds, at least 1', () => {
    expect(toApiError(rateLimited(0.2)).headers).toEqual({ 'Retry-After': '1' });
    expect(toApiError(rateLimited(29.01)).headers).toEqual({ 'Retry-After': '30' });
    expect(toApiError(rateLimited(-3)).headers).toEqual({ 'Retry-After': '1' });
  });
});

describe('isDependencyDown', () => {
  it.each([
    [{ code: 'ECONNREFUSED' }, true],
    [{ name: 'Error', cause: { code: 'ECONNRESET' } }, true],
    [{ name: 'TimeoutError' }, true],
    [{ name: 'ProvisionedThroughputExceededException' }, true],
    [{ name: 'InternalServerError', $metadata: { httpStatusCode: 500 } }, true],
    [{ name: 'Whatever', $metadata: { httpStatusCode: 503 } }, true],
    [{ name: 'ConditionalCheckFailedException', $metadata: { httpStatusCode: 400 } }, false],
    [{ name: 'ValidationException', $metadata: { httpStatusCode: 400 } }, false],
    [new TypeError('x is undefined'), false],
    [undefined, false],
  ])('%j → %s', (err, expected) => {
    expect(isDependencyDown(err)).toBe(expected);
  });

  it('never treats an ApiError as a dependency failure by itself', () => {
    expect(isDependencyDown(new ApiError(409, 'conflict', 'x'))).toBe(false);
  });
});

describe('zodIssues', () => {
  const schema = z.strictObject({ name: z.string().min(2), roles: z.array(z.string()).min(1).max(4), nested: z.strictObject({ n: z.number() }).optional() });

  it('names each failing field by its dotted path, unknown fields one by one', () => {
    const result = schema.safeParse({ name: 'x', roles: [], nested: { n: 'a', extra: 1 }, other: true, more: 2 });
    const issues = zodIssues(result.error!);
    expect(issues.map((i) => i.path).sort()).toEqual(['more', 'name', 'nested.extra', 'nested.n', 'other', 'roles']);
    expect(issues.find((i) => i.path === 'other')?.message).toBe('Unknown field');
  });

  it('reports a field of the wrong type once, without the length checks zod still runs on it', () => {
    const issues = zodIssues(schema.safeParse({ name: 'ok', roles: 'admin' }).error!);
    expect(issues).toEqual([{ path: 'roles', message: expect.stringContaining('expected array') }]);
  });

  it('prefixes query and path fields', () => {
    const issues = zodIssues(z.object({ limit: z.coerce.number().max(100) }).safeParse({ limit: '500' }).error!, 'query');
    expect(issues.map((i) => i.path)).toEqual(['query.limit']);
  });
});
