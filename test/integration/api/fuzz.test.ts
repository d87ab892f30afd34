import { beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../../shared/routes.js';
import type { RouteSpec } from '../../../shared/platform/api/route.js';
import { call, adminSession, userWithRole, type Session } from '../../support/client.js';

/** `{"a":{"a":…}}` or `[[…]]` nested `depth` levels, as text (JSON.stringify of it would overflow first). */
const deepText = (depth: number, kind: 'object' | 'array') =>
  kind === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** The same as a value, built without recursion. */
function deepValue(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: true };
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
}

const ULID = '01ARZ3NDEKTSV4RRFFQ69G5FAV';

let admin: Session;
let viewer: Session;

beforeAll(async () => {
  admin = await userWithRole('admin', await adminSession());
  viewer = await userWithRole('viewer', await adminSession());
});

const task = (extra: Record<string, unknown>) => ({ type: 'custom', payload: { prompt: 'hello' }, provider_id: 'local', ...extra });

describe('deeply nested JSON is a 4xx, never a 500, and nothing is stored', () => {
  it('task metadata 40 levels deep: 422 naming metadata', async () => {
    const res = await call('POST', '/api/v1/tasks', { token: admin.token, body: task({ metadata: deepValue(40) }) });
    expect(res.status).toBe(422);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain('metadata');
    const payload = await call('POST', '/api/v1/tasks', { token: admin.token, body: task({ payload: { prompt: 'x', context: deepValue(40) } }) });
    expect(payload.status).toBe(422);
  });

  it('21 levels are refused, 20 accepted', async () => {
    expect((await call('POST', '/api/v1/tasks', { token: admin.token, body: task({ metadata: deepValue(21) }) })).status).toBe(422);
    const ok = await call('POST', '/api/v1/tasks', { token: admin.token, body: task({ metadata: deepValue(20) }) });
    expect(ok.status).toBe(201);
    await call('POST', `/api/v1/tasks/${ok.body.data.task_id}/cancel`, { token: admin.token, body: {} });
  });

  it.each([
    ['POST', '/api/v1/tasks'],
    ['POST', '/api/v1/workflows/validate'],
    ['POST', '/api/v1/providers/execute'],
    ['POST', '/api/v1/workflows'],
  ])('%s %s with a body 10 000 levels deep: 400 invalid_json', async (method, path) => {
    for (const kind of ['object', 'array'] as const) {
      const res = await call(method, path, { token: admin.token, rawBody: deepText(10_000, kind), headers: { 'content-type': 'application/json' } });
      expect(res.status, kind).toBe(400);
      expect(res.body.error).toBe('invalid_json');
    }
  });

  it('a workflow step payload or a provider execute payload 40 levels deep: 422', async () => {
    const validate = await call('POST', '/api/v1/workflows/validate', {
      token: viewer.token,
      body: { name: 'deep', steps: [{ id: 'a', type: 'custom', payload: { prompt: 'x', more: deepValue(40) } }] },
    });
    expect(validate.status).toBe(422);
    expect(validate.body.errors.map((e: { path: string }) => e.path)).toContain('steps.0.payload');
    const execute = await call('POST', '/api/v1/providers/execute', { token: admin.token, body: task({ metadata: deepValue(40), wait_seconds: 1 }) });
    expect(execute.status).toBe(422);
  });

  it('braces inside strings do not count as nesting', async () => {
    const res = await call('POST', '/api/v1/workflows/validate', {
      token: viewer.token,
      body: { name: 'braces', steps: [{ id: 'a', type: 'custom', payload: { prompt: '{'.repeat(5000) + '['.repeat(5000) + '"\\' } }] },
    });
    expect(res.status).toBe(200);
  });
});

/** The top-level fields a route's body schema names (zod object shapes, through pipes and refinements). */
function bodyFields(route: RouteSpec): string[] {
  let schema = route.body as unknown as { shape?: Record<string, unknown>; _zod?: { def?: { in?: unknown; schema?: unknown } } } | undefined;
  for (let i = 0; i < 5 && schema && !schema.shape; i++) {
    const def = schema._zod?.def;
    schema = (def?.in ?? def?.schema) as typeof schema;
  }
  return Object.keys(schema?.shape ?? {});
}

function concretePath(route: RouteSpec): string {
  return route.path.replace(/\{([^}]+)\}/g, (_m, name: string) => (name === 'provider_id' ? 'fuzz-missing' : name === 'proxy+' ? 'x' : ULID));
}

describe('fuzz: every route with nested and huge values', () => {
  it('answers no 5xx', async () => {
    const huge = 'x'.repeat(60_000);
    const variants = (fields: string[]): Array<{ label: string; raw?: string; body?: unknown }> => [
      { label: 'deep object body', raw: deepText(10_000, 'object') },
      { label: 'deep array body', raw: deepText(10_000, 'array') },
      { label: 'fields 40 deep', body: Object.fromEntries(fields.map((f) => [f, deepValue(40)])) },
      { label: 'fields huge strings', body: Object.fromEntries(fields.map((f) => [f, huge])) },
      { label: 'fields long arrays', body: Object.fromEntries(fields.map((f) => [f, Array.from({ length: 5000 }, (_, i) => i)])) },
      { label: 'fields extreme numbers', body: Object.fromEntries(fields.map((f, i) => [f, [1e308, -1e308, -1, 0.5, Number.MAX_SAFE_INTEGER + 2][i % 5]])) },
      { label: 'fields null', body: Object.fromEntries(fields.map((f) => [f, null])) },
      { label: 'scalar body', raw: '"just a string"' },
      { label: 'array body', raw: '[{"a":1}]' },
      { label: 'broken JSON', raw: '{"a":' },
    ];
    const failures: string[] = [];
    let requests = 0;
    const deadline = Date.now() + 120_000;
    // Auth routes last: a logout with the fuzz token would end its session.
    const ordered = [...ROUTES].sort((a, b) => Number(a.path.startsWith('/auth')) - Number(b.path.startsWith('/auth')));
    for (const route of ordered) {
      if (Date.now() > deadline) break;
      const path = concretePath(route);
      const token = admin.token;
      const attempts: Array<{ label: string; path: string; raw?: string; body?: unknown }> = [];
      if (route.body) {
        const fields = bodyFields(route);
        for (const v of variants(fields.length ? fields : ['name', 'payload', 'metadata'])) attempts.push({ ...v, path });
      }
      if (route.query || route.method === 'GET') {
        const keys = ['limit', 'cursor', 'days', 'status', 'type', 'version', 'force', 'q'];
        attempts.push({ label: 'huge query', path: `${path}?${keys.map((k) => `${k}=${'9'.repeat(400)}`).join('&')}` });
        attempts.push({ label: 'odd query', path: `${path}?limit=-1&limit=1e309&cursor=${encodeURIComponent('{"a":'.repeat(300))}&days=NaN` });
      }
      if (!attempts.length) attempts.push({ label: 'plain', path });
      for (const a of attempts) {
        requests++;
        const res = await call(route.method, a.path, {
          token,
          ...(a.raw !== undefined ? { rawBody: a.raw, headers: { 'content-type': 'application/json' } } : a.body !== undefined ? { body: a.body } : {}),
        });
        if (res.status >= 500) failures.push(`${route.method} ${route.path} [${a.label}] → ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(200);
  }, 180_000);
});
