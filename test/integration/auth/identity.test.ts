import { beforeAll, describe, expect, it } from 'vitest';
import { ulid } from 'ulid';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { inject } from 'vitest';
import { permissionsOf, ROLES } from '../../../shared/platform/permissions.js';
import { UserRepository } from '../../../shared/auth/repo.js';
import { SessionRepository } from '../../../shared/auth/sessions-repo.js';
import { Client, login, seedUser, sessionAs, testStore, TEST_PASSWORD, type HttpResponse, type Session } from './fixtures.js';

/** Register, login, refresh rotation and reuse, logout, me, and the admin's user management. */

const client = new Client();

describe('register', () => {
  it('creates a user with the role user only, who can log in', async () => {
    const username = `reg-${ulid().toLowerCase()}`;
    const res = await client.call('POST', '/auth/register', {
      body: { username, password: TEST_PASSWORD, email: `${username}@Example.com`, full_name: 'New Person' },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.message).toBe('User registered');
    expect(res.body.data).toMatchObject({ username, email: `${username}@example.com`, full_name: 'New Person', roles: ['user'], is_active: true, last_login_at: null });
    expect(res.body.data).not.toHaveProperty('password_hash');
    const stored = await new UserRepository(testStore()).get(res.body.data.user_id);
    expect(stored?.roles).toEqual(['user']);
    expect(stored?.password_hash).toMatch(/^scrypt\$/);

    const session = await login({ username, password: TEST_PASSWORD });
    expect(session.userId).toBe(res.body.data.user_id);
  });

  it('refuses a username or e-mail that is taken (409) without changing the first user', async () => {
    const existing = await seedUser(['viewer'], { email: `taken-${ulid().toLowerCase()}@example.com` });
    const before = await new UserRepository(testStore()).get(existing.userId);
    const sameName = await client.call('POST', '/api/v1/auth/register', { body: { username: existing.username.toUpperCase(), password: TEST_PASSWORD } });
    expect(sameName.status).toBe(409);
    expect(sameName.body.error).toBe('conflict');
    const sameEmail = await client.call('POST', '/auth/register', {
      body: { username: `other-${ulid().toLowerCase()}`, password: TEST_PASSWORD, email: existing.email!.toUpperCase() },
    });
    expect(sameEmail.status).toBe(409);
    expect(await new UserRepository(testStore()).get(existing.userId)).toEqual(before);
  });
});

describe('login', () => {
  it('takes the username or the e-mail (any case) and answers the token set', async () => {
    const email = `login-${ulid().toLowerCase()}@example.com`;
    const user = await seedUser(['operator'], { email });
    for (const name of [user.username, email, email.toUpperCase()]) {
      const res = await client.call('POST', '/auth/login', { body: { username: name, password: user.password } });
      expect(res.status, `${name}: ${res.text}`).toBe(200);
      expect(res.body.data).toMatchObject({ token_type: 'bearer', expires_in: 900, user: { user_id: user.userId, roles: ['operator'] } });
      expect(res.body.data.refresh_token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      const claims = decodeJwt(res.body.data.access_token);
      expect(claims).toMatchObject({ sub: user.userId, token_use: 'access', aud: 'supervisor-api' });
      expect(claims.exp! - claims.iat!).toBe(900);
    }
    const stored = await new UserRepository(testStore()).get(user.userId);
    expect(stored?.last_login_at).toBeTruthy();
  });

  it('answers the same 401 for a wrong password and an unknown user', async () => {
    const user = await seedUser(['viewer']);
    const wrong = await client.call('POST', '/auth/login', { body: { username: user.username, password: 'not-the-password' } });
    const unknown = await client.call('POST', '/auth/login', { body: { username: `nobody-${ulid().toLowerCase()}`, password: 'whatever-it-is' } });
    for (const res of [wrong, unknown]) {
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('unauthorized');
      expect(res.body.detail).toBe('Invalid username or password');
    }
  });

  it('refuses a deactivated user', async () => {
    const admin = await sessionAs(['admin']);
    const user = await seedUser(['user']);
    const session = await login(user);
    const off = await client.call('PUT', `/auth/users/${user.userId}`, { token: admin.token, body: { is_active: false } });
    expect(off.status, off.text).toBe(200);
    expect((await client.call('POST', '/auth/login', { body: { username: user.username, password: user.password } })).status).toBe(401);
    // The access token it already held stops working too.
    expect((await client.call('GET', '/auth/me', { token: session.token })).status).toBe(401);
  });
});

describe('me', () => {
  it.each(ROLES)('answers the %s user with its roles and effective permissions', async (role) => {
    const session = await sessionAs([role]);
    const res = await client.call('GET', '/api/v1/auth/me', { token: session.token });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ user_id: session.userId, username: session.username, roles: [role] });
    expect(res.body.data.permissions).toEqual(permissionsOf([role]));
  });

  it('answers 401 without a token, with a malformed one and with one from another key', async () => {
    expect((await client.call('GET', '/auth/me')).status).toBe(401);
    expect((await client.call('GET', '/auth/me', { token: 'not.a.jwt' })).status).toBe(401);
    expect((await client.call('GET', '/auth/me', { headers: { authorization: 'Basic dXNlcjpwYXNz' } })).status).toBe(401);
    const { SignJWT, generateKeyPair } = await import('jose');
    const { privateKey } = await generateKeyPair('ES256');
    const session = await sessionAs(['viewer']);
    const forged = await new SignJWT({ ...decodeJwt(session.token) }).setProtectedHeader({ alg: 'ES256', kid: 'forged' }).sign(privateKey);
    const res = await client.call('GET', '/auth/me', { token: forged });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('unauthorized');
  });
});

describe('refresh', () => {
  it('rotates the refresh token; reusing a rotated one revokes the whole family', async () => {
    const session = await login(await seedUser(['user']));
    const first = await client.call('POST', '/auth/refresh', { body: { refresh_token: session.refreshToken } });
    expect(first.status, first.text).toBe(200);
    const rotated = first.body.data.refresh_token as string;
    const newAccess = first.body.data.access_token as string;
    expect(rotated).not.toBe(session.refreshToken);
    expect(decodeJwt(newAccess).sid).toBe(decodeJwt(session.token).sid);
    expect((await client.call('GET', '/auth/me', { token: newAccess })).status).toBe(200);

    const reuse = await client.call('POST', '/auth/refresh', { body: { refresh_token: session.refreshToken } });
    expect(reuse.status).toBe(401);
    expect(reuse.body.error).toBe('unauthorized');

    // The family is revoked: the successor token and every access token of the session stop working.
    expect((await client.call('POST', '/auth/refresh', { body: { refresh_token: rotated } })).status).toBe(401);
    expect((await client.call('GET', '/auth/me', { token: newAccess })).status).toBe(401);
    expect((await client.call('GET', '/auth/me', { token: session.token })).status).toBe(401);
    const stored = await new SessionRepository(testStore()).get(String(decodeJwt(session.token).sid));
    expect(stored).toMatchObject({ revoked: true, revoked_reason: 'refresh_token_reuse' });
  });

  it('does not touch the other sessions of the same user', async () => {
    const user = await seedUser(['user']);
    const a = await login(user);
    const b = await login(user);
    await client.call('POST', '/auth/refresh', { body: { refresh_token: a.refreshToken } });
    await client.call('POST', '/auth/refresh', { body: { refresh_token: a.refreshToken } });
    expect((await client.call('GET', '/auth/me', { token: a.token })).status).toBe(401);
    expect((await client.call('GET', '/auth/me', { token: b.token })).status).toBe(200);
    expect((await client.call('POST', '/auth/refresh', { body: { refresh_token: b.refreshToken } })).status).toBe(200);
  });

  it('answers 401 for a refresh token that was never issued', async () => {
    const res = await client.call('POST', '/auth/refresh', { body: { refresh_token: 'x'.repeat(43) } });
    expect(res.status).toBe(401);
  });

  it('lets exactly one of two concurrent refreshes with the same token win', async () => {
    const session = await login(await seedUser(['user']));
    const results = await Promise.all([1, 2].map(() => client.call('POST', '/auth/refresh', { body: { refresh_token: session.refreshToken } })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 401]);
  });
});

describe('logout', () => {
  it('ends the access token at once and the refresh token with it', async () => {
    const session = await login(await seedUser(['operator']));
    const res = await client.call('POST', '/auth/logout', { token: session.token, body: { refresh_token: session.refreshToken } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toEqual({ revoked: true });
    const me = await client.call('GET', '/auth/me', { token: session.token });
    expect(me.status).toBe(401);
    expect(me.body.error).toBe('unauthorized');
    expect((await client.call('POST', '/auth/refresh', { body: { refresh_token: session.refreshToken } })).status).toBe(401);
    expect((await client.call('POST', '/auth/logout', { token: session.token })).status).toBe(401);
  });
});

describe('users (admin)', () => {
  let admin: Session;
  beforeAll(async () => {
    admin = await sessionAs(['admin']);
  });

  it('creates a user with roles, who then has exactly those permissions', async () => {
    const username = `made-${ulid().toLowerCase()}`;
    const res = await client.call('POST', '/auth/users', { token: admin.token, body: { username, password: TEST_PASSWORD, roles: ['operator', 'viewer', 'operator'] } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.data.roles).toEqual(['operator', 'viewer']);
    const session = await login({ username, password: TEST_PASSWORD });
    const me = await client.call('GET', '/auth/me', { token: session.token });
    expect(me.body.data.permissions).toEqual(permissionsOf(['operator', 'viewer']));
  });

  it('pages through the users with an opaque cursor, and refuses tampered or foreign cursors', async () => {
    const mine = [await seedUser(['viewer']), await seedUser(['viewer']), await seedUser(['viewer'])].map((u) => u.userId);
    const firstFour = await client.call('GET', '/auth/users?limit=4', { token: admin.token });
    const page1 = await client.call('GET', '/auth/users?limit=2', { token: admin.token });
    expect(page1.status).toBe(200);
    expect(page1.body.data.items).toHaveLength(2);
    const cursor = page1.body.data.next_cursor as string;
    expect(cursor).toEqual(expect.any(String));
    const page2 = await client.call('GET', `/auth/users?limit=2&cursor=${encodeURIComponent(cursor)}`, { token: admin.token });
    expect(page2.status).toBe(200);
    expect([...page1.body.data.items, ...page2.body.data.items].map((u: { user_id: string }) => u.user_id)).toEqual(
      firstFour.body.data.items.map((u: { user_id: string }) => u.user_id),
    );

    const seen: string[] = [];
    let next: string | null = null;
    do {
      const res: HttpResponse = await client.call('GET', `/auth/users?limit=100${next ? `&cursor=${encodeURIComponent(next)}` : ''}`, { token: admin.token });
      expect(res.status).toBe(200);
      seen.push(...res.body.data.items.map((u: { user_id: string }) => u.user_id));
      next = res.body.data.next_cursor;
    } while (next);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(mine));
    expect(page1.body.data.items[0]).not.toHaveProperty('password_hash');

    const [payload, mac] = cursor.split('.');
    const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString());
    decoded.p.gsi1sk = '00000000000000000000000000';
    const edited = `${Buffer.from(JSON.stringify(decoded)).toString('base64url')}.${mac}`;
    for (const bad of [edited, `${payload}.${mac.slice(0, -2)}AA`, `${payload}`, `${cursor}.extra`]) {
      const res = await client.call('GET', `/auth/users?cursor=${encodeURIComponent(bad)}`, { token: admin.token });
      expect(res.status, bad).toBe(400);
      expect(res.body.error).toBe('invalid_cursor');
    }

    // A cursor handed out by another query (the audit log) is refused as well.
    const audit = await client.call('GET', '/api/v1/audit-logs?limit=1', { token: admin.token });
    expect(audit.body.data.next_cursor).toEqual(expect.any(String));
    const foreign = await client.call('GET', `/auth/users?cursor=${encodeURIComponent(audit.body.data.next_cursor)}`, { token: admin.token });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error).toBe('invalid_cursor');
  });

  it('updates profile, roles and password; only an admin may (403 otherwise, nothing changed)', async () => {
    const target = await seedUser(['viewer']);
    const operator = await sessionAs(['operator']);
    const before = await new UserRepository(testStore()).get(target.userId);
    const denied = await client.call('PUT', `/auth/users/${target.userId}`, { token: operator.token, body: { roles: ['admin'] } });
    expect(denied.status).toBe(403);
    expect(denied.body.error).toBe('forbidden');
    const selfPromotion = await client.call('PUT', `/auth/users/${operator.userId}`, { token: operator.token, body: { roles: ['admin'] } });
    expect(selfPromotion.status).toBe(403);
    expect(await new UserRepository(testStore()).get(target.userId)).toEqual(before);
    expect((await new UserRepository(testStore()).get(operator.userId))?.roles).toEqual(['operator']);

    const targetSession = await login(target);
    const res = await client.call('PUT', `/auth/users/${target.userId}`, {
      token: admin.token,
      body: { roles: ['operator'], full_name: 'Promoted' },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toMatchObject({ roles: ['operator'], full_name: 'Promoted' });
    expect(res.body.data.updated_at > before!.updated_at).toBe(true);
    // Permissions follow the stored roles at once, even for a token issued before the change.
    const me = await client.call('GET', '/auth/me', { token: targetSession.token });
    expect(me.body.data.permissions).toEqual(permissionsOf(['operator']));
    // A new password ends the sessions that began before it.
    const reset = await client.call('PUT', `/auth/users/${target.userId}`, { token: admin.token, body: { password: 'another-long-password' } });
    expect(reset.status, reset.text).toBe(200);
    expect((await client.call('GET', '/auth/me', { token: targetSession.token })).status).toBe(401);
    expect((await client.call('POST', '/auth/login', { body: { username: target.username, password: target.password } })).status).toBe(401);
    expect((await client.call('POST', '/auth/login', { body: { username: target.username, password: 'another-long-password' } })).status).toBe(200);
  });

  it('answers 404 for an unknown user and 409 for an e-mail that is taken', async () => {
    const taken = await seedUser(['viewer'], { email: `t-${ulid().toLowerCase()}@example.com` });
    const other = await seedUser(['viewer']);
    expect((await client.call('PUT', `/auth/users/${ulid()}`, { token: admin.token, body: { full_name: 'Nobody' } })).status).toBe(404);
    const res = await client.call('PUT', `/auth/users/${other.userId}`, { token: admin.token, body: { email: taken.email } });
    expect(res.status).toBe(409);
    expect(res.body.error).toBe('conflict');
  });

  it('refuses to let an admin deactivate itself (403)', async () => {
    const res = await client.call('PUT', `/auth/users/${admin.userId}`, { token: admin.token, body: { is_active: false } });
    expect(res.status).toBe(403);
    expect((await new UserRepository(testStore()).get(admin.userId))?.is_active).toBe(true);
  });

  it('deletes a user: its tokens stop working, its name is free again', async () => {
    const target = await seedUser(['user'], { email: `del-${ulid().toLowerCase()}@example.com` });
    const session = await login(target);
    const res = await client.call('DELETE', `/api/v1/auth/users/${target.userId}`, { token: admin.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toEqual({ user_id: target.userId, deleted: true });
    expect((await client.call('GET', '/auth/me', { token: session.token })).status).toBe(401);
    expect((await client.call('POST', '/auth/login', { body: { username: target.username, password: target.password } })).status).toBe(401);
    expect((await client.call('DELETE', `/auth/users/${target.userId}`, { token: admin.token })).status).toBe(404);
    const again = await seedUser(['viewer'], { username: target.username, email: target.email });
    expect(again.userId).not.toBe(target.userId);
  });
});

describe('/.well-known/jwks.json', () => {
  it('publishes the keys that verify an access token with jose, independently of the API', async () => {
    const session = await sessionAs(['viewer']);
    const res = await client.call('GET', '/.well-known/jwks.json');
    expect(res.status).toBe(200);
    expect(res.body.keys.length).toBeGreaterThan(0);
    for (const key of res.body.keys) {
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(key).not.toHaveProperty('d');
    }
    const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', inject('baseUrl')));
    const { payload, protectedHeader } = await jwtVerify(session.token, jwks, { audience: 'supervisor-api', issuer: 'supervisor' });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.sub).toBe(session.userId);
    const [header, , signature] = session.token.split('.');
    const promoted = Buffer.from(JSON.stringify({ ...decodeJwt(session.token), roles: ['admin'] })).toString('base64url');
    const tampered = `${header}.${promoted}.${signature}`;
    await expect(jwtVerify(tampered, jwks)).rejects.toThrow();
  });
});
