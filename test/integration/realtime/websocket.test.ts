import { beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ulid } from 'ulid';
import WebSocket from 'ws';
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { openSocket, eventually } from '../../support/client.js';
import { ConnectionRepository } from '../../../shared/realtime/repo.js';
import { ApiGatewayConnections } from '../../../shared/platform/aws/connections.js';
import { localEndpoint } from '../../../shared/platform/aws/util.js';
import { publish } from '../../../shared/realtime/publisher.js';
import { systemClock } from '../../../shared/platform/ports.js';
import type { Deps } from '../../../shared/platform/runtime.js';
import { login, seedUser, sessionAs, testStore, type Session } from '../auth/fixtures.js';

/**
 * The WebSocket API over real sockets: `$connect` authorisation, the stream paths, the client actions,
 * and the `@connections` endpoint driven by the real ApiGatewayManagementApiClient (410 for gone ids).
 */

type Socket = Awaited<ReturnType<typeof openSocket>>;

let viewer: Session;
beforeAll(async () => {
  viewer = await sessionAs(['viewer']);
});

async function refusal(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${inject('wsUrl')}${path}`);
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('open', () => {
      ws.close();
      reject(new Error(`${path} was accepted`));
    });
    ws.once('error', () => undefined);
  });
}

/** The connection id the server gave this socket, found through a channel only it is subscribed to. */
async function connectionIdOf(socket: Socket): Promise<string> {
  const channel = `task:${ulid()}`;
  socket.send({ action: 'subscribe', channels: [channel] });
  await socket.waitFor((m) => m.type === 'subscribed' && m.data.channels.includes(channel));
  const subs = await new ConnectionRepository(testStore()).subscribers(channel);
  expect(subs).toHaveLength(1);
  return subs[0].connection_id;
}

const management = () => new ApiGatewayManagementApiClient({ ...localEndpoint(inject('connectionsUrl')), maxAttempts: 1 });

describe('$connect', () => {
  it('refuses a socket without a token, with a bad one, or with a revoked one (401)', async () => {
    expect(await refusal('/ws')).toBe(401);
    expect(await refusal('/ws?token=not-a-token')).toBe(401);
    expect(await refusal(`/api/v1/monitoring/stream?token=${viewer.token.slice(0, -3)}abc`)).toBe(401);
    const session = await login(await seedUser(['user']));
    await session.client.call('POST', '/auth/logout', { token: session.token });
    expect(await refusal(`/ws?token=${session.token}`)).toBe(401);
  });

  it('answers 404 for paths that are not WebSocket endpoints', async () => {
    expect(await refusal(`/ws/other?token=${viewer.token}`)).toBe(404);
  });

  it('accepts a valid token at /ws with no channel subscribed', async () => {
    const socket = await openSocket('/ws', viewer.token);
    socket.send({ action: 'subscribe', channels: ['tasks'] });
    const reply = await socket.waitFor((m) => m.type === 'subscribed');
    expect(reply.data.channels).toEqual(['tasks']);
    await socket.close();
  });

  it.each([
    ['/api/v1/analytics/advanced/stream', 'analytics'],
    ['/api/v1/monitoring/stream', 'monitoring'],
  ])('accepts %s and starts subscribed to %s', async (path, channel) => {
    const socket = await openSocket(path, viewer.token);
    socket.send({ action: 'subscribe', channels: ['alerts'] });
    const reply = await socket.waitFor((m) => m.type === 'subscribed');
    expect(reply.data.channels.sort()).toEqual(['alerts', channel].sort());
    await socket.close();
  });
});

describe('names that are not channels or streams', () => {
  it('accepts ?stream= naming no stream (constructor, toString) with nothing subscribed', async () => {
    for (const stream of ['constructor', 'toString', 'nope']) {
      const ws = new WebSocket(`${inject('wsUrl')}/ws?token=${encodeURIComponent(viewer.token)}&stream=${stream}`);
      const status = await new Promise<number>((resolve) => {
        ws.once('open', () => resolve(101));
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('error', () => resolve(-1));
      });
      expect(status, stream).toBe(101);
      ws.close();
    }
  });

  it('answers invalid_channel (not forbidden) for inherited object keys', async () => {
    const socket = await openSocket('/ws', viewer.token);
    socket.send({ action: 'subscribe', channels: ['constructor', 'toString', '__proto__'] });
    const reply = await socket.waitFor((m) => m.type === 'error');
    expect(reply.data.error).toBe('invalid_channel');
    expect(reply.data.channels).toEqual(['constructor', 'toString', '__proto__']);
    await socket.close();
  });
});

describe('client actions', () => {
  let socket: Socket;
  beforeAll(async () => {
    socket = await openSocket('/ws', viewer.token);
  });

  it('answers ping with pong', async () => {
    socket.send({ action: 'ping' });
    const pong = await socket.waitFor((m) => m.type === 'pong');
    expect(Date.parse(pong.timestamp)).not.toBeNaN();
  });

  it('subscribes and unsubscribes', async () => {
    const task = `task:${ulid()}`;
    socket.send({ action: 'subscribe', channels: ['workflows', task, 'metrics'] });
    const subscribed = await socket.waitFor((m) => m.type === 'subscribed' && m.data.channels.includes(task));
    expect(subscribed.data.channels).toEqual(expect.arrayContaining(['workflows', task, 'metrics']));
    socket.send({ action: 'unsubscribe', channels: ['workflows', task] });
    const unsubscribed = await socket.waitFor((m) => m.type === 'unsubscribed');
    expect(unsubscribed.data.channels).toContain('metrics');
    expect(unsubscribed.data.channels).not.toContain('workflows');
    expect(unsubscribed.data.channels).not.toContain(task);
    expect((await new ConnectionRepository(testStore()).subscribers(task)).length).toBe(0);
  });

  it('takes a channel listed twice once, when subscribing and when unsubscribing', async () => {
    socket.messages.length = 0;
    const task = `task:${ulid()}`;
    socket.send({ action: 'subscribe', channels: [task, 'workflows', task] });
    const subscribed = await socket.waitFor((m) => m.type === 'subscribed' && m.data.channels.includes(task), 5_000);
    expect(subscribed.data.channels.filter((c: string) => c === task)).toHaveLength(1);
    expect(await new ConnectionRepository(testStore()).subscribers(task)).toHaveLength(1);
    socket.send({ action: 'unsubscribe', channels: [task, task] });
    const unsubscribed = await socket.waitFor((m) => m.type === 'unsubscribed' && !m.data.channels.includes(task), 5_000);
    expect(unsubscribed.data.channels).toContain('workflows');
    expect(await new ConnectionRepository(testStore()).subscribers(task)).toEqual([]);
  });

  it('updates preferences, merging them', async () => {
    socket.send({ action: 'update_preferences', preferences: { metric_types: ['latency'], refresh_interval_seconds: 5 } });
    await socket.waitFor((m) => m.type === 'preferences_updated');
    socket.send({ action: 'update_preferences', preferences: { anomaly_detection: true, alert_severities: ['critical'] } });
    const reply = await socket.waitFor((m) => m.type === 'preferences_updated' && m.data.preferences.anomaly_detection === true);
    expect(reply.data.preferences).toEqual({ metric_types: ['latency'], refresh_interval_seconds: 5, anomaly_detection: true, alert_severities: ['critical'] });
  });

  it('answers an error for unknown channels, invalid JSON and invalid messages', async () => {
    socket.messages.length = 0;
    socket.send({ action: 'subscribe', channels: ['bogus', 'task:', 'tasks:extra', 'task:a:b'] });
    const unknown = await socket.waitFor((m) => m.type === 'error' && m.data.error === 'invalid_channel');
    expect(unknown.data.channels).toEqual(['bogus', 'task:', 'tasks:extra', 'task:a:b']);

    socket.ws.send('{not json');
    expect((await socket.waitFor((m) => m.type === 'error' && m.data.error === 'invalid_json')).data.detail).toBeTruthy();

    socket.send({ action: 'dance' });
    await socket.waitFor((m) => m.type === 'error' && m.data.error === 'validation_error');
    socket.messages.length = 0;
    socket.send({ action: 'update_preferences', preferences: { refresh_interval_seconds: 0, colour: 'red' } });
    const invalid = await socket.waitFor((m) => m.type === 'error' && m.data.error === 'validation_error');
    expect(invalid.data.errors.map((e: { path: string }) => e.path).sort()).toEqual(['preferences.colour', 'preferences.refresh_interval_seconds']);
  });

  it('refuses channels the user may not read', async () => {
    // A user with no role at all: the API never makes one, which is what shows the check is real.
    const nobody = await login(await seedUser([]));
    const s = await openSocket('/ws', nobody.token);
    s.send({ action: 'subscribe', channels: ['tasks', 'alerts'] });
    const denied = await s.waitFor((m) => m.type === 'error' && m.data.error === 'forbidden');
    expect(denied.data.channels).toEqual(['tasks', 'alerts']);
    const subscribed = await s.waitFor((m) => m.type === 'subscribed');
    expect(subscribed.data.channels).toEqual([]);
    await s.close();
    // Nor does a stream path subscribe it.
    const stream = await openSocket('/api/v1/analytics/advanced/stream', nobody.token);
    stream.send({ action: 'subscribe', channels: ['plugins'] });
    expect((await stream.waitFor((m) => m.type === 'subscribed')).data.channels).toEqual([]);
    await stream.close();
  });
});

describe('@connections with the real ApiGatewayManagementApiClient', () => {
  it('posts to a live connection, describes it, and answers GoneException once it is closed', async () => {
    const socket = await openSocket('/ws', viewer.token);
    const id = await connectionIdOf(socket);
    const client = management();
    await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from(JSON.stringify({ type: 'hello', n: 1 })) }));
    expect(await socket.waitFor((m) => m.type === 'hello')).toEqual({ type: 'hello', n: 1 });
    const described = await client.send(new GetConnectionCommand({ ConnectionId: id }));
    expect(described.ConnectedAt).toBeInstanceOf(Date);
    expect(described.LastActiveAt).toBeInstanceOf(Date);
    expect(described.Identity?.SourceIp).toMatch(/^127\./);

    await socket.close();
    await eventually(() => new ConnectionRepository(testStore()).get(id), (record) => record === undefined, 10_000, 50);
    const gone = await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('{}') })).catch((err: Error) => err);
    expect(gone).toBeInstanceOf(Error);
    expect((gone as Error).name).toBe('GoneException');
    expect((gone as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(410);
    client.destroy();
  });

  it('closes a connection on DeleteConnection', async () => {
    const socket = await openSocket('/ws', viewer.token);
    const id = await connectionIdOf(socket);
    const closed = new Promise<number>((resolve) => socket.ws.once('close', (code) => resolve(code)));
    const client = management();
    await client.send(new DeleteConnectionCommand({ ConnectionId: id }));
    expect(await closed).toBe(1000);
    const gone = await client.send(new DeleteConnectionCommand({ ConnectionId: id })).catch((err: Error) => err);
    expect((gone as Error).name).toBe('GoneException');
    client.destroy();
  });
});

describe('publish()', () => {
  const deps = () => ({ store: testStore(), connections: new ApiGatewayConnections(inject('connectionsUrl')), clock: systemClock }) as unknown as Deps;

  it('delivers once per connection to every subscriber, and removes connections that are gone', async () => {
    const channel = `execution:${ulid()}`;
    const live = await openSocket('/ws', viewer.token);
    live.send({ action: 'subscribe', channels: [channel, 'plugins'] });
    await live.waitFor((m) => m.type === 'subscribed' && m.data.channels.includes(channel));

    // A connection the table still lists but whose socket is long gone (its $disconnect never ran).
    const repo = new ConnectionRepository(testStore());
    const staleId = 'StaleConnId0000=';
    const stale = { connection_id: staleId, user_id: viewer.userId, username: viewer.username, permissions: ['workflows:read'], channels: [], preferences: {}, connected_at: new Date().toISOString(), expires_at: Math.floor(Date.now() / 1000) + 3600 };
    await repo.put(stale);
    await repo.subscribe(stale, [channel]);
    expect((await repo.subscribers(channel)).map((s) => s.connection_id)).toContain(staleId);

    const delivered = await publish(deps(), [channel, 'plugins'], 'execution.updated', { status: 'running' });
    expect(delivered).toBe(1);
    const received = await live.waitFor((m) => m.type === 'execution.updated');
    expect(received).toMatchObject({ type: 'execution.updated', channel, data: { status: 'running' } });
    expect(live.messages.filter((m) => m.type === 'execution.updated')).toHaveLength(1);
    expect((await repo.subscribers(channel)).map((s) => s.connection_id)).not.toContain(staleId);
    expect(await repo.get(staleId)).toBeUndefined();
    await live.close();
  });

  it('removes a subscription whose connection record is already gone (left by a subscribe racing $disconnect)', async () => {
    const channel = `execution:${ulid()}`;
    const repo = new ConnectionRepository(testStore());
    const orphan = { connection_id: 'OrphanConnId000=', user_id: viewer.userId, username: viewer.username, permissions: ['workflows:read'], channels: [], preferences: {}, connected_at: new Date().toISOString(), expires_at: Math.floor(Date.now() / 1000) + 3600 };
    await repo.put(orphan);
    await repo.subscribe(orphan, [channel]);
    await repo.remove(orphan.connection_id);
    await repo.subscribe(orphan, [channel]).catch(() => undefined); // the late subscribe: its item is written, the record update fails
    expect((await repo.subscribers(channel)).map((s) => s.connection_id)).toEqual([orphan.connection_id]);

    expect(await publish(deps(), [channel], 'execution.updated', { status: 'running' })).toBe(0);
    expect(await repo.subscribers(channel)).toEqual([]);
    // Past its expiry too: an expired subscription is dropped, not only skipped.
    const expired = { ...orphan, connection_id: 'ExpiredConnId00=', channels: [], expires_at: Math.floor(Date.now() / 1000) - 10 };
    await repo.put(expired);
    await repo.subscribe(expired, [channel]);
    await repo.remove(expired.connection_id);
    await repo.subscribe(expired, [channel]).catch(() => undefined);
    expect(await publish(deps(), [channel], 'execution.updated', { status: 'running' })).toBe(0);
    expect(await repo.subscribers(channel)).toEqual([]);
  });

  it('sends owner-only events to the owner and to holders of the permission only', async () => {
    const channel = `task:${ulid()}`;
    const owner = await sessionAs(['user']);
    const other = await sessionAs(['user']);
    const operator = await sessionAs(['operator']);
    const sockets = await Promise.all([owner, other, operator].map((s) => openSocket('/ws', s.token)));
    // Subscribed through the table: a user may not subscribe to an unknown (or another user's) task:<id>
    // any more, and what is checked here is the publisher's own filter.
    const repo = new ConnectionRepository(testStore());
    for (const s of [owner, other, operator]) {
      const [conn] = await eventually(() => repo.ofUser(s.userId), (c) => c.length === 1);
      await repo.subscribe(conn, [channel]);
    }
    const delivered = await publish(deps(), [channel], 'task.updated', { id: 1 }, { ownerId: owner.userId, permission: 'tasks:manage_all' });
    expect(delivered).toBe(2);
    await sockets[0].waitFor((m) => m.type === 'task.updated');
    await sockets[2].waitFor((m) => m.type === 'task.updated');
    expect(sockets[1].messages.some((m) => m.type === 'task.updated')).toBe(false);
    await Promise.all(sockets.map((s) => s.close()));
  });

  it('forgets a connection and its subscriptions on $disconnect', async () => {
    const socket = await openSocket('/ws', viewer.token);
    const id = await connectionIdOf(socket);
    const record = await new ConnectionRepository(testStore()).get(id);
    expect(record?.user_id).toBe(viewer.userId);
    const channel = record!.channels[0];
    await socket.close();
    await eventually(() => new ConnectionRepository(testStore()).get(id), (r) => r === undefined, 10_000, 50);
    expect(await new ConnectionRepository(testStore()).subscribers(channel)).toEqual([]);
  });
});
