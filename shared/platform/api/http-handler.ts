import middy, { type MiddlewareObj } from '@middy/core';
import httpCors from '@middy/http-cors';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { routeKeyOf, type FunctionGroup, type RouteSpec } from './route.js';
import { successBody } from './envelope.js';
import type { ApiRequest, ApiResult, Operation } from './types.js';
import {
  audit,
  authenticate,
  errorMapper,
  idempotency,
  parseBody,
  rateLimit,
  requestContext,
  securityHeaders,
  stateOf,
  validate,
  type HttpContext,
} from './middleware.js';
import { getConfig } from '../config.js';
import { logger } from '../logger.js';
import { handlerTracing } from '../tracing.js';
import type { HttpServices } from './http-services.js';

/** Every route key a route answers to (its path and its aliases; `HEAD …` too for a GET route marked `head`). */
export function routeKeysOf(route: RouteSpec): string[] {
  const paths = [route.path, ...(route.aliases ?? [])];
  const keys = paths.map((p) => routeKeyOf(route.method, p));
  if (route.head && route.method === 'GET') keys.push(...paths.map((p) => `HEAD ${p}`));
  return keys;
}

const DEFAULT_MESSAGES: Record<string, string> = { GET: 'OK', POST: 'Created', PUT: 'Updated', PATCH: 'Updated', DELETE: 'Deleted' };

/**
 * The Lambda handler of one endpoint group: the middleware stack, then dispatch on the event's
 * routeKey to the group's operation. A group passes its own route lists (not the whole table), so
 * its bundle carries only its own schemas.
 */
export function buildHttpHandler(
  group: FunctionGroup,
  routeLists: readonly (readonly RouteSpec[])[],
  operations: Record<string, Operation<never>>,
  services: HttpServices,
) {
  const routes = routeLists.flat().filter((r) => r.group === group);
  if (routes.length === 0) throw new Error(`group ${group} has no routes`);
  const routesByKey = new Map<string, RouteSpec>();
  for (const route of routes) {
    if (!operations[route.operationId]) throw new Error(`group ${group} has no operation for ${route.operationId}`);
    for (const key of routeKeysOf(route)) routesByKey.set(key, route);
  }
  const config = getConfig();

  const dispatch = async (_event: APIGatewayProxyEventV2, context: HttpContext): Promise<APIGatewayProxyStructuredResultV2> => {
    const state = context.api!;
    if (state.replay) {
      return {
        statusCode: state.replay.statusCode,
        headers: { 'Content-Type': 'application/json', 'Idempotent-Replayed': 'true' },
        body: state.replay.body,
      };
    }
    const operation = operations[state.route.operationId] as unknown as (req: ApiRequest) => Promise<ApiResult>;
    const result = await operation(state.request);
    const status = result.status ?? state.route.status ?? 200;
    if (result.raw) {
      return {
        statusCode: status,
        headers: { 'Content-Type': result.raw.contentType, ...(result.headers ?? {}) },
        body: result.raw.body,
        isBase64Encoded: result.raw.isBase64Encoded ?? false,
      };
    }
    if (status === 204) return { statusCode: 204, headers: result.headers ?? {} };
    return {
      statusCode: status,
      headers: { 'Content-Type': 'application/json', ...(result.headers ?? {}) },
      body: successBody(result.data, result.message ?? DEFAULT_MESSAGES[state.route.method] ?? 'OK'),
    };
  };

  const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, HttpContext>()
    // An X-Ray subsegment per invocation, in Lambda.
    .use(handlerTracing())
    // The Lambda context on every log line; `resetKeys` drops the request's keys when it ends.
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(requestContext(routesByKey))
    .use({ before: (request) => void logger.appendKeys({ request_id: stateOf(request).request.requestId }) })
    .use(
      httpCors({
        origins: config.corsOrigins,
        // Never `Access-Control-Allow-Credentials: true` (with `*` it would echo any origin).
        credentials: false,
        headers: 'Authorization,Content-Type,Idempotency-Key',
        exposeHeaders: 'X-Request-Id,Retry-After,Idempotent-Replayed',
        maxAge: 600,
      }) as unknown as MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, HttpContext>,
    )
    .use(securityHeaders())
    .use(audit(services))
    .use(errorMapper())
    .use(authenticate(services))
    .use(parseBody())
    .use(validate())
    .use(rateLimit())
    .use(idempotency())
    .handler(dispatch);
  // HEAD (routes marked `head`): everything GET does, then the answer without its body.
  return async (event: APIGatewayProxyEventV2, context: Context): Promise<APIGatewayProxyStructuredResultV2> => {
    const result = await handler(event, context as HttpContext);
    if (event.requestContext?.http?.method !== 'HEAD') return result;
    const { body: _body, isBase64Encoded: _encoded, ...rest } = result;
    return rest;
  };
}

export { stateOf };
