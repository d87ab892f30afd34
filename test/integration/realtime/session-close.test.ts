import { describe, it, expect } from 'vitest';
import { ulid } from 'ulid';
import WebSocket from 'ws';
import { adminSession, call, login, openSocket } from '../../support/client.js';

function closed(ws: WebSocket, timeoutMs = 10_000): Promise<boolean> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('open WebSockets follow the rights they were opened with', () => {
  it('logout closes the connections of that session only; a role change closes the rest', async () => {
    const admin = await adminSession();
    const username = `ws-${ulid().toLowerCase()}`;
    expect((await call('POST', '/auth/users', { token: admin.token, body: { username, password: 'a-long-enough-password', roles: ['user'] } })).status).toBe(201);
    const first = await login(username, 'a-long-enough-password');
    const second = await login(username, 'a-long-enough-password');
    const a = await openSocket('/ws', first.token);
    const b = await openSocket('/ws', second.token);
    a.send({ action: 'ping' });
    b.send({ action: 'ping' });
    await a.waitFor((m) => m.type === 'pong');
    await b.waitFor((m) => m.type === 'pong');

    const aClosed = closed(a.ws);
    expect((await call('POST', '/auth/logout', { token: first.token })).status).toBe(200);
    expect(await aClosed).toBe(true);
    b.send({ action: 'ping' });
    await b.waitFor((m) => m.type === 'pong' && b.messages.filter((x) => x.type === 'pong').length === 2);

    const bClosed = closed(b.ws);
    expect((await call('PUT', `/auth/users/${second.userId}`, { token: admin.token, body: { roles: ['viewer'] } })).status).toBe(200);
    expect(await bClosed).toBe(true);
    // Connecting again gives a connection with the new role's rights (a viewer still reads tasks).
    const again = await openSocket('/ws', second.token);
    again.send({ action: 'subscribe', channels: ['tasks'] });
    await again.waitFor((m) => m.type === 'subscribed');
    await again.close();
  });
});
