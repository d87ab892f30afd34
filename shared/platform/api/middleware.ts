import type { MiddlewareObj, Request } from '@middy/core';
import { newUlid } from '../ids.js';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { ApiError, routeNotFound, toApiError, invalidJson, isDependencyDown, payloadTooLarge, unsupportedMediaType } from './errors.js';
import { DomainError, dependencyUnavailable, forbidden, idempotencyConflict, conflict, rateLimited, unauthorized, validationError, type FieldError } from '../errors.js';
import { errorBody } from './envelope.js';
import { logger } from '../logger.js';
import { zodIssues } from './validation.js';
import type { RequestState } from './request-state.js';
import type { RouteSpec } from './route.js';
import type { ApiRequest } from './types.js';
import { getDeps } from '../runtime.js';
import { hasPermission } from '../permissions.js';
import type { HttpServices } from './http-services.js';
import { RateLimitRepository } from '../store/rate-limits.js';
import { ClaimLostError, IdempotencyRepository } from '../store/idempotency.js';

export type HttpContext = Context & { api?: RequestState };
export type HttpRequest = Request<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, HttpContext>;
type Middleware = MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, HttpContext>;

export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;

export function stateOf(request: HttpRequest): RequestState {
  const state = request.context.api;
  if (!state) throw new Error('request state missing: requestContext middleware must run first');
  return state;
}

/** Resolves the route from the event's routeKey and sets up the request's state. */
export function requestContext(routesByKey: Map<string, RouteSpec>): Middleware {
  return {
    name: 'requestContext',
    before: async (request) => {
      const event = request.event;
      const route = routesByKey.get(event.routeKey);
      if (!route) throw routeNotFound(event.routeKey);
      const requestId = event.requestContext?.requestId ?? request.context.awsRequestId ?? 'unknown';
      const headers = Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v ?? '']));
      const apiRequest: ApiRequest = {
        params: event.pathParameters ?? {},
        query: {},
        body: undefined,
        principal: null,
        requestId,
        ip: event.requestContext?.http?.sourceIp ?? 'unknown',
        userAgent: headers['user-agent'] ?? '',
        headers,
        route,
        deps: await getDeps(),
        audit: {},
      };
      // The child logger is made on first use: creating one costs more than the rest of a simple
      // request, and most requests never log.
      let child: RequestState['logger'] | undefined;
      request.context.api = {
        route,
        startedAt: Date.now(),
        get logger() {
          child ??= logger.createChild({ persistentKeys: { request_id: requestId, route: event.routeKey } });
          return child;
        },
        request: apiRequest,
      };
    },
  };
}

export const SECURITY_HEADERS: Record<string, string> = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Strict-Transport-Security': 'max-age=63072000; includeSubDomains',
  'Cache-Control': 'no-store',
};

/** The Content-Security-Policy of every answer that is not an HTML page. */
export const NO_CONTENT_POLICY = "default-src 'none'; frame-ancestors 'none'";

/** Security headers and the request id on every answer, errors included. */
export function securityHeaders(): Middleware {
  const apply = (request: HttpRequest) => {
    if (!request.response) return;
    const state = request.context.api;
    const headers: Record<string, string | number | boolean> = { ...SECURITY_HEADERS, ...(request.response.headers ?? {}) };
    // The API authenticates with bearer tokens, never with credentials a browser attaches: no answer says
    // `Access-Control-Allow-Credentials` (removed before the CORS middleware sees it, which would otherwise
    // take it as a reason to echo any origin).
    for (const name of Object.keys(headers)) if (name.toLowerCase() === 'access-control-allow-credentials') delete headers[name];
    if (!String(headers['Content-Type'] ?? '').startsWith('text/html')) {
      headers['Content-Security-Policy'] = NO_CONTENT_POLICY;
    }
    if (state) headers['X-Request-Id'] = state.request.requestId;
    request.response.headers = headers;
  };
  return { name: 'securityHeaders', after: apply, onError: apply };
}

/** Maps any error onto the contract's error format; unexpected ones become a bare 500. */
export function errorMapper(): Middleware {
  return {
    name: 'errorMapper',
    onError: async (request) => {
      const state = request.context.api;
      const requestId = state?.request.requestId ?? request.event.requestContext?.requestId ?? 'unknown';
      let err: unknown = request.error;
      if (!(err instanceof ApiError) && !(err instanceof DomainError) && isDependencyDown(err)) {
        const name = (err as { dependency?: unknown }).dependency;
        err = typeof name === 'string' ? dependencyUnavailable(name, [{ path: name, message: 'required dependency unavailable' }]) : dependencyUnavailable('A required service');
      }
      if (err instanceof DomainError) err = toApiError(err);
      if (err instanceof ApiError) {
        if (err.status >= 500) (state?.logger ?? logger).error('dependency error', { error: request.error as Error });
        request.response = {
          statusCode: err.status,
          headers: { 'Content-Type': 'application/json', ...(err.headers ?? {}) },
          body: errorBody(err.code, err.detail, requestId, err.errors),
        };
        return;
      }
      (state?.logger ?? logger).error('unhandled error', { error: err as Error });
      request.response = {
        statusCode: 500,
        headers: { 'Content-Type': 'application/json' },
        body: errorBody('internal_error', 'An internal error occurred', requestId),
      };
    },
  };
}

/** Resolves the bearer token to a principal (through the injected identity service) and enforces the route's permission. */
export function authenticate(services: Pick<HttpServices, 'identify' | 'verifyToken'>): Middleware {
  return {
    name: 'authenticate',
    before: async (request) => {
      const state = stateOf(request);
      const { route, request: req } = state;
      if (!route.permission) return;
      const header = req.headers['authorization'] ?? '';
      const match = /^Bearer\s+(.+)$/i.exec(header);
      if (!match) throw unauthorized('Missing bearer token');
      const token = match[1].trim();
      let identity;
      try {
        identity = await services.identify(req.deps, token);
      } catch (err) {
        // The table is down: a route an operator needs during the outage accepts the token on its signature.
        const storeDown = !(err instanceof DomainError) && isDependencyDown(err) && (err as { dependency?: unknown }).dependency === 'table';
        if (!(storeDown && route.authWhenStoreDown === 'token-only' && services.verifyToken)) throw err;
        identity = await services.verifyToken(req.deps, token);
        (state.logger ?? logger).warn('table unreachable: token accepted on its signature alone', { operation: route.operationId });
      }
      const { principal, account } = identity;
      req.principal = principal;
      req.currentUser = account;
      if (!hasPermission(principal.roles, route.permission)) throw forbidden(`Requires the ${route.permission} permission`);
    },
  };
}

/** Deepest nesting of a request body; a free-form field is held to MAX_JSON_DEPTH by its schema (422). */
export const MAX_BODY_DEPTH = 64;

/**
 * Whether the JSON text nests objects or arrays deeper than `max`: one pass over the characters,
 * skipping strings (and escapes in them); malformed text is left to JSON.parse.
 */
export function jsonNestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** Largest body looked at on a route that takes none (it is refused either way). */
const NO_BODY_MAX_BYTES = 16 * 1024;

/** Longest path parameter: ids are far shorter; a longer one is a 422 before it reaches a key. */
export const MAX_PATH_PARAM_LENGTH = 200;

/**
 * Content type, size limit and JSON (or form) parsing. A route that takes no body refuses a non-empty
 * one: 400 when it does not parse, 422 when it does.
 */
export function parseBody(): Middleware {
  return {
    name: 'parseBody',
    before: async (request) => {
      const { route, request: req } = stateOf(request);
      const event = request.event;
      const raw = event.body ? (event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body) : '';
      const limit = route.body ? (route.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES) : NO_BODY_MAX_BYTES;
      if (Buffer.byteLength(raw) > limit) throw payloadTooLarge(limit);
      if (raw.trim() === '') {
        req.body = undefined;
        return;
      }
      if (!route.body) {
        // A route that takes no body refuses one: unparseable is a 400, anything else a 422.
        if (jsonNestingExceeds(raw, MAX_BODY_DEPTH)) throw invalidJson(`Request body nests objects or arrays deeper than ${MAX_BODY_DEPTH} levels`);
        try {
          JSON.parse(raw);
        } catch {
          throw invalidJson();
        }
        throw validationError([{ path: 'body', message: 'this route takes no request body' }]);
      }
      const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      const accepted = route.acceptsForm ? ['application/json', 'application/x-www-form-urlencoded'] : ['application/json'];
      if (contentType === 'application/x-www-form-urlencoded' && route.acceptsForm) {
        req.body = Object.fromEntries(new URLSearchParams(raw));
        return;
      }
      if (contentType !== 'application/json' && !contentType.endsWith('+json')) throw unsupportedMediaType(accepted);
      // Before parsing: a body nested thousands of levels deep would reach recursive code (schemas,
      // JSON.stringify, the store's marshalling) and overflow the stack.
      if (jsonNestingExceeds(raw, MAX_BODY_DEPTH)) throw invalidJson(`Request body nests objects or arrays deeper than ${MAX_BODY_DEPTH} levels`);
      try {
        req.body = JSON.parse(raw);
      } catch {
        throw invalidJson();
      }
    },
  };
}

export { zodIssues };

/** Strict schema validation of path, query and body; every failing field is named. */
export function validate(): Middleware {
  return {
    name: 'validate',
    before: async (request) => {
      const { route, request: req } = stateOf(request);
      const errors: FieldError[] = [];
      const check = (schema: z.ZodType | undefined, value: unknown, where: string) => {
        if (!schema) return value;
        const result = schema.safeParse(value);
        if (result.success) return result.data;
        errors.push(...zodIssues(result.error, where === 'body' ? undefined : where));
        return undefined;
      };
      const rawParams = (req.params ?? {}) as Record<string, string | undefined>;
      const longParams = Object.entries(rawParams).filter(([, v]) => (v ?? '').length > MAX_PATH_PARAM_LENGTH);
      for (const [name] of longParams) errors.push({ path: `path.${name}`, message: `must be at most ${MAX_PATH_PARAM_LENGTH} characters` });
      if (longParams.length) throw validationError(errors);
      req.params = check(route.params, rawParams, 'path');
      // Only the query parameters the route declares; a route without a query schema takes none.
      const query = request.event.queryStringParameters ?? {};
      const known = route.query ? Object.keys(route.query.shape) : [];
      for (const name of Object.keys(query)) {
        if (!known.includes(name)) errors.push({ path: `query.${name.slice(0, 100)}`, message: 'unknown query parameter' });
      }
      const unknown = new Set(errors.map((e) => e.path));
      req.query = check(route.query, query, 'query');
      // A strict query schema names the same parameters again.
      if (unknown.size) {
        const kept = errors.filter((e) => !(e.message === 'Unknown field' && unknown.has(e.path)));
        errors.splice(0, errors.length, ...kept);
      }
      if (route.body) req.body = check(route.body, req.body ?? {}, 'body');
      if (errors.length) throw validationError(errors);
    },
  };
}

/** Fixed-window limits kept in the table: per IP and per account on the auth routes. */
export function rateLimit(): Middleware {
  return {
    name: 'rateLimit',
    before: async (request) => {
      const { route, request: req } = stateOf(request);
      if (!route.rateLimits?.length) return;
      const repo = new RateLimitRepository(req.deps.store);
      const now = req.deps.clock.now();
      for (const rule of route.rateLimits) {
        let subject: string | undefined;
        if (rule.by === 'ip') subject = req.ip;
        else {
          const body = req.body as Record<string, unknown> | undefined;
          const account = body?.username ?? body?.email;
          subject = typeof account === 'string' ? account.toLowerCase() : req.principal?.userId;
        }
        if (!subject) continue;
        const { count, resetAt } = await repo.hit(`${route.operationId}#${rule.by}#${subject}`, rule.windowSeconds, now);
        if (count > rule.limit) {
          throw rateLimited((resetAt.getTime() - now.getTime()) / 1000, `Too many requests; limit is ${rule.limit} per ${rule.windowSeconds} s`);
        }
      }
    },
  };
}

/** JSON with object keys sorted, so that the same body sent with its keys in another order hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * `Idempotency-Key`: the same key and body within 24 h replays the first answer and starts nothing new.
 * The claim carries the id of what the operation creates (`req.idempotency.resourceId`): an operation
 * writes its resource under that id on the condition that it does not exist, so a retry that takes over
 * the claim of an attempt that died after its write answers the stored resource instead of creating a
 * second one.
 */
export function idempotency(): Middleware {
  return {
    name: 'idempotency',
    before: async (request) => {
      const state = stateOf(request);
      const { route, request: req } = state;
      const key = req.headers['idempotency-key'];
      if (!route.idempotent || !key) return;
      if (key.length > 255) throw validationError([{ path: 'Idempotency-Key', message: 'must be at most 255 characters' }]);
      const scope = `${req.principal?.userId ?? 'anonymous'}#${route.operationId}#${key}`;
      const hash = createHash('sha256').update(canonicalJson({ params: req.params, body: req.body ?? null })).digest('base64url');
      const repo = new IdempotencyRepository(req.deps.store);
      let claim;
      try {
        claim = await repo.claim(scope, hash, req.deps.clock.now());
      } catch (err) {
        if (err instanceof ClaimLostError) throw conflict('A request with this Idempotency-Key is still in progress');
        throw err;
      }
      if (claim.claimed) {
        state.idempotencyClaim = { scope, token: claim.token };
        req.idempotency = { resourceId: claim.resourceId, takeover: claim.takeover };
        return;
      }
      if (claim.existing.request_hash !== hash) throw idempotencyConflict();
      if (claim.existing.state !== 'completed') throw conflict('A request with this Idempotency-Key is still in progress');
      state.replay = { statusCode: claim.existing.status_code ?? 200, body: claim.existing.response_body ?? '' };
    },
    after: async (request) => {
      const state = stateOf(request);
      const claim = state.idempotencyClaim;
      if (!claim || !request.response) return;
      const repo = new IdempotencyRepository(state.request.deps.store);
      const status = request.response.statusCode ?? 200;
      if (status >= 200 && status < 300) {
        if (!(await repo.complete(claim.scope, claim.token, status, String(request.response.body ?? '')))) {
          state.logger.warn('idempotency claim taken over before completion; the answer is not stored', { scope: claim.scope });
        }
      } else await repo.release(claim.scope, claim.token);
    },
    onError: async (request) => {
      const claim = request.context.api?.idempotencyClaim;
      if (!claim) return;
      await new IdempotencyRepository(request.context.api!.request.deps.store).release(claim.scope, claim.token).catch((err) => {
        // The claim stays until its takeover age; a retry before then gets a 409 rather than a second run.
        logger.error('idempotency claim not released', { scope: claim.scope, error: err as Error });
      });
    },
  };
}

/** Tries of an audit write before the entry goes to the audit retry queue. */
export const AUDIT_WRITE_ATTEMPTS = 3;

/** One audit record for every mutating request, denied and failed attempts included. */
export function audit(services: Pick<HttpServices, 'audit' | 'deferAudit'>): Middleware {
  const record = async (request: HttpRequest) => {
    const state = request.context.api;
    if (!state || !request.response) return;
    const { route, request: req } = state;
    if (route.method === 'GET' && !route.audit) return;
    const status = request.response.statusCode ?? 200;
    const outcome = status < 400 ? ('success' as const) : status === 401 || status === 403 ? ('denied' as const) : ('failure' as const);
    // Keys are built from the resource id: an id longer than any real one (refused by `validate`) is not one.
    const rawId = req.audit.resourceId ?? (route.resourceIdParam ? String((req.params as Record<string, unknown>)?.[route.resourceIdParam] ?? request.event.pathParameters?.[route.resourceIdParam] ?? '') || null : null);
    const resourceId = rawId && rawId.length <= MAX_PATH_PARAM_LENGTH ? rawId : null;
    const now = req.deps.clock.now();
    const entry = {
          audit_id: newUlid(now.getTime()),
          timestamp: now.toISOString(),
          actor_id: req.principal?.userId ?? null,
          actor_username: req.principal?.username ?? null,
          action: route.operationId,
          resource_type: req.audit.resourceType ?? route.resourceType ?? route.group,
          resource_id: resourceId,
          outcome,
          status_code: status,
          request_id: req.requestId,
          ip: req.ip,
          user_agent: req.userAgent.slice(0, 512),
          method: route.method,
          path: (request.event.rawPath ?? '').slice(0, 2048),
          ...(req.audit.details ? { details: req.audit.details } : {}),
    };
    // A failed write is tried again (a throttle, a lost connection), then handed to the audit retry
    // queue, whose consumer writes it later; only if that fails too is the entry lost, loudly.
    for (let attempt = 1; ; attempt++) {
      try {
        await services.audit(req.deps, entry);
        return;
      } catch (err) {
        if (attempt < AUDIT_WRITE_ATTEMPTS) {
          await new Promise((r) => setTimeout(r, 50 * 2 ** (attempt - 1)));
          continue;
        }
        const audit = { audit_id: entry.audit_id, action: entry.action, request_id: entry.request_id };
        if (!services.deferAudit) {
          state.logger.error('audit write failed', { error: err as Error, attempts: attempt, audit });
          return;
        }
        try {
          await services.deferAudit(req.deps, entry);
          state.logger.warn('audit write failed; the entry went to the audit retry queue', { error: err as Error, attempts: attempt, audit });
        } catch (deferErr) {
          state.logger.error('audit entry lost: its write and the audit retry queue both failed', { error: err as Error, queue_error: deferErr as Error, audit, entry });
        }
        return;
      }
    }
  };
  return { name: 'audit', after: record, onError: record };
}
