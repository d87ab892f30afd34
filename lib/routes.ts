import { FUNCTION_GROUPS, routeKeyOf, type FunctionGroup, type HttpMethod, type RouteSpec } from '../shared/platform/api/route.js';

/** One API Gateway route: a (method, path) pair and the group whose Lambda serves it. */
export interface ApiRoute {
  /** HEAD for the GET routes the table marks `head`. */
  method: HttpMethod | 'HEAD';
  path: string;
  /** `GET /api/v1/tasks` */
  routeKey: string;
  group: FunctionGroup;
}

/**
 * Routes the docs function serves even when the route table does not list them
 * (the OpenAPI document and the Swagger UI with its assets).
 */
export const DOCS_ROUTES: ReadonlyArray<{ method: HttpMethod; path: string }> = [
  { method: 'GET', path: '/openapi.json' },
  { method: 'GET', path: '/docs' },
  { method: 'GET', path: '/docs/{proxy+}' },
];

/**
 * Expands the route table into API Gateway routes: one per (method, path) and per alias path,
 * plus the docs routes, deduplicated by route key. Two different groups claiming the same route key
 * is a route-table bug and fails the synth.
 */
export function apiRoutes(routes: readonly RouteSpec[]): ApiRoute[] {
  const byKey = new Map<string, ApiRoute>();
  const add = (method: HttpMethod | 'HEAD', path: string, group: FunctionGroup): void => {
    const routeKey = method === 'HEAD' ? `HEAD ${path}` : routeKeyOf(method, path);
    const existing = byKey.get(routeKey);
    if (existing) {
      if (existing.group !== group) {
        throw new Error(`route ${routeKey} is claimed by groups "${existing.group}" and "${group}"`);
      }
      return;
    }
    if (!(FUNCTION_GROUPS as readonly string[]).includes(group)) {
      throw new Error(`route ${routeKey} names unknown function group "${group}"`);
    }
    if (!path.startsWith('/')) throw new Error(`route ${routeKey}: path must start with "/"`);
    byKey.set(routeKey, { method, path, routeKey, group });
  };
  for (const route of routes) {
    add(route.method, route.path, route.group);
    for (const alias of route.aliases ?? []) add(route.method, alias, route.group);
    if (route.head && route.method === 'GET') for (const path of [route.path, ...(route.aliases ?? [])]) add('HEAD', path, route.group);
  }
  for (const { method, path } of DOCS_ROUTES) add(method, path, 'docs');
  return [...byKey.values()];
}

/** The groups that own at least one route, in `FUNCTION_GROUPS` order: each gets one Lambda. */
export function routedGroups(routes: readonly ApiRoute[]): FunctionGroup[] {
  const used = new Set(routes.map((r) => r.group));
  return FUNCTION_GROUPS.filter((g) => used.has(g));
}
