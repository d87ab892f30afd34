import type { z } from 'zod';
import type { Deps } from '../runtime.js';
import type { RouteSpec } from './route.js';
import type { Principal } from '../principal.js';

type Infer<T, Otherwise> = T extends z.ZodType ? z.infer<T> : Otherwise;
type Strings = Record<string, string | undefined>;

export interface ApiRequest<P = unknown, Q = unknown, B = unknown> {
  params: P;
  query: Q;
  body: B;
  /** Set on every route that needs a token; null on public routes. */
  principal: Principal | null;
  /** The caller's account record as the authentication step read it (saves a second read); its area knows its type. */
  currentUser?: unknown;
  requestId: string;
  ip: string;
  userAgent: string;
  headers: Record<string, string>;
  route: RouteSpec;
  deps: Deps;
  /**
   * Set when the request holds an `Idempotency-Key` claim: the id the operation gives what it creates
   * (written only if absent), and whether an earlier attempt of the same request may have stored it.
   */
  idempotency?: { resourceId: string; takeover: boolean };
  /** Lets an operation name the resource it created or touched, for the audit record. */
  audit: { resourceId?: string; resourceType?: string; details?: Record<string, unknown> };
}

/**
 * What an operation answers. `D` is the route's declared response (`z.output` of its `response`
 * schema), so an operation that returns another shape does not compile.
 */
export interface ApiResult<D = unknown> {
  status?: number;
  data?: D;
  message?: string;
  headers?: Record<string, string>;
  /** A non-envelope answer (HTML, CSV, a JWKS document). */
  raw?: { contentType: string; body: string; isBase64Encoded?: boolean };
}

/** `data` of a route's success answer, as its response schema declares it. */
export type ResponseData<R extends RouteSpec> = Infer<R['response'], unknown>;

export type Operation<R extends RouteSpec = RouteSpec> = (
  req: ApiRequest<Infer<R['params'], Strings>, Infer<R['query'], Strings>, Infer<R['body'], undefined>>,
) => Promise<ApiResult<ResponseData<R>>>;

/** The implementations a function group provides, one per operationId of its routes. */
export type Operations<Rs extends readonly RouteSpec[]> = {
  [R in Rs[number] as R['operationId']]: Operation<R>;
};

/** A principal that is certainly there (routes with a permission). */
export function requirePrincipal(req: ApiRequest): Principal {
  if (!req.principal) throw new Error('route without a permission used as authenticated');
  return req.principal;
}
