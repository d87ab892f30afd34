import http from 'node:http';
import { randomInt } from 'node:crypto';
import { inject } from 'vitest';
import { checkResponse, contractReady } from '../../support/contract.js';
import { ulid } from 'ulid';
import { Store } from '../../../shared/platform/store/client.js';
import { UserRepository, type UserRecord } from '../../../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../../../shared/auth/sessions-repo.js';
import { AuthService } from '../../../shared/auth/service.js';
import { getConfig } from '../../../shared/platform/config.js';
import { systemClock, type Clock } from '../../../shared/platform/ports.js';
import type { Deps } from '../../../shared/platform/runtime.js';
import type { Role } from '../../../shared/platform/permissions.js';

/**
 * Helpers for the foundation's integration tests.
 *
 * Every request goes out from its own loopback address (127.x.y.z): the auth routes limit logins per
 * source IP, and the whole suite shares one runtime, so tests that all spoke from 127.0.0.1 would eat
 * each other's budget. Users are seeded straight into the table (as `npm run admin:create` does), so
 * that no test has to log in as the shared bootstrap admin, whose per-account login limit is shared too.
 */

export const TEST_PASSWORD = 'a-long-enough-password';

export interface HttpResponse<T = any> {
  status: number;
  headers: Record<string, string>;
  body: T;
  text: string;
}

export interface RequestOptions {
  token?: string;
  /** Sent as JSON with `Content-Type: application/json` unless a content type is given. */
  body?: unknown;
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
  /** Source address; a fresh loopback address when absent. */
  ip?: string;
  baseUrl?: string;
  /** `false` for a server that is not this API (a test's own stand-in): its answers are not checked against the document. */
  contract?: false;
}

/** A loopback address other than 127.0.0.1 (Linux routes all of 127/8 to the loopback interface). */
export function loopbackIp(): string {
  return `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

export async function request<T = any>(method: string, path: string, options: RequestOptions = {}): Promise<HttpResponse<T>> {
  if (options.contract !== false) await contractReady();
  const url = new URL(path, options.baseUrl ?? inject('baseUrl'));
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let payload: string | Buffer | undefined;
  if (options.rawBody !== undefined) payload = options.rawBody;
  else if (options.body !== undefined) {
    payload = JSON.stringify(options.body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  }
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  return new Promise((resolve, reject) => {
    const req = http.request(
      { method, host: url.hostname, port: url.port, path: url.pathname + url.search, headers, localAddress: options.ip ?? loopbackIp(), agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            /* not JSON: keep the text */
          }
          const flat: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(', ') : v;
          const status = res.statusCode ?? 0;
          (options.contract === false ? Promise.resolve() : checkResponse(method, url, status, flat['content-type'], text)).then(() => resolve({ status, headers: flat, body: body as T, text }), reject);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A caller with a fixed source address (one "machine"). */
export class Client {
  constructor(
    readonly ip: string = loopbackIp(),
    readonly baseUrl?: string,
    readonly contract?: false,
  ) {}
  call<T = any>(method: string, path: string, options: Omit<RequestOptions, 'ip' | 'baseUrl'> = {}): Promise<HttpResponse<T>> {
    return request<T>(method, path, { ...options, ip: this.ip, baseUrl: this.baseUrl, ...(this.contract === false ? { contract: false } : {}) });
  }
}

const stores = new Map<string, Store>();

/** The table the runtime under test uses (the shared one unless stated). */
export function testStore(endpoint: string = inject('dynamodbEndpoint'), tableName = 'supervisor'): Store {
  const key = `${endpoint}|${tableName}`;
  let store = stores.get(key);
  if (!store) {
    store = new Store({ tableName, endpoint });
    stores.set(key, store);
  }
  return store;
}

export function authService(store: Store, clock: Clock = systemClock): AuthService {
  const deps = { config: getConfig(), store, clock } as unknown as Deps;
  return new AuthService(deps, {
    users: new UserRepository(store),
    sessions: new SessionRepository(store),
    attempts: new LoginAttemptRepository(store),
  });
}

export interface SeededUser {
  userId: string;
  username: string;
  email?: string;
  password: string;
  roles: string[];
}

/**
 * Writes a user straight into the table, as the bootstrap command does. `roles` may be empty: the
 * API never creates such a user, which is what makes it useful for testing that a permission check
 * really runs.
 */
export async function seedUser(roles: string[], options: { username?: string; email?: string; store?: Store } = {}): Promise<SeededUser> {
  const username = options.username ?? `t-${roles.join('-') || 'none'}-${ulid().toLowerCase()}`;
  const user: UserRecord = await authService(options.store ?? testStore()).createUser({
    username,
    password: TEST_PASSWORD,
    ...(options.email ? { email: options.email } : {}),
    roles: roles as Role[],
  });
  return { userId: user.user_id, username, email: user.email, password: TEST_PASSWORD, roles };
}

export interface Session {
  token: string;
  refreshToken: string;
  userId: string;
  username: string;
  password: string;
  client: Client;
}

export async function login(user: { username: string; password: string }, client: Client = new Client()): Promise<Session> {
  const res = await client.call('POST', '/auth/login', { body: { username: user.username, password: user.password } });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.text}`);
  return {
    token: res.body.data.access_token,
    refreshToken: res.body.data.refresh_token,
    userId: res.body.data.user.user_id,
    username: user.username,
    password: user.password,
    client,
  };
}

/** A freshly seeded user with these roles, logged in from its own address. */
export async function sessionAs(roles: string[], options: { store?: Store; baseUrl?: string } = {}): Promise<Session> {
  const user = await seedUser(roles, { store: options.store });
  return login(user, new Client(undefined, options.baseUrl));
}

export const errorPaths = (body: { errors?: { path: string }[] }) => (body.errors ?? []).map((e) => e.path).sort();
