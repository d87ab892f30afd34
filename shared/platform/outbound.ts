/**
 * Every request this backend makes to an address a user configured (a provider's `base_url`, later a
 * plugin's) goes through `outboundFetch`: node:http(s) with request-filtering-agent, which checks the
 * address after DNS resolution, at connect time, so a name that resolves to a forbidden address (or
 * changes to one between two lookups) is refused before any connection is made. Refused: loopback,
 * private, link-local, CGNAT, unique-local, unspecified and the cloud metadata addresses. Loopback
 * and private networks are allowed only with OUTBOUND_ALLOW_PRIVATE=true (local development and the
 * test suite's fake servers); the metadata addresses never are. Redirects are not followed; the
 * connection has a timeout and the answer a size cap.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent';
import { getConfig } from './config.js';

/** Instance metadata and credential endpoints (AWS IMDS, ECS task credentials, EKS pod identity): never reachable. */
export const METADATA_ADDRESSES = ['169.254.169.254', '169.254.170.2', '169.254.170.23', 'fd00:ec2::254', 'fd00:ec2::23'] as const;

export const OUTBOUND_DEFAULTS = {
  connectTimeoutMs: 10_000,
  /** The whole exchange; a caller's own signal may end it sooner. */
  timeoutMs: 15 * 60_000,
  maxResponseBytes: 16 * 1024 * 1024,
};

/** A request refused by the guard (forbidden address, redirect, oversized answer, connect timeout). */
export class OutboundRefusedError extends Error {
  constructor(
    readonly code: 'forbidden_address' | 'redirect_refused' | 'response_too_large' | 'connect_timeout' | 'invalid_url',
    message: string,
  ) {
    super(message);
    this.name = 'OutboundRefusedError';
  }
}

export interface OutboundInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

export interface OutboundOptions {
  /** Defaults to the OUTBOUND_ALLOW_PRIVATE setting. */
  allowPrivate?: boolean;
  connectTimeoutMs?: number;
  timeoutMs?: number;
  maxResponseBytes?: number;
}

const agents = new Map<string, http.Agent>();

/**
 * The guarded agent for clients that take one (the AWS SDK's request handler for an endpoint a user
 * configured); `allowPrivate` defaults to the OUTBOUND_ALLOW_PRIVATE setting.
 */
export function guardedAgent(protocol: 'http:' | 'https:', allowPrivate = getConfig().outboundAllowPrivate): http.Agent {
  return agentFor(protocol, allowPrivate);
}

function agentFor(protocol: 'http:' | 'https:', allowPrivate: boolean): http.Agent {
  const key = `${protocol}${allowPrivate}`;
  let agent = agents.get(key);
  if (!agent) {
    const options = {
      keepAlive: true,
      allowPrivateIPAddress: allowPrivate,
      allowMetaIPAddress: false,
      denyIPAddressList: [...METADATA_ADDRESSES],
    };
    agent = protocol === 'https:' ? new RequestFilteringHttpsAgent(options) : new RequestFilteringHttpAgent(options);
    agents.set(key, agent);
  }
  return agent;
}

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/**
 * A fetch-like request through the guard, answering a WHATWG Response whose body is capped. Rejects
 * with an OutboundRefusedError when the guard refuses, with the signal's reason when aborted, and
 * with the socket's error otherwise.
 */
export function outboundFetch(url: string, init: OutboundInit = {}, options: OutboundOptions = {}): Promise<Response> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.reject(new OutboundRefusedError('invalid_url', 'not a valid URL'));
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    return Promise.reject(new OutboundRefusedError('invalid_url', `protocol ${target.protocol} is not allowed`));
  }
  if (target.username || target.password) return Promise.reject(new OutboundRefusedError('invalid_url', 'credentials in the URL are not allowed'));
  const allowPrivate = options.allowPrivate ?? getConfig().outboundAllowPrivate;
  const maxBytes = options.maxResponseBytes ?? OUTBOUND_DEFAULTS.maxResponseBytes;
  const connectTimeoutMs = options.connectTimeoutMs ?? OUTBOUND_DEFAULTS.connectTimeoutMs;
  const timeout = AbortSignal.timeout(options.timeoutMs ?? OUTBOUND_DEFAULTS.timeoutMs);
  const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
  if (signal.aborted) return Promise.reject(signal.reason);

  const hostname = target.hostname.replace(/^\[(.*)\]$/, '$1');
  const client = target.protocol === 'https:' ? https : http;
  return new Promise<Response>((resolve, reject) => {
    const req = client.request({
      protocol: target.protocol,
      hostname,
      port: target.port || undefined,
      path: `${target.pathname}${target.search}`,
      method: init.method ?? 'GET',
      headers: init.body !== undefined ? { ...init.headers, 'content-length': String(Buffer.byteLength(init.body)) } : init.headers,
      agent: agentFor(target.protocol as 'http:' | 'https:', allowPrivate),
      signal,
      ...(net.isIP(hostname) ? {} : { servername: hostname }),
    });
    const connectTimer = setTimeout(() => req.destroy(new OutboundRefusedError('connect_timeout', `no connection within ${connectTimeoutMs} ms`)), connectTimeoutMs);
    req.once('socket', (socket) => {
      if (!socket.connecting) clearTimeout(connectTimer);
      else socket.once('connect', () => clearTimeout(connectTimer));
    });
    req.once('error', (err) => {
      clearTimeout(connectTimer);
      reject(guardError(err) ?? (signal.aborted ? signal.reason : err));
    });
    req.once('response', (res) => {
      clearTimeout(connectTimer);
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location !== undefined) {
        res.destroy();
        reject(new OutboundRefusedError('redirect_refused', `answered a redirect (HTTP ${status}); redirects are not followed`));
        return;
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.destroy();
        reject(new OutboundRefusedError('response_too_large', `answer of ${declared} bytes is over the ${maxBytes} byte limit`));
        return;
      }
      const headers = new Headers();
      for (const [name, value] of Object.entries(res.headers)) {
        if (value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
      }
      const body = NULL_BODY_STATUSES.has(status) || status < 200 ? null : cappedBody(res, maxBytes);
      if (body === null) res.resume();
      try {
        resolve(new Response(body, { status: status < 200 || status > 599 ? 502 : status, statusText: res.statusMessage ?? '', headers }));
      } catch (err) {
        res.destroy();
        reject(err);
      }
    });
    req.end(init.body);
  });
}

/**
 * The answer's body as a web stream that errors once it passes `maxBytes` (and drops the connection).
 * Hand-made rather than Readable.toWeb, which on Node 20 throws out of band when data arrives after
 * the reader cancelled.
 */
function cappedBody(res: http.IncomingMessage, maxBytes: number): ReadableStream<Uint8Array> {
  let seen = 0;
  let settled = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        controller.error(err);
        res.destroy();
      };
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        seen += chunk.byteLength;
        if (seen > maxBytes) return fail(new OutboundRefusedError('response_too_large', `answer is over the ${maxBytes} byte limit`));
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) res.pause();
      });
      res.once('end', () => {
        if (settled) return;
        settled = true;
        controller.close();
      });
      res.once('error', fail);
      res.once('close', () => fail(Object.assign(new Error('the connection closed before the answer ended'), { code: 'ECONNRESET' })));
    },
    pull() {
      res.resume();
    },
    cancel() {
      settled = true;
      res.destroy();
    },
  });
}

/** The guard's refusal, however the agent reported it. */
function guardError(err: unknown): OutboundRefusedError | undefined {
  if (err instanceof OutboundRefusedError) return err;
  const message = (err as Error | undefined)?.message ?? '';
  if (/is not allowed\. Because/.test(message)) {
    return new OutboundRefusedError('forbidden_address', 'the address is not allowed (loopback, private, link-local or metadata)');
  }
  return undefined;
}
