import http from 'node:http';
import { randomInt } from 'node:crypto';
import { inject } from 'vitest';
import { ulid } from 'ulid';
import { call, eventually, type Session } from '../../support/client.js';
import { Store } from '../../../shared/platform/store/client.js';
import { UserRepository } from '../../../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../../../shared/auth/sessions-repo.js';
import { AuthService } from '../../../shared/auth/service.js';
import { getConfig } from '../../../shared/platform/config.js';
import { systemClock } from '../../../shared/platform/ports.js';
import type { Deps } from '../../../shared/platform/runtime.js';
import type { Role } from '../../../shared/platform/permissions.js';

const PASSWORD = 'a-long-enough-password';
let sharedStore: Store | undefined;

/**
 * A user written straight into the table (as `npm run admin:create` does) and logged in from a loopback
 * address of its own, so that these tests never touch the login rate limits the whole suite shares.
 */
export async function sessionAs(role: Role, options: { store?: Store; baseUrl?: string } = {}): Promise<Session> {
  const store = options.store ?? (sharedStore ??= new Store({ tableName: 'supervisor', endpoint: inject('dynamodbEndpoint') }));
  const deps = { config: getConfig(), store, clock: systemClock } as unknown as Deps;
  const auth = new AuthService(deps, { users: new UserRepository(store), sessions: new SessionRepository(store), attempts: new LoginAttemptRepository(store) });
  const username = `tasks-${role}-${ulid().toLowerCase()}`;
  const user = await auth.createUser({ username, password: PASSWORD, roles: [role] });
  const url = new URL('/auth/login', options.baseUrl ?? inject('baseUrl'));
  const payload = JSON.stringify({ username, password: PASSWORD });
  const body = await new Promise<any>((resolve, reject) => {
    const req = http.request(
      {
        method: 'POST',
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) },
        localAddress: `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(Buffer.concat(chunks).toString())) : reject(new Error(`login ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
  return { token: body.data.access_token, refreshToken: body.data.refresh_token, userId: user.user_id, username };
}

export const TERMINAL = ['completed', 'failed', 'cancelled'];

/** Registers a provider of type `local` (offline, deterministic) with the given pricing and streaming pace. */
export async function registerLocalProvider(admin: Session, options: { pricing?: { input_per_million: number; output_per_million: number }; chunkDelayMs?: number } = {}) {
  const providerId = `tasks-${ulid().toLowerCase().slice(-12)}`;
  const res = await call('POST', `/api/v1/providers/${providerId}/register`, {
    token: admin.token,
    body: {
      type: 'local',
      name: `tasks test ${providerId}`,
      pricing: options.pricing ?? { input_per_million: 0, output_per_million: 0 },
      ...(options.chunkDelayMs !== undefined ? { settings: { chunk_delay_ms: options.chunkDelayMs } } : {}),
    },
  });
  if (res.status !== 201) throw new Error(`register provider failed: ${res.status} ${JSON.stringify(res.body)}`);
  return providerId;
}

export async function createAgent(admin: Session, body: Record<string, unknown>) {
  const res = await call('POST', '/api/v1/agents', { token: admin.token, body: { name: `agent-${ulid()}`, ...body } });
  if (res.status !== 201) throw new Error(`create agent failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data as { agent_id: string; name: string };
}

export async function createTask(session: Session, body: Record<string, unknown>) {
  const res = await call('POST', '/api/v1/tasks', { token: session.token, body });
  if (res.status !== 201) throw new Error(`create task failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data as { task_id: string; status: string };
}

export async function getTask(session: Session, taskId: string) {
  const res = await call('GET', `/api/v1/tasks/${taskId}`, { token: session.token });
  if (res.status !== 200) throw new Error(`get task failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data;
}

export async function waitForStatus(session: Session, taskId: string, statuses: string[], timeoutMs = 30_000) {
  return eventually(() => getTask(session, taskId), (t) => statuses.includes(t.status), timeoutMs);
}

export async function sessionsOf(session: Session, taskId: string) {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const res: { status: number; body: any } = await call('GET', `/api/v1/tasks/${taskId}/sessions?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token: session.token });
    if (res.status !== 200) throw new Error(`sessions failed: ${res.status} ${JSON.stringify(res.body)}`);
    items.push(...res.body.data.items);
    cursor = res.body.data.next_cursor;
  } while (cursor);
  return items;
}

export async function stats(session: Session) {
  const res = await call('GET', '/api/v1/tasks/stats/summary', { token: session.token });
  if (res.status !== 200) throw new Error(`stats failed: ${res.status}`);
  return res.body.data;
}

/** Every task a user created, through the list endpoint's pagination. */
export async function tasksOf(session: Session, query = '') {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const res: { status: number; body: any } = await call('GET', `/api/v1/tasks?limit=100&created_by=${session.userId}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token: session.token });
    if (res.status !== 200) throw new Error(`list failed: ${res.status} ${JSON.stringify(res.body)}`);
    items.push(...res.body.data.items);
    cursor = res.body.data.next_cursor;
  } while (cursor);
  return items;
}

export const customTask = (prompt: string, extra: Record<string, unknown> = {}) => ({ type: 'custom', payload: { prompt }, ...extra });
