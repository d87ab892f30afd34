import { describe, it, expect } from 'vitest';
import { ulid } from 'ulid';
import { adminSession, call, login } from '../../support/client.js';

describe('a password change ends the sessions that began before it', () => {
  it('revokes old access and refresh tokens; the new password starts a working session', async () => {
    const admin = await adminSession();
    const username = `pw-${ulid().toLowerCase()}`;
    const created = await call('POST', '/auth/users', { token: admin.token, body: { username, password: 'the-first-password', roles: ['user'] } });
    expect(created.status).toBe(201);
    const before = await login(username, 'the-first-password');
    expect((await call('GET', '/auth/me', { token: before.token })).status).toBe(200);

    const changed = await call('PUT', `/auth/users/${before.userId}`, { token: admin.token, body: { password: 'the-second-password' } });
    expect(changed.status).toBe(200);

    const me = await call('GET', '/auth/me', { token: before.token });
    expect(me.status).toBe(401);
    expect(me.body.error).toBe('unauthorized');
    const refreshed = await call('POST', '/auth/refresh', { body: { refresh_token: before.refreshToken } });
    expect(refreshed.status).toBe(401);
    expect((await call('POST', '/auth/login', { body: { username, password: 'the-first-password' } })).status).toBe(401);

    const after = await login(username, 'the-second-password');
    expect((await call('GET', '/auth/me', { token: after.token })).status).toBe(200);
    const rotated = await call('POST', '/auth/refresh', { body: { refresh_token: after.refreshToken } });
    expect(rotated.status).toBe(200);
  });

  it('a profile change without a password keeps sessions alive', async () => {
    const admin = await adminSession();
    const username = `pw-${ulid().toLowerCase()}`;
    await call('POST', '/auth/users', { token: admin.token, body: { username, password: 'the-first-password', roles: ['user'] } });
    const session = await login(username, 'the-first-password');
    expect((await call('PUT', `/auth/users/${session.userId}`, { token: admin.token, body: { full_name: 'Renamed' } })).status).toBe(200);
    expect((await call('GET', '/auth/me', { token: session.token })).status).toBe(200);
  });
});
