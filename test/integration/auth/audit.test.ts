import { beforeAll, describe, expect, it } from 'vitest';
import { ulid } from 'ulid';
import { Client, login, seedUser, sessionAs, TEST_PASSWORD, type HttpResponse, type Session } from './fixtures.js';
import type { AuditRecord } from '../../../shared/audit/repo.js';

/**
 * The audit log: one record for every mutating request (successes, denials and failures), with who,
 * what, on which resource, the outcome, request id, source IP and user agent; filters; newest-first
 * cursor pagination; readable with `audit:read` only.
 */

type AuditItem = AuditRecord;

let admin: Session;
let reader: Session;

beforeAll(async () => {
  admin = await sessionAs(['admin']);
  reader = await sessionAs(['operator']);
});

async function auditPage(query: Record<string, string>, token = reader.token): Promise<HttpResponse> {
  return reader.client.call('GET', `/api/v1/audit-logs?${new URLSearchParams(query)}`, { token });
}

/** Every record matching the query, walking the cursor. */
async function auditAll(query: Record<string, string>): Promise<AuditItem[]> {
  const out: AuditItem[] = [];
  let cursor: string | null = null;
  do {
    const res: HttpResponse = await auditPage({ ...query, limit: '100', ...(cursor ? { cursor } : {}) });
    expect(res.status, res.text).toBe(200);
    out.push(...res.body.data.items);
    cursor = res.body.data.next_cursor;
  } while (cursor);
  return out;
}

async function recordOf(requestId: string, query: Record<string, string>): Promise<AuditItem | undefined> {
  return (await auditAll(query)).find((r) => r.request_id === requestId);
}

describe('audit records', () => {
  it('records a success with actor, action, resource, outcome, request id, IP and user agent', async () => {
    const agent = `audit-test/${ulid()}`;
    const username = `aud-${ulid().toLowerCase()}`;
    const res = await admin.client.call('POST', '/auth/users', { token: admin.token, body: { username, password: TEST_PASSWORD, roles: ['viewer'] }, headers: { 'user-agent': agent } });
    expect(res.status).toBe(201);
    const requestId = res.headers['x-request-id'];
    expect(requestId).toBeTruthy();
    const record = await recordOf(requestId, { actor_id: admin.userId });
    expect(record).toMatchObject({
      actor_id: admin.userId,
      actor_username: admin.username,
      action: 'createUser',
      resource_type: 'user',
      resource_id: res.body.data.user_id,
      outcome: 'success',
      status_code: 201,
      ip: admin.client.ip,
      user_agent: agent,
      method: 'POST',
      path: '/auth/users',
    });
    expect(Date.parse(record!.timestamp)).not.toBeNaN();
  });

  it('records a request without a token as denied (401), with no actor', async () => {
    const from = new Date(Date.now() - 1000).toISOString();
    const anonymous = new Client();
    const res = await anonymous.call('POST', '/api/v1/auth/users', { body: { username: 'x-nobody', password: TEST_PASSWORD }, headers: { 'user-agent': 'anonymous-agent' } });
    expect(res.status).toBe(401);
    const record = await recordOf(res.headers['x-request-id'], { action: 'createUser', outcome: 'denied', from });
    expect(record).toMatchObject({ actor_id: null, outcome: 'denied', status_code: 401, ip: anonymous.ip, user_agent: 'anonymous-agent', path: '/api/v1/auth/users' });
  });

  it('records a request without the permission as denied (403), with the actor', async () => {
    const user = await sessionAs(['user']);
    const target = await seedUser(['viewer']);
    const res = await user.client.call('DELETE', `/auth/users/${target.userId}`, { token: user.token });
    expect(res.status).toBe(403);
    const record = await recordOf(res.headers['x-request-id'], { actor_id: user.userId });
    expect(record).toMatchObject({ actor_id: user.userId, action: 'deleteUser', resource_type: 'user', resource_id: target.userId, outcome: 'denied', status_code: 403 });
  });

  it('records failures (409, 422, 404) with their status', async () => {
    const existing = await seedUser(['viewer']);
    const duplicate = await admin.client.call('POST', '/auth/users', { token: admin.token, body: { username: existing.username, password: TEST_PASSWORD } });
    const invalid = await admin.client.call('POST', '/auth/users', { token: admin.token, body: { username: 'ok-name', password: 'short' } });
    const unknownId = ulid();
    const missing = await admin.client.call('PUT', `/auth/users/${unknownId}`, { token: admin.token, body: { full_name: 'Ghost' } });
    expect([duplicate.status, invalid.status, missing.status]).toEqual([409, 422, 404]);
    const records = await auditAll({ actor_id: admin.userId, outcome: 'failure' });
    const byRequest = new Map(records.map((r) => [r.request_id, r]));
    expect(byRequest.get(duplicate.headers['x-request-id'])).toMatchObject({ action: 'createUser', status_code: 409, outcome: 'failure' });
    expect(byRequest.get(invalid.headers['x-request-id'])).toMatchObject({ action: 'createUser', status_code: 422, outcome: 'failure' });
    expect(byRequest.get(missing.headers['x-request-id'])).toMatchObject({ action: 'updateUser', status_code: 404, resource_id: unknownId });
  });

  it('records logins (the account on success, the name tried on failure) and not reads', async () => {
    const user = await seedUser(['viewer']);
    const from = new Date(Date.now() - 1000).toISOString();
    const session = await login(user);
    await session.client.call('POST', '/auth/login', { body: { username: user.username, password: 'wrong-password' } });
    const me = await session.client.call('GET', '/auth/me', { token: session.token });
    expect(me.status).toBe(200);
    const success = (await auditAll({ resource_type: 'session', resource_id: user.userId, from }))[0];
    expect(success).toMatchObject({ action: 'login', outcome: 'success', status_code: 200, details: { username: user.username } });
    const failed = (await auditAll({ action: 'login', outcome: 'denied', from })).filter((r) => r.details?.username === user.username);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ status_code: 401, actor_id: null, ip: session.client.ip });
    expect(await recordOf(me.headers['x-request-id'], { from })).toBeUndefined();
  });
});

describe('audit log queries', () => {
  let actor: Session;
  const targets: string[] = [];
  const requestIds: string[] = [];
  let middle: string;

  beforeAll(async () => {
    actor = await sessionAs(['admin']);
    for (let i = 0; i < 5; i++) {
      if (i === 2) {
        middle = new Date().toISOString();
        await new Promise((r) => setTimeout(r, 5));
      }
      const res = await actor.client.call('POST', '/auth/users', { token: actor.token, body: { username: `q-${ulid().toLowerCase()}`, password: TEST_PASSWORD } });
      expect(res.status).toBe(201);
      targets.push(res.body.data.user_id);
      requestIds.push(res.headers['x-request-id']);
    }
    const upd = await actor.client.call('PUT', `/auth/users/${targets[0]}`, { token: actor.token, body: { full_name: 'Changed' } });
    requestIds.push(upd.headers['x-request-id']);
  });

  it('pages newest first with a cursor, without gaps or repeats', async () => {
    const all = await auditAll({ actor_id: actor.userId });
    expect(all.map((r) => r.request_id)).toEqual([...requestIds].reverse());
    const pages: AuditItem[][] = [];
    let cursor: string | null = null;
    do {
      const res = await auditPage({ actor_id: actor.userId, limit: '2', ...(cursor ? { cursor } : {}) });
      expect(res.status).toBe(200);
      pages.push(res.body.data.items);
      cursor = res.body.data.next_cursor;
    } while (cursor);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 2]);
    const flat = pages.flat();
    expect(flat.map((r) => r.audit_id)).toEqual(all.map((r) => r.audit_id));
    const ids = flat.map((r) => r.audit_id);
    expect([...ids].sort().reverse()).toEqual(ids);
  });

  it('filters by action, resource type and id, outcome and time range', async () => {
    const updates = await auditAll({ actor_id: actor.userId, action: 'updateUser' });
    expect(updates.map((r) => r.request_id)).toEqual([requestIds[5]]);

    const onTarget = await auditAll({ resource_type: 'user', resource_id: targets[0] });
    expect(onTarget.map((r) => r.action)).toEqual(['updateUser', 'createUser']);
    expect(onTarget.every((r) => r.resource_id === targets[0])).toBe(true);
    expect(await auditAll({ resource_id: targets[0] })).toEqual(onTarget);
    expect(await auditAll({ resource_type: 'session', resource_id: targets[0] })).toEqual([]);

    expect((await auditAll({ actor_id: actor.userId, outcome: 'failure' })).length).toBe(0);
    expect((await auditAll({ actor_id: actor.userId, outcome: 'success' })).length).toBe(6);

    const later = await auditAll({ actor_id: actor.userId, from: middle });
    expect(later.map((r) => r.request_id)).toEqual(requestIds.slice(2).reverse());
    const earlier = await auditAll({ actor_id: actor.userId, to: middle });
    expect(earlier.map((r) => r.request_id)).toEqual(requestIds.slice(0, 2).reverse());
    const typeOnly = await auditAll({ resource_type: 'user', action: 'createUser', from: middle });
    expect(typeOnly.map((r) => r.request_id)).toEqual(expect.arrayContaining(requestIds.slice(2, 5)));
    expect(typeOnly.every((r) => r.action === 'createUser' && r.resource_type === 'user' && r.timestamp >= middle.slice(0, 19))).toBe(true);
  });

  it('takes a time range that starts or ends before 1970 (no 500)', async () => {
    const since = await auditAll({ actor_id: actor.userId, from: '1960-01-01T00:00:00Z' });
    expect(since.map((r) => r.request_id)).toEqual([...requestIds].reverse());
    expect(await auditAll({ actor_id: actor.userId, to: '1969-12-31T23:59:59Z' })).toEqual([]);
    // Without an index filter the month partitions are walked.
    const res = await auditPage({ from: '1960-01-01T00:00:00Z', to: '1969-12-31T23:59:59Z', limit: '5' });
    expect(res.status).toBe(200);
    expect(res.body.data.items).toEqual([]);
    expect((await auditPage({ from: '1960-01-01T00:00:00Z', limit: '1' })).status).toBe(200);
  });

  it('refuses a tampered cursor or one from another filter (400), and bad filters (422)', async () => {
    const first = await auditPage({ actor_id: actor.userId, limit: '1' });
    const cursor: string = first.body.data.next_cursor;
    const other = await auditPage({ actor_id: admin.userId, limit: '1', cursor });
    expect(other.status).toBe(400);
    expect(other.body.error).toBe('invalid_cursor');
    const tampered = await auditPage({ actor_id: actor.userId, limit: '1', cursor: cursor.replace(/^./, (c: string) => (c === 'e' ? 'f' : 'e')) });
    expect(tampered.status).toBe(400);
    const queries: Record<string, string>[] = [{ outcome: 'maybe' }, { from: 'yesterday' }, { actor_id: 'someone' }, { limit: '500' }];
    for (const query of queries) {
      const res = await auditPage(query);
      expect(res.status, JSON.stringify(query)).toBe(422);
      expect(res.body.errors[0].path).toBe(`query.${Object.keys(query)[0]}`);
    }
  });

  it('needs audit:read: operator and admin yes, user and viewer 403, no token 401', async () => {
    expect((await auditPage({ limit: '1' }, actor.token)).status).toBe(200);
    expect((await auditPage({ limit: '1' }, reader.token)).status).toBe(200);
    for (const role of ['user', 'viewer']) {
      const session = await sessionAs([role]);
      const res = await session.client.call('GET', '/api/v1/audit-logs', { token: session.token });
      expect(res.status, role).toBe(403);
    }
    expect((await new Client().call('GET', '/api/v1/audit-logs')).status).toBe(401);
  });
});
