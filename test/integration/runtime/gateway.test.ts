import { describe, expect, it } from 'vitest';
import { Client } from '../auth/fixtures.js';

/** The shared local runtime as a client sees it: 404s, the 10 MB limit, headers on every answer. */

const client = new Client();

describe('the local runtime', () => {
  it('answers 404 in the error format for unknown routes', async () => {
    for (const [method, path] of [['GET', '/api/v1/nothing-here'], ['POST', '/api/v1/health'], ['GET', '/auth']]) {
      const res = await client.call(method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body).toEqual({ detail: `No route for ${method} ${path}`, error: 'not_found', request_id: expect.any(String), timestamp: expect.any(String) });
    }
  });

  it('answers 413 for a body over 10 MB before any function runs', async () => {
    const res = await client.call('POST', '/auth/register', { rawBody: Buffer.alloc(10 * 1024 * 1024 + 10, 0x20), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(413);
    expect(res.body.error).toBe('payload_too_large');
  });

  it('sends security headers and the request id on successes and errors alike', async () => {
    for (const [path, status] of [['/api/v1/health', 200], ['/auth/me', 401]] as const) {
      const res = await client.call('GET', path, { headers: { origin: 'http://dashboard.local' } });
      expect(res.status).toBe(status);
      expect(res.headers).toMatchObject({
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
        'access-control-allow-origin': expect.any(String),
      });
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      if (status !== 200) expect(res.body.request_id).toBe(res.headers['x-request-id']);
    }
  });

  it('answers CORS preflights for real routes', async () => {
    const res = await client.call('OPTIONS', '/auth/users/01JD0000000000000000000000', { headers: { origin: 'http://dashboard.local', 'access-control-request-method': 'PUT' } });
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-methods'].split(',')).toEqual(expect.arrayContaining(['PUT', 'DELETE']));
    expect(res.headers['access-control-allow-headers']).toContain('Idempotency-Key');
  });
});
