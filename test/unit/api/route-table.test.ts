import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { ROUTES } from '../../../shared/routes.js';
import { FUNCTION_GROUPS } from '../../../shared/platform/api/route.js';
import { PERMISSIONS } from '../../../shared/platform/permissions.js';

/** Rules every entry of the route table keeps, so that later areas inherit them by adding routes. */

const keysOf = (r: (typeof ROUTES)[number]) => [r.path, ...(r.aliases ?? [])].map((p) => `${r.method} ${p}`);

/** The POST routes the contract says honour Idempotency-Key (matched by shape, whatever the parameter names). */
const IDEMPOTENT_BY_CONTRACT = [
  /^\/api\/v1\/tasks$/,
  /^\/api\/v1\/workflows\/\{[^}]+\}\/execute$/,
  /^\/api\/v1\/providers\/execute$/,
  /^\/api\/v1\/providers\/execute\/batch$/,
  /^\/api\/v1\/workflows\/schedules\/\{[^}]+\}\/trigger$/,
];

interface Def {
  type: string;
  catchall?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  left?: z.ZodType;
  right?: z.ZodType;
}
const defOf = (schema: z.ZodType) => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** Object schemas at the body's top level (through optional, default, pipe, union) that are not strict. */
function looseObjectsIn(schema: z.ZodType): string[] {
  const def = defOf(schema);
  switch (def.type) {
    case 'object':
      return def.catchall && defOf(def.catchall).type === 'never' ? [] : ['object without strictObject'];
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
      return looseObjectsIn(def.innerType!);
    case 'pipe':
      return looseObjectsIn(def.in!);
    case 'union':
      return def.options!.flatMap(looseObjectsIn);
    case 'intersection':
      return [...looseObjectsIn(def.left!), ...looseObjectsIn(def.right!)];
    default:
      return [];
  }
}

describe('the route table', () => {
  it('has unique operation ids and unique method + path pairs (aliases included)', () => {
    const ids = ROUTES.map((r) => r.operationId);
    expect(ids.length).toBe(new Set(ids).size);
    const keys = ROUTES.flatMap(keysOf);
    expect(keys.length).toBe(new Set(keys).size);
  });

  it('serves every auth route also under /api/v1', () => {
    for (const route of ROUTES.filter((r) => r.path.startsWith('/auth/'))) {
      expect(route.aliases, route.operationId).toContain(`/api/v1${route.path}`);
    }
  });

  it('names a known group and permission for every route', () => {
    for (const route of ROUTES) {
      expect(FUNCTION_GROUPS, route.operationId).toContain(route.group);
      if (route.permission !== null) expect(PERMISSIONS, route.operationId).toContain(route.permission);
    }
  });

  it('declares a schema for every path parameter a route has', () => {
    for (const route of ROUTES) {
      const names = [...route.path.matchAll(/\{([^}+]+)\+?\}/g)].map((m) => m[1]);
      if (!route.params) continue;
      expect(Object.keys(route.params.shape).sort(), route.operationId).toEqual(names.sort());
    }
  });

  it('rejects unknown fields in every request body (strict objects all the way down the top level)', () => {
    for (const route of ROUTES.filter((r) => r.body)) {
      expect(looseObjectsIn(route.body!), `${route.operationId} accepts unknown fields`).toEqual([]);
    }
  });

  it('(the strictness check itself tells loose from strict)', () => {
    expect(looseObjectsIn(z.object({ a: z.string() }))).toHaveLength(1);
    expect(looseObjectsIn(z.strictObject({ a: z.string() }).optional())).toEqual([]);
    expect(looseObjectsIn(z.discriminatedUnion('t', [z.strictObject({ t: z.literal('a') }), z.object({ t: z.literal('b') })]))).toHaveLength(1);
  });

  it('marks the routes that start work as idempotent, as the contract names them', () => {
    for (const route of ROUTES.filter((r) => r.method === 'POST' && IDEMPOTENT_BY_CONTRACT.some((re) => re.test(r.path)))) {
      expect(route.idempotent, `${route.method} ${route.path}`).toBe(true);
    }
  });

  it('keeps public routes to those the contract allows without a token', () => {
    const publicKeys = ROUTES.filter((r) => r.permission === null).map((r) => `${r.method} ${r.path}`);
    const allowed = [
      'POST /auth/login',
      'POST /auth/register',
      'POST /auth/refresh',
      'GET /api/v1/health',
      'GET /openapi.json',
      'GET /docs',
      'GET /docs/{proxy+}',
      'GET /.well-known/jwks.json',
    ];
    for (const key of publicKeys) expect(allowed, `${key} is public`).toContain(key);
  });
});
