import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { createHttpServer, MAX_PAYLOAD_BYTES, type HttpFunction } from '../../../local/http-server.js';
import { Router } from '../../../local/router.js';
import type { RouteSpec } from '../../../shared/platform/api/route.js';
import { Client, request } from '../auth/fixtures.js';

/**
 * The local HTTP server module on its own, with functions written for the test: the API Gateway v2
 * event it builds, its limits (30 s → 504, 10 MB → 413), 404s, and one log line per request.
 */

const route = (method: RouteSpec['method'], path: string, group: RouteSpec['group']): RouteSpec => ({
  operationId: `${method} ${path}`,
  method,
  path,
  group,
  permission: null,
  summary: path,
});

const events: APIGatewayProxyEventV2[] = [];
const lines: string[] = [];
let release: (() => void) | undefined;

const functions: Record<string, HttpFunction> = {
  // Echoes what it got, as JSON.
  tasks: async (event) => {
    events.push(event);
    return { statusCode: 200, headers: { 'Content-Type': 'application/json', 'X-Seen-Route': event.routeKey }, body: JSON.stringify({ ok: true }) };
  },
  // Answers after the test says so (or never).
  workflows: async () => {
    await new Promise<void>((resolve) => (release = resolve));
    return { statusCode: 200, body: 'late' };
  },
  // Binary answer.
  docs: async () => ({ statusCode: 200, headers: { 'Content-Type': 'image/png' }, body: Buffer.from([0x89, 0x50, 0x4e, 0x47]).toString('base64'), isBase64Encoded: true }),
  // A function that throws (a crashed Lambda).
  plugins: async () => {
    throw new Error('boom with internals: /secret/path');
  },
};

const router = new Router([
  route('GET', '/items/{item_id}', 'tasks'),
  route('POST', '/items/{item_id}', 'tasks'),
  route('GET', '/slow', 'workflows'),
  route('GET', '/image', 'docs'),
  route('GET', '/crash', 'plugins'),
  route('GET', '/unbound', 'monitoring'),
]);
const server = createHttpServer({ router, functions, log: (line) => lines.push(line), integrationTimeoutMs: 300 });
let baseUrl: string;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.server.address() as { port: number };
  baseUrl = `http://127.0.0.1:${address.port}`;
});
afterAll(async () => {
  release?.();
  await server.close();
});

describe('the API Gateway v2 event', () => {
  it('carries routeKey, raw path and query, lower-case headers, cookies, request context and parameters', async () => {
    const client = new Client(undefined, baseUrl, false);
    events.length = 0;
    const res = await client.call('GET', '/items/it%20em-1?tag=a&tag=b&limit=5&empty=', {
      headers: { 'X-Custom-Header': 'Value', Cookie: 'session=abc; theme=dark', 'User-Agent': 'event-test' },
    });
    expect(res.status).toBe(200);
    expect(res.headers['x-seen-route']).toBe('GET /items/{item_id}');
    const event = events[0];
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'GET /items/{item_id}',
      rawPath: '/items/it%20em-1',
      rawQueryString: 'tag=a&tag=b&limit=5&empty=',
      cookies: ['session=abc', 'theme=dark'],
      pathParameters: { item_id: 'it em-1' },
      queryStringParameters: { tag: 'a,b', limit: '5', empty: '' },
      isBase64Encoded: false,
    });
    expect(event.headers['x-custom-header']).toBe('Value');
    expect(event.headers).not.toHaveProperty('cookie');
    expect(event.requestContext).toMatchObject({
      routeKey: 'GET /items/{item_id}',
      stage: '$default',
      http: { method: 'GET', path: '/items/it%20em-1', sourceIp: client.ip, userAgent: 'event-test' },
    });
    expect(event.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(event.requestContext.timeEpoch).toBeGreaterThan(0);
    expect(event.body).toBeUndefined();
  });

  it('passes text bodies as text and binary bodies as base64', async () => {
    events.length = 0;
    await request('POST', '/items/1', { contract: false, baseUrl, body: { hello: 'wörld' } });
    await request('POST', '/items/2', { contract: false, baseUrl, rawBody: Buffer.from([0, 1, 2, 255]), headers: { 'content-type': 'application/octet-stream' } });
    expect(events[0]).toMatchObject({ body: '{"hello":"wörld"}', isBase64Encoded: false });
    expect(events[1]).toMatchObject({ body: Buffer.from([0, 1, 2, 255]).toString('base64'), isBase64Encoded: true });
    expect(events[0]).not.toHaveProperty('queryStringParameters');
    expect(events[0]).not.toHaveProperty('cookies');
  });

  it('decodes a base64 answer back to bytes', async () => {
    const res = await fetch(`${baseUrl}/image`);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect([...new Uint8Array(await res.arrayBuffer())]).toEqual([0x89, 0x50, 0x4e, 0x47]);
  });
});

describe('API Gateway limits and errors', () => {
  it('answers 504 in the error format when the function takes longer than the integration timeout', async () => {
    const res = await request('GET', '/slow', { contract: false, baseUrl });
    expect(res.status).toBe(504);
    expect(res.body).toMatchObject({ error: 'gateway_timeout', request_id: expect.any(String) });
    release?.();
  });

  it('answers 413 for a body over 10 MB without calling the function', async () => {
    events.length = 0;
    const res = await request('POST', '/items/1', { contract: false, baseUrl, rawBody: Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x61), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(413);
    expect(res.body.error).toBe('payload_too_large');
    expect(events).toHaveLength(0);
    const atLimit = await request('POST', '/items/1', { contract: false, baseUrl, rawBody: Buffer.alloc(MAX_PAYLOAD_BYTES, 0x61), headers: { 'content-type': 'text/plain' } });
    expect(atLimit.status).toBe(200);
  });

  it('answers 404 in the error format for unknown routes and methods', async () => {
    for (const [method, path] of [['GET', '/nowhere'], ['DELETE', '/items/1'], ['GET', '/items']]) {
      const res = await request(method, path, { contract: false, baseUrl });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body).toMatchObject({ error: 'not_found', detail: expect.stringContaining(path), request_id: expect.any(String), timestamp: expect.any(String) });
    }
  });

  it('answers a bare 500 when a function crashes, without its message', async () => {
    for (const path of ['/crash', '/unbound']) {
      const res = await request('GET', path, { contract: false, baseUrl });
      expect(res.status).toBe(500);
      expect(res.body).toMatchObject({ error: 'internal_error', detail: 'An internal error occurred' });
      expect(res.text).not.toContain('secret');
    }
  });

  it('answers CORS preflights with the methods the path allows', async () => {
    const res = await request('OPTIONS', '/items/7', { contract: false, baseUrl, headers: { origin: 'http://app.local', 'access-control-request-method': 'POST' } });
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-methods'].split(',').sort()).toEqual(['GET', 'OPTIONS', 'POST']);
    // CORS_ORIGINS defaults to `*`: the wildcard, never echoed origins, never credentials.
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect((await request('OPTIONS', '/nowhere', { contract: false, baseUrl })).status).toBe(404);
  });

  it('puts the security headers on its own answers too (404, 413, preflight)', async () => {
    const answers = [
      await request('GET', '/nowhere', { contract: false, baseUrl }),
      await request('OPTIONS', '/items/7', { contract: false, baseUrl, headers: { origin: 'http://app.local' } }),
      await request('OPTIONS', '/nowhere', { contract: false, baseUrl }),
      await request('POST', '/items/1', { contract: false, baseUrl, body: 'x'.repeat(MAX_PAYLOAD_BYTES + 1), headers: { 'content-type': 'text/plain' } }),
    ];
    expect(answers.map((r) => r.status)).toEqual([404, 204, 404, 413]);
    for (const res of answers) {
      expect(res.headers['x-content-type-options'], String(res.status)).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(res.headers['cache-control']).toBe('no-store');
    }
  });
});

describe('CORS preflight with CORS_ORIGINS set', () => {
  const restricted = createHttpServer({ router, functions, log: () => undefined, corsOrigins: ['https://app.example'] });
  let restrictedUrl: string;
  beforeAll(async () => {
    await new Promise<void>((resolve) => restricted.server.listen(0, '127.0.0.1', () => resolve()));
    restrictedUrl = `http://127.0.0.1:${(restricted.server.address() as { port: number }).port}`;
  });
  afterAll(() => restricted.close());

  it('allows the listed origins only (before: any origin was echoed back)', async () => {
    const listed = await request('OPTIONS', '/items/7', { contract: false, baseUrl: restrictedUrl, headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    expect(listed.status).toBe(204);
    expect(listed.headers['access-control-allow-origin']).toBe('https://app.example');
    const other = await request('OPTIONS', '/items/7', { contract: false, baseUrl: restrictedUrl, headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expect(other.headers['access-control-allow-credentials']).toBeUndefined();
  });
});

describe('request log', () => {
  it('writes one line per request with time, method, path, status, duration and request id', async () => {
    lines.length = 0;
    const res = await request('GET', '/items/42?x=1', { contract: false, baseUrl });
    await request('GET', '/nowhere', { contract: false, baseUrl });
    expect(res.status).toBe(200);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z GET \/items\/42 200 \d+\.\dms request_id=[0-9a-f-]{36}$/);
    expect(lines[1]).toMatch(/ GET \/nowhere 404 /);
  });
});

describe('close()', () => {
  it('waits for requests in flight, and refuses new connections meanwhile', async () => {
    const local = createHttpServer({ router, functions, log: () => undefined });
    await new Promise<void>((resolve) => local.server.listen(0, '127.0.0.1', () => resolve()));
    const url = `http://127.0.0.1:${(local.server.address() as { port: number }).port}`;
    release = undefined;
    const inFlight = request('GET', '/slow', { contract: false, baseUrl: url });
    const started = () => release as (() => void) | undefined;
    while (!started()) await new Promise((r) => setTimeout(r, 10));
    let closed = false;
    const closing = local.close().then(() => (closed = true));
    await expect(request('GET', '/items/1', { contract: false, baseUrl: url })).rejects.toThrow(/ECONNREFUSED/);
    expect(closed).toBe(false);
    started()!();
    expect((await inFlight).status).toBe(200);
    await closing;
    expect(closed).toBe(true);
  });
});
