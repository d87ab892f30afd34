import { describe, expect, it } from 'vitest';
import { checkResponse, ContractViolation } from '../../support/contract.js';
import { call } from '../../support/client.js';

/**
 * The check every test client applies to every answer (test/support/contract.ts), checked itself: it
 * refuses an undeclared status, an undeclared content type and a body that does not match, for
 * envelopes, errors and raw answers alike.
 */

const now = new Date().toISOString();
const error = (code: string) => JSON.stringify({ detail: 'x', error: code, request_id: 'r', timestamp: now });

describe('the response check of the test clients', () => {
  it('accepts what the document declares', async () => {
    await expect(checkResponse('GET', '/api/v1/tasks/01JD0000000000000000000000', 404, 'application/json', error('not_found'))).resolves.toBeUndefined();
    await expect(checkResponse('GET', '/.well-known/jwks.json', 200, 'application/json', JSON.stringify({ keys: [{ kty: 'EC', kid: 'k', alg: 'ES256', use: 'sig', crv: 'P-256', x: 'a', y: 'b' }] }))).resolves.toBeUndefined();
    await expect(checkResponse('GET', '/docs', 200, 'text/html; charset=utf-8', '<!doctype html>')).resolves.toBeUndefined();
    await expect(checkResponse('GET', '/nowhere', 404, 'application/json', error('not_found'))).resolves.toBeUndefined();
  });

  it('refuses an undeclared status', async () => {
    await expect(checkResponse('GET', '/api/v1/health', 418, 'application/json', error('teapot'))).rejects.toThrow(ContractViolation);
    await expect(checkResponse('GET', '/.well-known/jwks.json', 401, 'application/json', error('unauthorized'))).rejects.toThrow(/status not declared/);
  });

  it('refuses a body that does not match, success or error', async () => {
    await expect(checkResponse('GET', '/api/v1/tasks/01JD0000000000000000000000', 404, 'application/json', JSON.stringify({ error: 'not_found' }))).rejects.toThrow(/does not match/);
    await expect(checkResponse('GET', '/.well-known/jwks.json', 200, 'application/json', JSON.stringify({ data: { keys: [] }, message: 'OK', timestamp: now }))).rejects.toThrow(/does not match/);
    await expect(checkResponse('GET', '/auth/me', 200, 'application/json', JSON.stringify({ data: { user_id: 42 }, message: 'OK', timestamp: now }))).rejects.toThrow(/does not match/);
    await expect(checkResponse('GET', '/nowhere', 404, 'application/json', '{"message":"Not Found"}')).rejects.toThrow(/does not match/);
  });

  it('refuses an undeclared content type and a success where no route is', async () => {
    await expect(checkResponse('GET', '/docs', 200, 'application/json', '{}')).rejects.toThrow(/content type/);
    await expect(checkResponse('GET', '/nowhere', 200, 'text/plain', 'hi')).rejects.toThrow(/does not declare/);
  });

  it('is applied by the test client to real answers', async () => {
    const res = await call('GET', '/api/v1/health');
    expect(res.status).toBe(200);
  });
});
