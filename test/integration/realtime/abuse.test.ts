import { beforeAll, describe, expect, it } from 'vitest';
import { ulid } from 'ulid';
import WebSocket from 'ws';
import { openSocket } from '../../support/client.js';
import { ConnectionRepository } from '../../../shared/realtime/repo.js';
import { MAX_CHANNELS_PER_CONNECTION, MESSAGE_LIMIT } from '../../../shared/realtime/channels.js';
import { sessionAs, testStore, type Session } from '../auth/fixtures.js';

/**
 * Abuse and races on the WebSocket API: a flooding connection is answered `rate_limited`, then closed
 * with 4008, while other users' HTTP requests go on; a connection holds a bounded number of channels;
 * concurrent subscribes all land; one connection's answers come in the order of its messages; the
 * server closes with documented codes (4001 session ended, 4003 rights changed).
 */

type Socket = Awaited<ReturnType<typeof openSocket>>;

function closeOf(ws: WebSocket, timeoutMs = 40_000): Promise<{ code: number; reason: string } | undefined> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve(undefined);
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

const taskChannels = (n: number) => Array.from({ length: n }, () => `task:${ulid()}`);

let viewer: Session;
beforeAll(async () => {
  viewer = await sessionAs(['viewer']);
});

describe('a flooding connection', () => {
  it('200 subscribes of 50 channels: answered rate_limited, then closed with 4008; another user meanwhile gets 200s', async () => {
    const other = await sessionAs(['user']);
    const socket = await openSocket('/ws', viewer.token);
    const closed = closeOf(socket.ws);
    for (let i = 0; i < 200; i++) socket.send({ action: 'subscribe', channels: taskChannels(50) });

    // Another user's requests while the flood is being handled.
    const statuses: number[] = [];
    let done = false;
    void closed.then(() => (done = true));
    for (let i = 0; i < 40 && !done; i++) statuses.push((await other.client.call('GET', '/api/v1/tasks', { token: other.token })).status);
    statuses.push((await other.client.call('GET', '/api/v1/tasks', { token: other.token })).status);

    const close = await closed;
    expect(close).toEqual({ code: 4008, reason: 'rate limited' });
    expect(statuses.every((s) => s === 200), JSON.stringify(statuses)).toBe(true);

    // Answered once when the limit was passed, once more on closing.
    const limited = socket.messages.filter((m) => m.type === 'error' && m.data.error === 'rate_limited');
    expect(limited.length).toBeGreaterThanOrEqual(2);
    expect(limited.at(-1).data.detail).toMatch(/closing the connection/);
    expect(limited[0].data.retry_after).toBeGreaterThanOrEqual(1);
    expect(socket.messages.at(-1)).toMatchObject({ type: 'closing', code: 4008, reason: 'rate limited' });
    // Handled: at most the window's allowance; of those only the first fits under the channel cap.
    expect(socket.messages.filter((m) => m.type === 'subscribed')).toHaveLength(1);
    // (A window that ends during the flood lets one more window's allowance through.)
    expect(socket.messages.filter((m) => m.type === 'error' && m.data.error === 'too_many_channels').length).toBeLessThanOrEqual(2 * MESSAGE_LIMIT.messages);
  });
});

describe('channels per connection', () => {
  it(`holds at most ${MAX_CHANNELS_PER_CONNECTION}: a subscribe beyond is refused whole, with a clear error`, async () => {
    const socket = await openSocket('/ws', viewer.token);
    const first = taskChannels(MAX_CHANNELS_PER_CONNECTION - 1);
    socket.send({ action: 'subscribe', channels: first });
    expect((await socket.waitFor((m) => m.type === 'subscribed')).data.channels).toHaveLength(MAX_CHANNELS_PER_CONNECTION - 1);
    const extra = taskChannels(2);
    socket.send({ action: 'subscribe', channels: extra });
    const refused = await socket.waitFor((m) => m.type === 'error');
    expect(refused.data).toMatchObject({ error: 'too_many_channels', limit: MAX_CHANNELS_PER_CONNECTION, channels: extra });
    expect(refused.data.detail).toMatch(/at most 50 channels/);
    const repo = new ConnectionRepository(testStore());
    for (const c of extra) expect(await repo.subscribers(c)).toEqual([]);
    // One more still fits; channels already held do not count twice.
    socket.send({ action: 'subscribe', channels: [extra[0], first[0]] });
    expect((await socket.waitFor((m) => m.type === 'subscribed' && m.data.channels.length === MAX_CHANNELS_PER_CONNECTION)).data.channels).toContain(extra[0]);
    await socket.close();
  });
});

describe('concurrent subscribes', () => {
  it('all land in the connection record, none overwrites another (no orphaned subscription items)', async () => {
    const repo = new ConnectionRepository(testStore());
    const id = `Race${ulid().slice(-11)}=`;
    const record = { connection_id: id, user_id: viewer.userId, username: viewer.username, permissions: ['tasks:read'], channels: [], preferences: {}, connected_at: new Date().toISOString(), expires_at: Math.floor(Date.now() / 1000) + 3600 };
    await repo.put(record);
    const channels = taskChannels(12);
    // Each as its own invocation would: from its own read of the record (no channels yet).
    await Promise.all(channels.map(async (c) => repo.subscribe({ ...record, channels: [] }, [c], MAX_CHANNELS_PER_CONNECTION)));
    expect((await repo.get(id))!.channels.sort()).toEqual([...channels].sort());
    await repo.remove(id);
    for (const c of channels) expect(await repo.subscribers(c)).toEqual([]);
  });

  it('over a socket: every channel of quick successive subscribes is held', async () => {
    const socket = await openSocket('/ws', viewer.token);
    const channels = taskChannels(10);
    for (const c of channels) socket.send({ action: 'subscribe', channels: [c] });
    const last = await socket.waitFor((m) => m.type === 'subscribed' && m.data.channels.length === channels.length);
    expect([...last.data.channels].sort()).toEqual([...channels].sort());
    await socket.close();
  });
});

describe('ordering', () => {
  it("answers one connection's messages in the order it sent them", async () => {
    const socket: Socket = await openSocket('/ws', viewer.token);
    const channels = taskChannels(8);
    const expected: string[] = [];
    for (const c of channels) {
      socket.send({ action: 'subscribe', channels: [c] });
      socket.send({ action: 'ping' });
      expected.push(`subscribed:${c}`, 'pong');
    }
    await socket.waitFor(() => socket.messages.length >= expected.length);
    // Each `subscribed` answer is named by the channel it added to those of the answers before it.
    const seen = new Set<string>();
    const order: string[] = [];
    for (const m of socket.messages) {
      if (m.type !== 'subscribed') {
        order.push(m.type);
        continue;
      }
      const added = (m.data.channels as string[]).filter((c) => !seen.has(c));
      for (const c of added) seen.add(c);
      order.push(`subscribed:${added.join(',')}`);
    }
    expect(order).toEqual(expected);
    await socket.close();
  });
});

describe('close codes', () => {
  it('logout closes with 4001 (after a closing message); a role change closes with 4003', async () => {
    const session = await sessionAs(['user']);
    const admin = await sessionAs(['admin']);
    const a = await openSocket('/ws', session.token);
    a.send({ action: 'ping' });
    await a.waitFor((m) => m.type === 'pong');
    const aClosed = closeOf(a.ws);
    expect((await session.client.call('POST', '/auth/logout', { token: session.token })).status).toBe(200);
    expect(await aClosed).toEqual({ code: 4001, reason: 'session ended' });
    expect(a.messages.at(-1)).toMatchObject({ type: 'closing', code: 4001, reason: 'session ended' });

    const again = await sessionAs(['user']);
    const b = await openSocket('/ws', again.token);
    b.send({ action: 'ping' });
    await b.waitFor((m) => m.type === 'pong');
    const bClosed = closeOf(b.ws);
    expect((await admin.client.call('PUT', `/auth/users/${again.userId}`, { token: admin.token, body: { roles: ['viewer'] } })).status).toBe(200);
    expect(await bClosed).toEqual({ code: 4003, reason: 'rights changed' });
  });

  it('a password change closes with 4001; a deletion with 4003', async () => {
    const admin = await sessionAs(['admin']);
    const first = await sessionAs(['user']);
    const a = await openSocket('/ws', first.token);
    const aClosed = closeOf(a.ws);
    expect((await admin.client.call('PUT', `/auth/users/${first.userId}`, { token: admin.token, body: { password: 'another-long-enough-password' } })).status).toBe(200);
    expect((await aClosed)?.code).toBe(4001);

    const second = await sessionAs(['user']);
    const b = await openSocket('/ws', second.token);
    const bClosed = closeOf(b.ws);
    expect((await admin.client.call('DELETE', `/auth/users/${second.userId}`, { token: admin.token })).status).toBe(200);
    expect((await bClosed)?.code).toBe(4003);
  });
});
