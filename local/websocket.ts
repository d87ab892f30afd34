import http from 'node:http';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { WebSocketServer, WebSocket } from 'ws';
import type { APIGatewayAuthorizerResult } from 'aws-lambda';

export interface WsFunctions {
  authorizer: (event: never) => Promise<APIGatewayAuthorizerResult>;
  connect: (event: never) => Promise<unknown>;
  disconnect: (event: never) => Promise<unknown>;
  message: (event: never) => Promise<unknown>;
}

/** Paths that open a WebSocket, and the stream each starts subscribed to. */
export const WS_PATHS: Record<string, string | undefined> = {
  '/ws': undefined,
  '/api/v1/analytics/advanced/stream': 'analytics',
  '/api/v1/monitoring/stream': 'monitoring',
};

interface LiveConnection {
  socket: WebSocket;
  connectedAt: Date;
  sourceIp: string;
  userAgent: string;
  lastActiveAt: Date;
  /** This connection's messages, handled one after another (in the order they arrived). */
  queue: Promise<unknown>;
  /** The close code a `closing` message announced: DeleteConnection then closes the socket with it. */
  closeWith?: { code: number; reason: string };
}

/** The code and reason of a `{type: "closing", code, reason}` message (4000-4999), if the body is one. */
function closingOf(body: Buffer): { code: number; reason: string } | undefined {
  if (body.length > 1024) return undefined;
  try {
    const msg = JSON.parse(body.toString('utf8')) as { type?: unknown; code?: unknown; reason?: unknown };
    if (msg?.type !== 'closing' || !Number.isInteger(msg.code) || (msg.code as number) < 4000 || (msg.code as number) > 4999) return undefined;
    return { code: msg.code as number, reason: typeof msg.reason === 'string' ? msg.reason.slice(0, 120) : '' };
  } catch {
    return undefined;
  }
}

const CONNECTIONS_PATH = /^\/(?:[^/]+\/)?@connections\/([^/]+)$/;
/** API Gateway's limit on the data of one PostToConnection. */
const MAX_POST_BYTES = 128 * 1024;

/** API Gateway connection ids are 16 characters of URL-safe base64 ending in `=`. */
function newConnectionId(): string {
  return randomBytes(11).toString('base64').slice(0, 15) + '=';
}

/**
 * The WebSocket API as API Gateway runs it: `$connect` (authorizer first, then the connect route),
 * `$default` for every message, `$disconnect`, and the `@connections` management endpoint that
 * the real ApiGatewayManagementApiClient talks to (410 GoneException for unknown ids).
 */
export function createWebSocketGateway(functions: WsFunctions, log: (line: string) => void) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 128 * 1024 });
  const live = new Map<string, LiveConnection>();
  const pending = new Set<Promise<unknown>>();

  const track = <T>(p: Promise<T>): Promise<T> => {
    pending.add(p);
    p.finally(() => pending.delete(p)).catch(() => undefined);
    return p;
  };

  function requestContext(routeKey: string, eventType: string, connectionId: string, host: string, sourceIp: string, authorizer?: Record<string, unknown>) {
    const now = new Date();
    return {
      routeKey,
      eventType,
      connectionId,
      messageId: randomUUID(),
      extendedRequestId: randomUUID(),
      requestId: randomUUID(),
      domainName: host,
      stage: 'local',
      apiId: 'local',
      requestTime: now.toUTCString(),
      requestTimeEpoch: now.getTime(),
      connectedAt: now.getTime(),
      messageDirection: 'IN',
      identity: { sourceIp },
      ...(authorizer ? { authorizer } : {}),
    };
  }

  async function handleUpgrade(req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!(url.pathname in WS_PATHS)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    const query: Record<string, string> = Object.fromEntries(url.searchParams);
    const stream = WS_PATHS[url.pathname];
    if (stream) query.stream = stream;
    const connectionId = newConnectionId();
    const sourceIp = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
    const host = req.headers.host ?? 'localhost';
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v ?? '')]));
    const reject = (status: number, text: string): void => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    try {
      const authResult = await functions.authorizer({
        type: 'REQUEST',
        methodArn: `arn:aws:execute-api:local:000000000000:local/local/$connect`,
        headers,
        queryStringParameters: query,
        requestContext: requestContext('$connect', 'CONNECT', connectionId, host, sourceIp),
      } as never);
      const allowed = authResult.policyDocument.Statement.some((s) => 'Effect' in s && s.Effect === 'Allow');
      if (!allowed) {
        log(`${new Date().toISOString()} WS $connect ${url.pathname} 401 (authorizer denied)`);
        return reject(401, 'Unauthorized');
      }
      const authorizer = { ...(authResult.context ?? {}), principalId: authResult.principalId };
      const result = (await functions.connect({
        headers,
        queryStringParameters: query,
        requestContext: requestContext('$connect', 'CONNECT', connectionId, host, sourceIp, authorizer),
        isBase64Encoded: false,
      } as never)) as { statusCode?: number } | undefined;
      const status = result?.statusCode ?? 200;
      if (status >= 300) return reject(status, 'Forbidden');
      wss.handleUpgrade(req, socket, head, (ws) => {
        const conn: LiveConnection = { socket: ws, connectedAt: new Date(), sourceIp, userAgent: headers['user-agent'] ?? '', lastActiveAt: new Date(), queue: Promise.resolve() };
        live.set(connectionId, conn);
        log(`${new Date().toISOString()} WS $connect ${url.pathname} 200 connection_id=${connectionId}`);
        ws.on('message', (data, isBinary) => {
          conn.lastActiveAt = new Date();
          const body = isBinary ? Buffer.from(data as Buffer).toString('base64') : data.toString();
          // One connection's messages are handled in order, one at a time (API Gateway invokes
          // `$default` once per message, concurrently: see docs/api.md). Messages still queued when
          // the socket closes are dropped, as API Gateway drops them.
          // The event is made on arrival, so its requestTimeEpoch is when the message came, as on AWS.
          const event = { body, isBase64Encoded: isBinary, requestContext: requestContext('$default', 'MESSAGE', connectionId, host, sourceIp, authorizer) };
          conn.queue = track(
            conn.queue.then(() => {
              if (ws.readyState !== WebSocket.OPEN) return undefined;
              return functions.message(event as never).catch((err) => log(`ws $default failed: ${(err as Error).stack}`));
            }),
          );
        });
        ws.on('close', () => {
          live.delete(connectionId);
          track(
            functions.disconnect({
              requestContext: requestContext('$disconnect', 'DISCONNECT', connectionId, host, sourceIp, authorizer),
              isBase64Encoded: false,
            } as never),
          ).catch((err) => log(`ws $disconnect failed: ${(err as Error).stack}`));
        });
      });
    } catch (err) {
      log(`ws $connect failed: ${(err as Error).stack}`);
      reject(500, 'Internal Server Error');
    }
  }

  /** `@connections/{id}`: POST sends, GET describes, DELETE closes; unknown ids answer 410 GoneException. */
  async function connectionsEndpoint(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = CONNECTIONS_PATH.exec(url.pathname);
    if (!match) return false;
    const id = decodeURIComponent(match[1]);
    const conn = live.get(id);
    if (!conn || conn.socket.readyState !== WebSocket.OPEN) {
      res.writeHead(410, { 'Content-Type': 'application/json', 'x-amzn-ErrorType': 'GoneException' });
      res.end(JSON.stringify({ message: `Connection ${id} is gone` }));
      return true;
    }
    switch (req.method) {
      case 'POST':
        conn.closeWith = closingOf(body) ?? conn.closeWith;
        await new Promise<void>((resolve, reject) => conn.socket.send(body, { binary: false }, (err) => (err ? reject(err) : resolve())));
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end();
        return true;
      case 'GET':
        res.writeHead(200, { 'Content-Type': 'application/json' });
        // The wire names of API Gateway's GetConnection (the SDK maps them to ConnectedAt, Identity…).
        res.end(
          JSON.stringify({
            connectedAt: conn.connectedAt.toISOString(),
            lastActiveAt: conn.lastActiveAt.toISOString(),
            identity: { sourceIp: conn.sourceIp, userAgent: conn.userAgent },
          }),
        );
        return true;
      case 'DELETE':
        conn.socket.close(conn.closeWith?.code ?? 1000, conn.closeWith?.reason ?? 'closed by server');
        res.writeHead(204);
        res.end();
        return true;
      default:
        res.writeHead(405);
        res.end();
        return true;
    }
  }

  return {
    handleUpgrade: (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => {
      track(handleUpgrade(req, socket, head));
    },
    connectionsEndpoint,
    connectionCount: () => live.size,
    async close(): Promise<void> {
      for (const conn of live.values()) conn.socket.close(1001, 'server shutting down');
      await Promise.allSettled([...pending]);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await Promise.allSettled([...pending]);
    },
  };
}

/** The access key id of a SigV4 `Authorization` header (`AWS4-HMAC-SHA256 Credential=<key>/<date>/…`). */
function signedAccessKey(header: string | undefined): string | undefined {
  return /^AWS4-HMAC-SHA256 Credential=([^/\s,]+)\//.exec(header ?? '')?.[1];
}

function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * The `@connections` management endpoint on a server of its own, which the runtime listens with on
 * 127.0.0.1 only (never on the public HTTP port). It admits only requests signed with `accessKeyId`,
 * which only the runtime's own ApiGatewayManagementApiClient carries (the SDK signs every request with
 * SigV4): anything else gets 403 ForbiddenException, as API Gateway answers an unsigned call.
 */
export function createConnectionsServer(
  gateway: Pick<ReturnType<typeof createWebSocketGateway>, 'connectionsEndpoint'>,
  accessKeyId: string,
): http.Server {
  return http.createServer(async (req, res) => {
    const answer = (status: number, type: string, message: string) => {
      if (res.headersSent) return;
      res.writeHead(status, { 'Content-Type': 'application/json', 'x-amzn-ErrorType': type, Connection: 'close' });
      res.end(JSON.stringify({ message }));
    };
    try {
      if (!sameSecret(signedAccessKey(req.headers.authorization) ?? '', accessKeyId)) {
        req.resume();
        return answer(403, 'ForbiddenException', 'Forbidden');
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > MAX_POST_BYTES) return answer(413, 'PayloadTooLargeException', `Data exceeds ${MAX_POST_BYTES} bytes`);
        chunks.push(chunk as Buffer);
      }
      if (!(await gateway.connectionsEndpoint(req, res, Buffer.concat(chunks)))) answer(404, 'NotFoundException', 'Not Found');
    } catch {
      answer(500, 'InternalServerErrorException', 'Internal server error');
    }
  });
}
