import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { LocalRuntime } from '../../../local/runtime.js';
import type { Store } from '../../../shared/platform/store/client.js';
import { UserRepository } from '../../../shared/auth/repo.js';
import { Client, login, seedUser, type Session } from './fixtures.js';
import { ownRuntime } from './own-runtime.js';

/**
 * The last admin can be neither deleted, demoted nor deactivated, also when two admins act on each
 * other at the same moment. A table of this file's own, so that the admins in it are exactly the
 * ones the test made.
 */

let runtime: LocalRuntime;
let store: Store;
let baseUrl: string;
let client: Client;

beforeAll(async () => {
  ({ runtime, store, baseUrl } = await ownRuntime());
  client = new Client(undefined, baseUrl);
});
afterAll(async () => {
  await runtime?.stop();
});

async function adminCounter(): Promise<number> {
  const out = await store.doc.send(new GetCommand({ TableName: store.table, Key: { pk: 'COUNTER#users', sk: 'ADMINS' } }));
  return Number(out.Item?.count ?? 0);
}

/** Active admins, read from the user records themselves (not from the counter under test). */
async function activeAdmins(): Promise<string[]> {
  const ids: string[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await new UserRepository(store).list(100, startKey);
    ids.push(...page.items.filter((u) => u.is_active && u.roles.includes('admin')).map((u) => u.user_id));
    startKey = page.lastKey;
  } while (startKey);
  return ids;
}

async function adminSessionIn(): Promise<Session> {
  return login(await seedUser(['admin'], { store }), new Client(undefined, baseUrl));
}

describe('the last admin', () => {
  let only: Session;

  beforeAll(async () => {
    only = await adminSessionIn();
  });

  it('cannot be deleted or demoted (409), nor deactivate itself (403)', async () => {
    expect(await activeAdmins()).toEqual([only.userId]);
    const del = await client.call('DELETE', `/auth/users/${only.userId}`, { token: only.token });
    expect(del.status).toBe(409);
    expect(del.body).toMatchObject({ error: 'conflict', detail: 'The last admin cannot be deleted' });
    const demote = await client.call('PUT', `/auth/users/${only.userId}`, { token: only.token, body: { roles: ['operator'] } });
    expect(demote.status).toBe(409);
    expect(demote.body.detail).toBe('The last admin cannot be demoted or deactivated');
    const deactivate = await client.call('PUT', `/auth/users/${only.userId}`, { token: only.token, body: { is_active: false } });
    expect(deactivate.status).toBe(403);

    expect(await activeAdmins()).toEqual([only.userId]);
    expect(await adminCounter()).toBe(1);
    const me = await client.call('GET', '/auth/me', { token: only.token });
    expect(me.body.data.roles).toEqual(['admin']);
  });

  it('may be demoted once another admin exists, and the count follows', async () => {
    const second = await seedUser(['admin'], { store });
    expect(await adminCounter()).toBe(2);
    const demote = await client.call('PUT', `/auth/users/${second.userId}`, { token: only.token, body: { roles: ['viewer'] } });
    expect(demote.status, demote.text).toBe(200);
    expect(await adminCounter()).toBe(1);
    const promote = await client.call('PUT', `/auth/users/${second.userId}`, { token: only.token, body: { roles: ['admin', 'viewer'] } });
    expect(promote.status).toBe(200);
    expect(await adminCounter()).toBe(2);
    const del = await client.call('DELETE', `/auth/users/${second.userId}`, { token: only.token });
    expect(del.status).toBe(200);
    expect(await activeAdmins()).toEqual([only.userId]);
    expect(await adminCounter()).toBe(1);
  });
});

describe('two admins acting on each other at once', () => {
  const cases = [
    { name: 'demote', method: 'PUT', body: { roles: ['operator'] } },
    { name: 'deactivate', method: 'PUT', body: { is_active: false } },
    { name: 'delete', method: 'DELETE', body: undefined },
  ] as const;

  it.each(cases.flatMap((c) => [1, 2, 3].map((round) => [`${c.name} (round ${round})`, c] as const)))('%s leaves exactly one admin', async (_name, c) => {
    // Start from exactly two admins: demote every other admin of earlier rounds first.
    const a = await adminSessionIn();
    for (const id of await activeAdmins()) {
      if (id !== a.userId) await new UserRepository(store).update((await new UserRepository(store).get(id))!, { roles: ['viewer'] }, new Date().toISOString());
    }
    const b = await adminSessionIn();
    expect((await activeAdmins()).sort()).toEqual([a.userId, b.userId].sort());

    const [ab, ba] = await Promise.all([
      client.call(c.method, `/auth/users/${b.userId}`, { token: a.token, body: c.body }),
      client.call(c.method, `/auth/users/${a.userId}`, { token: b.token, body: c.body }),
    ]);
    // One wins. The other is refused: 409 when both got past authentication before either wrote, or
    // 401/403 when the winner had already removed the loser's admin rights by then.
    const winners = [ab, ba].filter((r) => r.status === 200);
    const loser = [ab, ba].find((r) => r.status !== 200);
    expect(winners, `${ab.text} | ${ba.text}`).toHaveLength(1);
    expect([401, 403, 409]).toContain(loser!.status);
    const admins = await activeAdmins();
    expect(admins).toHaveLength(1);
    expect(admins[0]).toBe(ab.status === 200 ? a.userId : b.userId);
    expect(await adminCounter()).toBe(1);
  });
});
