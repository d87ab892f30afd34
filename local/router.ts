import type { RouteSpec } from '../shared/platform/api/route.js';
import { routeKeyOf } from '../shared/platform/api/route.js';

interface Candidate {
  route: RouteSpec;
  path: string;
  segments: string[];
}

export interface RouteMatch {
  route: RouteSpec;
  routeKey: string;
  pathParameters: Record<string, string>;
}

/**
 * Matches a request the way API Gateway's HTTP API does: the most specific route wins, a static
 * segment beats a `{param}`, which beats a greedy `{proxy+}`.
 */
export class Router {
  private readonly byMethod = new Map<string, Candidate[]>();

  constructor(routes: readonly RouteSpec[]) {
    for (const route of routes) {
      for (const path of [route.path, ...(route.aliases ?? [])]) {
        const list = this.byMethod.get(route.method) ?? [];
        list.push({ route, path, segments: path.split('/').filter(Boolean) });
        this.byMethod.set(route.method, list);
      }
    }
    for (const list of this.byMethod.values()) list.sort((a, b) => compareSpecificity(a.segments, b.segments));
  }

  match(method: string, rawPath: string): RouteMatch | undefined {
    // HEAD reaches the GET routes marked `head`, under a route key of its own as on API Gateway.
    if (method === 'HEAD') {
      const get = this.match('GET', rawPath);
      return get?.route.head ? { ...get, routeKey: get.routeKey.replace(/^GET /, 'HEAD ') } : undefined;
    }
    const parts = rawPath.split('/').filter(Boolean);
    for (const c of this.byMethod.get(method) ?? []) {
      const params = matchSegments(c.segments, parts);
      if (params) return { route: c.route, routeKey: routeKeyOf(c.route.method, c.path), pathParameters: params };
    }
    return undefined;
  }

  /** Methods that some route allows on this path (for 405 vs 404 and CORS preflight). */
  allowedMethods(rawPath: string): string[] {
    const parts = rawPath.split('/').filter(Boolean);
    const out: string[] = [];
    for (const [method, list] of this.byMethod) if (list.some((c) => matchSegments(c.segments, parts))) out.push(method);
    if (this.match('HEAD', rawPath)) out.push('HEAD');
    return out;
  }
}

function rank(segment: string): number {
  if (segment.endsWith('+}')) return 2;
  if (segment.startsWith('{')) return 1;
  return 0;
}

function compareSpecificity(a: string[], b: string[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] === undefined) return 1;
    if (b[i] === undefined) return -1;
    const d = rank(a[i]) - rank(b[i]);
    if (d !== 0) return d;
  }
  return 0;
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const seg = pattern[i];
    if (seg.endsWith('+}')) {
      if (i >= parts.length) return undefined;
      params[seg.slice(1, -2)] = parts.slice(i).map(safeDecode).join('/');
      return params;
    }
    const part = parts[i];
    if (part === undefined) return undefined;
    if (seg.startsWith('{')) params[seg.slice(1, -1)] = safeDecode(part);
    else if (seg !== part) return undefined;
  }
  return parts.length === pattern.length ? params : undefined;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
