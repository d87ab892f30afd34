import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { FunctionGroup } from '../shared/platform/api/route.js';
import { errorBody } from '../shared/platform/api/envelope.js';
import { NO_CONTENT_POLICY, SECURITY_HEADERS } from '../shared/platform/api/middleware.js';
import { HTTP_INTEGRATION_TIMEOUT_SECONDS, SHARED_FILES } from '../shared/platform/infra.js';
import { openSharedFile } from '../shared/platform/local/file-share.js';
import fs from 'node:fs';
import { Router } from './router.js';
import { lambdaContext } from './lambda-context.js';

export type HttpFunction = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

/** API Gateway HTTP API limits the local runtime keeps. */
export const INTEGRATION_TIMEOUT_MS = HTTP_INTEGRATION_TIMEOUT_SECONDS * 1000;
export const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;

export interface HttpServerOptions {
  router: Router;
  functions: Partial<Record<FunctionGroup, HttpFunction>>;
  log: (line: string) => void;
  integrationTimeoutMs?: number;
  /** `CORS_ORIGINS` (config.corsOrigins): what the preflight allows; `*` allows any origin, without credentials. */
  corsOrigins?: string[];
  /** Files handed out by link (LocalFileShare): served under SHARED_FILES.localPath when the link's signature holds. */
  sharedFiles?: { dir: string; key: () => Promise<Buffer>; now: () => Date };
}

/** The preflight's `Access-Control-Allow-Origin`: `*`, the request's origin when listed, or none. */
function allowedOrigin(origins: string[], origin: string | undefined): string | undefined {
  if (origins.includes('*')) return '*';
  return origin && origins.includes(origin) ? origin : undefined;
}

const TEXT_TYPES = /^(application\/(json|x-www-form-urlencoded|xml|javascript)|text\/|.*\+json)/i;

/** Answers; the server's own answers (404, 413, preflight…) get the same security headers as the API's. */
function send(res: http.ServerResponse, status: number, headers: Record<string, string | number | boolean>, body?: string | Buffer) {
  if (res.headersSent) return;
  const lower = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
  const defaults = { ...SECURITY_HEADERS, 'Content-Security-Policy': NO_CONTENT_POLICY };
  const all = { ...Object.fromEntries(Object.entries(defaults).filter(([k]) => !lower.has(k.toLowerCase()))), ...headers };
  res.writeHead(status, Object.fromEntries(Object.entries(all).map(([k, v]) => [k, String(v)])));
  res.end(body);
}

/** Turns each HTTP request into an API Gateway HTTP API (payload 2.0) event and invokes the owning function. */
export function createHttpServer(options: HttpServerOptions) {
  const timeoutMs = options.integrationTimeoutMs ?? INTEGRATION_TIMEOUT_MS;
  let inFlight = 0;
  let drained: (() => void) | undefined;

  const server = http.createServer(async (req, res) => {
    inFlight++;
    const started = performance.now();
    const requestId = randomUUID();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    try {
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      // A request that declares no body has none: skip the stream iteration on the hot GET path.
      const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
      for await (const chunk of hasBody ? req : []) {
        size += (chunk as Buffer).length;
        if (size > MAX_PAYLOAD_BYTES) {
          tooLarge = true;
          break;
        }
        chunks.push(chunk as Buffer);
      }
      if (tooLarge) {
        send(res, 413, { 'Content-Type': 'application/json', Connection: 'close' }, errorBody('payload_too_large', `Request body exceeds ${MAX_PAYLOAD_BYTES} bytes`, requestId));
        return;
      }
      const body = Buffer.concat(chunks);

      if (method === 'OPTIONS') {
        const allowed = options.router.allowedMethods(url.pathname);
        const origin = allowedOrigin(options.corsOrigins ?? ['*'], req.headers.origin);
        send(res, allowed.length ? 204 : 404, {
          ...(origin ? { 'Access-Control-Allow-Origin': origin } : {}),
          'Access-Control-Allow-Methods': [...allowed, 'OPTIONS'].join(','),
          'Access-Control-Allow-Headers': 'Authorization,Content-Type,Idempotency-Key',
          'Access-Control-Max-Age': 600,
          Vary: 'Origin',
        });
        return;
      }
      if (options.sharedFiles && url.pathname.startsWith(SHARED_FILES.localPath) && (method === 'GET' || method === 'HEAD')) {
        const shared = options.sharedFiles;
        const found = await openSharedFile(shared.dir, await shared.key(), url.pathname, url.searchParams, shared.now());
        if (!found.ok) {
          send(res, found.status, { 'Content-Type': 'application/json' }, errorBody(found.code, found.detail, requestId));
          return;
        }
        const headers = {
          ...SECURITY_HEADERS,
          'Content-Security-Policy': NO_CONTENT_POLICY,
          'X-Request-Id': requestId,
          'Content-Type': found.contentType,
          'Content-Length': found.size,
          'Content-Disposition': `attachment; filename="${found.filename.replace(/["\\\r\n]/g, '_')}"`,
        };
        res.writeHead(200, Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)])));
        if (method === 'HEAD') {
          res.end();
          return;
        }
        // Streamed: a large file is never held in memory.
        await new Promise<void>((resolve) => {
          const stream = fs.createReadStream(found.file);
          stream.on('error', () => (res.destroy(), resolve()));
          res.on('close', () => (stream.destroy(), resolve()));
          stream.pipe(res);
        });
        return;
      }
      const match = options.router.match(method, url.pathname);
      if (!match) {
        send(res, 404, { 'Content-Type': 'application/json' }, errorBody('not_found', `No route for ${method} ${url.pathname}`, requestId));
        return;
      }
      const fn = options.functions[match.route.group];
      if (!fn) {
        send(res, 500, { 'Content-Type': 'application/json' }, errorBody('internal_error', 'An internal error occurred', requestId));
        return;
      }
      const event = toEvent(req, url, method, body, match.routeKey, match.pathParameters, requestId);
      const context = lambdaContext(`supervisor-${match.route.group}`, timeoutMs);
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        fn(event, context),
        new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
      if (result === 'timeout') {
        send(res, 504, { 'Content-Type': 'application/json' }, errorBody('gateway_timeout', 'The integration did not answer within 30 s', requestId));
        return;
      }
      const headers: Record<string, string | number | boolean> = { ...(result.headers ?? {}) };
      if (result.cookies?.length) res.setHeader('Set-Cookie', result.cookies);
      const payload = result.body === undefined ? undefined : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
      send(res, result.statusCode ?? 200, headers, payload);
    } catch (err) {
      options.log(`error handling ${method} ${url.pathname}: ${(err as Error).stack ?? err}`);
      send(res, 500, { 'Content-Type': 'application/json' }, errorBody('internal_error', 'An internal error occurred', requestId));
    } finally {
      const ms = performance.now() - started;
      options.log(`${new Date().toISOString()} ${method} ${url.pathname} ${res.statusCode} ${ms.toFixed(1)}ms request_id=${requestId}`);
      inFlight--;
      if (inFlight === 0) drained?.();
    }
  });
  server.keepAliveTimeout = 5000;

  return {
    server,
    /** Stop accepting, then wait for in-flight requests; answers how many there were. */
    async close(): Promise<number> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const waitedFor = inFlight;
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
      server.closeAllConnections();
      await closed;
      return waitedFor;
    },
  };
}

function toEvent(
  req: http.IncomingMessage,
  url: URL,
  method: string,
  body: Buffer,
  routeKey: string,
  pathParameters: Record<string, string>,
  requestId: string,
): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (name === 'cookie') {
      cookies.push(...String(value).split(';').map((c) => c.trim()).filter(Boolean));
      continue;
    }
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
  const contentType = headers['content-type'] ?? '';
  const isText = body.length === 0 || TEXT_TYPES.test(contentType) || contentType === '';
  const now = new Date();
  const sourceIp = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    ...(cookies.length ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    ...(Object.keys(pathParameters).length ? { pathParameters } : {}),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'localhost',
      http: { method, path: url.pathname, protocol: `HTTP/${req.httpVersion}`, sourceIp, userAgent: headers['user-agent'] ?? '' },
      requestId,
      routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length ? { body: isText ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: body.length > 0 && !isText,
  } as APIGatewayProxyEventV2;
}
