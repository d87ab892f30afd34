import { inject } from 'vitest';
import { ulid } from 'ulid';
import WebSocket from 'ws';
import http from 'node:http';
import { randomInt } from 'node:crypto';
import { checkResponse, contractReady } from './contract.js';

export interface Response<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export const baseUrl = () => inject('baseUrl');

/**
 * Each test file speaks from its own loopback address (Linux routes all of 127/8 to loopback): the
 * auth routes limit logins per source IP, and files running side by side must not share that budget.
 */
const SOURCE_IP = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;

/** A small HTTP client for the running local runtime; every answer is checked against the OpenAPI document. */
export async function call<T = any>(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Response<T>> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | Buffer | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  const url = new URL(path, baseUrl());
  await contractReady();
  const { status, responseHeaders, text } = await new Promise<{ status: number; responseHeaders: Headers; text: string }>((resolve, reject) => {
    // A connection per request (as the other test client): a kept-alive socket the runtime closes after
    // 5 s idle can be reused at the moment it closes (ECONNRESET) when a loaded machine stalls a test.
    const req = http.request(url, { method, headers, localAddress: SOURCE_IP, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        resolve({ status: res.statusCode ?? 0, responseHeaders: h, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
  await checkResponse(method, url, status, responseHeaders.get('content-type') ?? undefined, text);
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status, headers: responseHeaders, body: parsed as T };
}

export interface Session {
  token: string;
  refreshToken: string;
  userId: string;
  username: string;
}

export async function login(username: string, password: string): Promise<Session> {
  const res = await call('POST', '/auth/login', { body: { username, password } });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { token: res.body.data.access_token, refreshToken: res.body.data.refresh_token, userId: res.body.data.user.user_id, username };
}

let adminLogin: Promise<Session> | undefined;

/**
 * A bootstrap admin, logged in once per test file: one of several accounts, taken at random, since the
 * per-account login limit (10 a minute) is shared by every file that logs the same account in.
 */
export async function adminSession(): Promise<Session> {
  const admins = inject('admins');
  const admin = admins[randomInt(admins.length)]!;
  adminLogin ??= login(admin.username, admin.password).catch((err) => {
    adminLogin = undefined;
    throw err;
  });
  return adminLogin;
}

/** Creates a user with the given role (through the admin API) and logs in as it. */
export async function userWithRole(role: 'admin' | 'operator' | 'user' | 'viewer', admin?: Session): Promise<Session> {
  const a = admin ?? (await adminSession());
  const username = `${role}-${ulid().toLowerCase()}`;
  const password = 'a-long-enough-password';
  const res = await call('POST', '/auth/users', { token: a.token, body: { username, password, roles: [role] } });
  if (res.status !== 201) throw new Error(`create user failed: ${res.status} ${JSON.stringify(res.body)}`);
  return login(username, password);
}

/** A WebSocket client that collects every message it receives. */
export async function openSocket(path = '/ws', token?: string) {
  const url = `${inject('wsUrl')}${path}${token ? `?token=${encodeURIComponent(token)}` : ''}`;
  const ws = new WebSocket(url);
  const messages: any[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString())));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  const waitFor = async (predicate: (m: any) => boolean, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = messages.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return {
    ws,
    messages,
    send: (msg: unknown) => ws.send(JSON.stringify(msg)),
    waitFor,
    close: () => new Promise<void>((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      ws.once('close', () => resolve());
      ws.close();
    }),
  };
}

/** Polls until the predicate holds (for asynchronous processing), without timing assertions. */
export async function eventually<T>(fn: () => Promise<T>, predicate: (v: T) => boolean, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await fn();
    if (predicate(last)) return last;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
