import { describe, expect, it } from 'vitest';
import { ROUTES } from '../../../shared/routes.js';
import { call, adminSession } from '../../support/client.js';
import { authService, testStore } from '../auth/fixtures.js';

/**
 * The examples the document publishes are requests this suite sends: each example request without
 * path parameters goes to its route (as the admin, or as the example's own user for login) and must
 * succeed with the declared status; the test client checks the answer against the document, and the
 * published success example must agree with it on every field that is not per-request (ids, tokens,
 * times). Redocly (npm run lint) checks each example against its schema.
 */

const examples = ROUTES.filter((r) => r.example && !r.path.includes('{'));

/** Leaves of `example` that a real answer must repeat: not ids, tokens or times. */
function stableLeaves(example: unknown, prefix = ''): [string, unknown][] {
  if (example === null || typeof example !== 'object' || Array.isArray(example)) {
    return /(_id|token|_at)$/.test(prefix) ? [] : [[prefix, example]];
  }
  return Object.entries(example).flatMap(([k, v]) => stableLeaves(v, prefix ? `${prefix}.${k}` : k));
}

const at = (value: unknown, path: string) => path.split('.').reduce<any>((v, k) => v?.[k], value);

describe('published examples', () => {
  it('covers the routes that create things and log in', () => {
    expect(examples.map((r) => r.operationId)).toEqual(expect.arrayContaining(['login', 'createTask', 'createWorkflow']));
  });

  it.each(examples.map((r) => [`${r.method} ${r.path}`, r] as const))('%s: the example request succeeds as published', async (_name, route) => {
    const example = route.example!;
    let token: string | undefined;
    if (route.operationId === 'login') {
      const body = example.body as { username: string; password: string };
      await authService(testStore()).createUser({ ...body, roles: ['operator'] });
    } else if (route.permission) token = (await adminSession()).token;
    const query = example.query ? `?${new URLSearchParams(example.query).toString()}` : '';
    const res = await call(route.method, `${route.path}${query}`, { token, body: example.body });
    expect(res.status, JSON.stringify(res.body)).toBe(route.status ?? 200);
    if ('response' in example) {
      const data = route.rawResponse ? res.body : res.body.data;
      for (const [path, value] of stableLeaves(example.response)) {
        if (path === 'user.permissions') continue; // the example lists one of the role's many
        expect(at(data, path), path).toEqual(value);
      }
      if (example.message) expect(res.body.message).toBe(example.message);
    }
  });
});
