import { beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../../shared/routes.js';
import type { RouteSpec } from '../../../shared/platform/api/route.js';
import { call, adminSession, userWithRole, type Session } from '../../support/client.js';

/**
 * Every request strict: a body on a route that takes none, an unknown query parameter, a path id longer
 * than any real one, control characters or broken UTF-16 in a name: a 4xx, never a 5xx, and nothing done.
 */

const ULID = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
let admin: Session;

beforeAll(async () => {
  admin = await userWithRole('admin', await adminSession());
});

async function newWorkflow(name = `strict-${Date.now()}-${Math.random().toString(36).slice(2)}`): Promise<string> {
  const res = await call('POST', '/api/v1/workflows', { token: admin.token, body: { name, steps: [{ id: 'only', type: 'custom', provider_id: 'local', payload: { prompt: 'hi' } }] } });
  expect(res.status).toBe(201);
  return res.body.data.workflow_id;
}

const exists = async (workflowId: string) => (await call('GET', `/api/v1/workflows/${workflowId}`, { token: admin.token })).status === 200;

describe('a route that takes no body refuses one', () => {
  it('DELETE /workflows/{id} with the body `{"bad json`: 400, with `{}`: 422; the workflow stays', async () => {
    const id = await newWorkflow();
    const broken = await call('DELETE', `/api/v1/workflows/${id}`, { token: admin.token, rawBody: '{"bad json', headers: { 'content-type': 'application/json' } });
    expect(broken.status).toBe(400);
    expect(broken.body.error).toBe('invalid_json');
    const present = await call('DELETE', `/api/v1/workflows/${id}`, { token: admin.token, body: {} });
    expect(present.status).toBe(422);
    expect(present.body.errors).toEqual([{ path: 'body', message: 'this route takes no request body' }]);
    expect(await exists(id)).toBe(true);
    expect((await call('DELETE', `/api/v1/workflows/${id}`, { token: admin.token })).status).toBe(200);
  });
});

describe('unknown query parameters are a 422', () => {
  it('on delete and execute, naming the parameter; nothing is done', async () => {
    const id = await newWorkflow();
    const del = await call('DELETE', `/api/v1/workflows/${id}?unknown_param=1`, { token: admin.token });
    expect(del.status).toBe(422);
    expect(del.body.errors).toEqual([{ path: 'query.unknown_param', message: 'unknown query parameter' }]);
    expect(await exists(id)).toBe(true);
    const exec = await call('POST', `/api/v1/workflows/${id}/execute?unknown_param=1`, { token: admin.token, body: {} });
    expect(exec.status).toBe(422);
    const runs = await call('GET', `/api/v1/workflows/${id}/executions`, { token: admin.token });
    expect(runs.body.data.items).toHaveLength(0);
  });

  it('on a route with a query schema, beside the known ones', async () => {
    const res = await call('GET', '/api/v1/tasks?limit=5&unknown_param=1', { token: admin.token });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: 'query.unknown_param', message: 'unknown query parameter' }]);
    expect((await call('GET', '/api/v1/tasks?limit=5', { token: admin.token })).status).toBe(200);
  });
});

describe('path ids are bounded', () => {
  it('a 5,000-character id is a 422 naming the parameter, and its request is audited', async () => {
    const res = await call('DELETE', `/api/v1/workflows/${'A'.repeat(5000)}`, { token: admin.token });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: 'path.workflow_id', message: 'must be at most 200 characters' }]);
    const audit = await call('GET', `/api/v1/audit?limit=20`, { token: admin.token });
    if (audit.status === 200) {
      expect(audit.body.data.items.some((e: { request_id: string }) => e.request_id === res.headers.get('x-request-id'))).toBe(true);
    }
  });
});

describe('names refuse control characters and broken UTF-16', () => {
  it.each([
    ['a NUL', 'bad\u0000name'],
    ['a newline', 'two\nlines'],
    ['an escape', 'esc\u001b[31m'],
    ['a lone high surrogate', 'half\uD83D'],
    ['a lone low surrogate', 'half\uDE00'],
  ])('a workflow name with %s: 422 naming it, nothing stored', async (_label, name) => {
    const res = await call('POST', '/api/v1/workflows', { token: admin.token, body: { name, steps: [{ id: 'only', type: 'custom', provider_id: 'local', payload: { prompt: 'hi' } }] } });
    expect(res.status).toBe(422);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain('name');
  });

  it('a task title with a NUL, and a provider key with a lone surrogate: 422', async () => {
    const title = await call('POST', '/api/v1/tasks', { token: admin.token, body: { type: 'custom', title: 'a\u0000b', payload: { prompt: 'x' }, provider_id: 'local' } });
    expect(title.status).toBe(422);
    expect(title.body.errors.map((e: { path: string }) => e.path)).toContain('title');
    const provider = await call('POST', `/api/v1/providers/strict-${Date.now()}/register`, {
      token: admin.token,
      body: { name: `p-${Date.now()}`, type: 'anthropic', model: 'claude', api_key: 'sk-\uD800', pricing: { input_per_million: 1, output_per_million: 1 } },
    });
    expect(provider.status).toBe(422);
    expect(provider.body.errors.map((e: { path: string }) => e.path)).toContain('api_key');
  });

  it('a description keeps its tabs and newlines', async () => {
    const res = await call('POST', '/api/v1/workflows', {
      token: admin.token,
      body: { name: `desc-${Date.now()}`, description: 'line one\n\tline two', steps: [{ id: 'only', type: 'custom', provider_id: 'local', payload: { prompt: 'hi' } }] },
    });
    expect(res.status).toBe(201);
  });
});

function concretePath(route: RouteSpec, id: string): string {
  return route.path.replace(/\{([^}]+)\}/g, (_m, name: string) => (name === 'proxy+' ? 'x' : id));
}

describe('strictness fuzz over every route', () => {
  it('bodies on body-less routes, unknown query parameters, huge path ids: no 5xx, none accepted', async () => {
    const failures: string[] = [];
    let requests = 0;
    // Auth routes last: a logout with the fuzz token would end its session.
    const ordered = [...ROUTES].sort((a, b) => Number(a.path.startsWith('/auth')) - Number(b.path.startsWith('/auth')));
    for (const route of ordered) {
      const attempts: Array<{ label: string; path: string; raw?: string; accepted?: boolean }> = [];
      const path = concretePath(route, ULID);
      if (!route.body && route.method !== 'GET') {
        attempts.push({ label: 'broken body', path, raw: '{"bad json' });
        attempts.push({ label: 'object body', path, raw: '{}' });
      }
      attempts.push({ label: 'unknown query', path: `${path}?unknown_param=1` });
      if (route.path.includes('{') && !route.path.includes('{proxy+}')) attempts.push({ label: 'huge id', path: concretePath(route, 'A'.repeat(5000)) });
      for (const a of attempts) {
        requests++;
        const res = await call(route.method, a.path, {
          token: admin.token,
          ...(a.raw !== undefined ? { rawBody: a.raw, headers: { 'content-type': 'application/json' } } : {}),
        });
        if (res.status >= 500 || res.status < 400) failures.push(`${route.method} ${route.path} [${a.label}] → ${res.status} ${JSON.stringify(res.body).slice(0, 160)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(100);
  }, 180_000);
});
