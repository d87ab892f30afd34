import type { z } from 'zod';
import type { Permission } from '../permissions.js';

/** One Lambda per endpoint group: the group names the function that owns a route. */
export const FUNCTION_GROUPS = [
  'tasks',
  'analytics',
  'analytics-advanced',
  'workflows',
  'resources',
  'providers',
  'plugins',
  'monitoring',
  'auth',
  'health',
  'docs',
] as const;
export type FunctionGroup = (typeof FUNCTION_GROUPS)[number];

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RateLimitRule {
  /** What the limit counts by. */
  by: 'ip' | 'account';
  /** Requests allowed per window. */
  limit: number;
  windowSeconds: number;
}

/**
 * A route as the route table declares it. The route table is the single source of truth: the local
 * runtime routes from it, CDK creates the API Gateway routes from it, the OpenAPI document is built
 * from it and the permission-matrix test iterates over it.
 */
export interface RouteSpec {
  /** Unique name of the operation; the owning function maps it to its implementation. */
  operationId: string;
  method: HttpMethod;
  /** API Gateway style path: `/api/v1/tasks/{task_id}`. */
  path: string;
  /** Further paths serving the same operation (e.g. `/api/v1/auth/*` for `/auth/*`). */
  aliases?: string[];
  group: FunctionGroup;
  /** `null` marks a public route (no token needed). */
  permission: Permission | null;
  summary: string;
  description?: string;
  tags?: string[];
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** Schema of `data` inside the success envelope. */
  response?: z.ZodType;
  /** Success status, 200 unless stated. */
  status?: number;
  /** Further success statuses with the same body (e.g. 202 while the work goes on), each with what it means. */
  alsoAnswers?: Record<number, string>;
  /**
   * A success answer that is not the JSON envelope (an HTML page, an asset, a JWK Set): the content
   * types it comes in and, for a JSON one, the schema of the whole body.
   */
  rawResponse?: { contentTypes: string[]; schema?: z.ZodType; description?: string };
  /** Further content types of the success answer besides the JSON envelope (a file the query asks for). */
  alsoContentTypes?: string[];
  /**
   * Error statuses the route answers besides those the document derives from its declaration
   * (401 on a public route that checks credentials, 429 from a limit the service keeps).
   */
  errors?: number[];
  /** Body size limit in bytes (default 256 KiB). */
  maxBodyBytes?: number;
  /** Accepts `application/x-www-form-urlencoded` besides JSON. */
  acceptsForm?: boolean;
  /** Honours the `Idempotency-Key` header. */
  idempotent?: boolean;
  rateLimits?: RateLimitRule[];
  /** Written to the audit log even though the method is GET (never for GET by default). */
  audit?: boolean;
  /**
   * A GET route that also answers HEAD: the same status and headers, no body (API Gateway gets a
   * `HEAD` route for each of its paths; uptime checkers and load balancers probe with HEAD).
   */
  head?: boolean;
  /** Resource type recorded in audit entries. */
  resourceType?: string;
  /** Name of the path parameter holding the resource id (for audit records). */
  resourceIdParam?: string;
  /**
   * `token-only`: when the table cannot be reached to read the token's session, the token's signature
   * and expiry (and the roles it carries) are enough. Only for read-only routes an operator needs during
   * an outage (the detailed health checks).
   */
  authWhenStoreDown?: 'token-only';
}


export function defineRoutes<const T extends readonly RouteSpec[]>(routes: T): T {
  return routes;
}

/** `POST /api/v1/tasks/{task_id}` → API Gateway route key. */
export function routeKeyOf(method: HttpMethod, path: string): string {
  return `${method} ${path}`;
}
