import { beforeAll, describe, expect, it } from 'vitest';
import { ulid } from 'ulid';
import { UserRepository } from '../../../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../../../shared/auth/sessions-repo.js';
import { sha256 } from '../../../shared/auth/passwords.js';
import { Client, errorPaths, login, seedUser, sessionAs, testStore, type HttpResponse, type Session } from './fixtures.js';

/**
 * Every auth route, at both of its paths, against malformed JSON, wrong types, missing and unknown
 * fields, oversized bodies and wrong content types: each answers the contract's 4xx and leaves the
 * stored data as it was (checked in the table itself, not through the API that just refused).
 */

const users = () => new UserRepository(testStore());
const oversized = (bytes: number) => JSON.stringify({ username: 'someone', password: 'x'.repeat(bytes) });

function expectError(res: HttpResponse, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body.error).toBe(code);
  expect(typeof res.body.detail).toBe('string');
  expect(res.body.request_id).toBeTruthy();
  expect(res.text).not.toMatch(/at .*\.ts:\d+|Error:/);
}

describe.each(['/auth', '/api/v1/auth'])('bad input on %s/*', (prefix) => {
  let admin: Session;
  const client = new Client();

  beforeAll(async () => {
    admin = await sessionAs(['admin']);
  });

  describe('POST login', () => {
    const path = `${prefix}/login`;

    it('answers 400 invalid_json, 422 per field, 413 and 415, and records no failed login', async () => {
      const target = await seedUser(['user']);
      expectError(await client.call('POST', path, { rawBody: '{"username": "a",', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');

      const wrongTypes = await client.call('POST', path, { body: { username: 5, password: true } });
      expectError(wrongTypes, 422, 'validation_error');
      expect(errorPaths(wrongTypes.body)).toEqual(['password', 'username']);

      const missing = await client.call('POST', path, { body: {} });
      expectError(missing, 422, 'validation_error');
      expect(errorPaths(missing.body)).toEqual(['password', 'username']);

      const unknown = await client.call('POST', path, { body: { username: target.username, password: target.password, roles: ['admin'] } });
      expectError(unknown, 422, 'validation_error');
      expect(unknown.body.errors).toEqual([{ path: 'roles', message: 'Unknown field' }]);

      expectError(await client.call('POST', path, { rawBody: oversized(9 * 1024), headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large');
      expectError(
        await client.call('POST', path, { rawBody: JSON.stringify({ username: target.username, password: target.password }), headers: { 'content-type': 'text/plain' } }),
        415,
        'unsupported_media_type',
      );
      expectError(await client.call('POST', path, { rawBody: '<login/>', headers: { 'content-type': 'application/xml' } }), 415, 'unsupported_media_type');

      const formUnknown = await client.call('POST', path, {
        rawBody: new URLSearchParams({ username: target.username, password: target.password, is_admin: 'true' }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expectError(formUnknown, 422, 'validation_error');
      expect(errorPaths(formUnknown.body)).toEqual(['is_admin']);

      // None of that counted as a failed login: no failure record, and the right password still works.
      expect(await new LoginAttemptRepository(testStore()).get(`user#${target.userId}`)).toBeUndefined();
      const ok = await client.call('POST', path, { body: { username: target.username, password: target.password } });
      expect(ok.status).toBe(200);
    });

    it('accepts the OAuth2 password form', async () => {
      const target = await seedUser(['viewer']);
      const res = await client.call('POST', path, {
        rawBody: new URLSearchParams({ grant_type: 'password', username: target.username, password: target.password, scope: '' }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      });
      expect(res.status, res.text).toBe(200);
      expect(res.body.data.token_type).toBe('bearer');
      expect(res.body.data.user.roles).toEqual(['viewer']);
    });
  });

  describe('POST register', () => {
    const path = `${prefix}/register`;

    it('answers 400, 422, 413 and 415 and claims no username', async () => {
      // Register is limited per IP: this test speaks from its own address.
      const own = new Client();
      const username = `reg-bad-${ulid().toLowerCase()}`;
      expectError(await own.call('POST', path, { rawBody: '{oops}', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');

      const wrongTypes = await own.call('POST', path, { body: { username: 1, password: 2, email: 3, full_name: false } });
      expectError(wrongTypes, 422, 'validation_error');
      expect(errorPaths(wrongTypes.body)).toEqual(['email', 'full_name', 'password', 'username']);

      const missing = await own.call('POST', path, { body: {} });
      expect(errorPaths(missing.body)).toEqual(['password', 'username']);

      const invalid = await own.call('POST', path, { body: { username: 'a b', password: 'short', email: 'not-an-email' } });
      expectError(invalid, 422, 'validation_error');
      expect(errorPaths(invalid.body)).toEqual(['email', 'password', 'username']);

      const withRoles = await own.call('POST', path, { body: { username, password: 'a-long-enough-password', roles: ['admin'] } });
      expectError(withRoles, 422, 'validation_error');
      expect(withRoles.body.errors).toEqual([{ path: 'roles', message: 'Unknown field' }]);

      expectError(await own.call('POST', path, { rawBody: oversized(9 * 1024), headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large');
      expectError(
        await own.call('POST', path, { rawBody: `username=${username}&password=a-long-enough-password`, headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
        415,
        'unsupported_media_type',
      );

      expect(await users().findByLogin(username)).toBeUndefined();
    });
  });

  describe('POST refresh', () => {
    const path = `${prefix}/refresh`;

    it('answers 400, 422, 413 and 415 and leaves the refresh token usable', async () => {
      const session = await login(await seedUser(['user']));
      expectError(await client.call('POST', path, { rawBody: '{"refresh_token":', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
      const wrongType = await client.call('POST', path, { body: { refresh_token: 12345 } });
      expectError(wrongType, 422, 'validation_error');
      expect(errorPaths(wrongType.body)).toEqual(['refresh_token']);
      expect(errorPaths((await client.call('POST', path, { body: {} })).body)).toEqual(['refresh_token']);
      const unknown = await client.call('POST', path, { body: { refresh_token: session.refreshToken, user_id: session.userId } });
      expectError(unknown, 422, 'validation_error');
      expect(errorPaths(unknown.body)).toEqual(['user_id']);
      expectError(
        await client.call('POST', path, { rawBody: JSON.stringify({ refresh_token: 'x'.repeat(5000) }), headers: { 'content-type': 'application/json' } }),
        413,
        'payload_too_large',
      );
      expectError(await client.call('POST', path, { rawBody: session.refreshToken, headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type');

      const record = await new SessionRepository(testStore()).getRefresh(sha256(session.refreshToken));
      expect(record?.used_at).toBeUndefined();
      const ok = await client.call('POST', path, { body: { refresh_token: session.refreshToken } });
      expect(ok.status, ok.text).toBe(200);
    });
  });

  describe('POST logout', () => {
    const path = `${prefix}/logout`;

    it('answers 400, 422, 413 and 415 and leaves the session live', async () => {
      const session = await login(await seedUser(['user']));
      const token = session.token;
      expectError(await client.call('POST', path, { token, rawBody: '{', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
      const wrongType = await client.call('POST', path, { token, body: { refresh_token: 42 } });
      expectError(wrongType, 422, 'validation_error');
      expect(errorPaths(wrongType.body)).toEqual(['refresh_token']);
      const unknown = await client.call('POST', path, { token, body: { everywhere: true } });
      expectError(unknown, 422, 'validation_error');
      expect(errorPaths(unknown.body)).toEqual(['everywhere']);
      expectError(
        await client.call('POST', path, { token, rawBody: JSON.stringify({ refresh_token: 'x'.repeat(5000) }), headers: { 'content-type': 'application/json' } }),
        413,
        'payload_too_large',
      );
      expectError(await client.call('POST', path, { token, rawBody: 'bye', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type');

      const me = await client.call('GET', `${prefix}/me`, { token });
      expect(me.status).toBe(200);
      const stored = await new SessionRepository(testStore()).get(JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid);
      expect(stored?.revoked).toBe(false);
    });

    it('takes a request without a body, even with Content-Type: application/json', async () => {
      const session = await login(await seedUser(['viewer']));
      const res = await client.call('POST', path, { token: session.token, rawBody: '', headers: { 'content-type': 'application/json' } });
      expect(res.status, res.text).toBe(200);
      expect(res.body.data).toEqual({ revoked: true });
    });
  });

  describe('GET me and GET users (no body)', () => {
    it('ignores an empty body sent with Content-Type: application/json', async () => {
      const me = await client.call('GET', `${prefix}/me`, { token: admin.token, rawBody: '', headers: { 'content-type': 'application/json' } });
      expect(me.status, me.text).toBe(200);
      expect(me.body.data.user_id).toBe(admin.userId);
      const list = await client.call('GET', `${prefix}/users?limit=1`, { token: admin.token, rawBody: '', headers: { 'content-type': 'application/json' } });
      expect(list.status, list.text).toBe(200);
    });

    it('answers 422 naming the query field, and 400 for a cursor that is not one', async () => {
      for (const limit of ['0', '101', 'abc', '1.5']) {
        const res = await client.call('GET', `${prefix}/users?limit=${limit}`, { token: admin.token });
        expectError(res, 422, 'validation_error');
        expect(errorPaths(res.body)).toEqual(['query.limit']);
      }
      expectError(await client.call('GET', `${prefix}/users?cursor=not-a-cursor`, { token: admin.token }), 400, 'invalid_cursor');
    });
  });

  describe('POST users (create)', () => {
    const path = `${prefix}/users`;

    it('answers 400, 422, 413 and 415 and creates nobody', async () => {
      const username = `create-bad-${ulid().toLowerCase()}`;
      const token = admin.token;
      expectError(await client.call('POST', path, { token, rawBody: '{"username":}', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
      const wrongTypes = await client.call('POST', path, { token, body: { username, password: 'a-long-enough-password', roles: 'admin', email: ['x'] } });
      expectError(wrongTypes, 422, 'validation_error');
      expect(errorPaths(wrongTypes.body)).toEqual(['email', 'roles']);
      const badRole = await client.call('POST', path, { token, body: { username, password: 'a-long-enough-password', roles: ['superuser'] } });
      expect(errorPaths(badRole.body)).toEqual(['roles.0']);
      const missing = await client.call('POST', path, { token, body: { roles: ['user'] } });
      expect(errorPaths(missing.body)).toEqual(['password', 'username']);
      const unknown = await client.call('POST', path, { token, body: { username, password: 'a-long-enough-password', is_active: false, created_by: 'me' } });
      expectError(unknown, 422, 'validation_error');
      expect(errorPaths(unknown.body)).toEqual(['created_by', 'is_active']);
      expectError(await client.call('POST', path, { token, rawBody: oversized(9 * 1024), headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large');
      expectError(await client.call('POST', path, { token, rawBody: `username=${username}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');

      expect(await users().findByLogin(username)).toBeUndefined();
    });
  });

  describe('PUT users/{user_id} (update)', () => {
    it('answers 400, 422, 413 and 415 and leaves the record as it was', async () => {
      const target = await seedUser(['viewer'], { email: `upd-${ulid().toLowerCase()}@example.com` });
      const before = await users().get(target.userId);
      const path = `${prefix}/users/${target.userId}`;
      const token = admin.token;
      expectError(await client.call('PUT', path, { token, rawBody: '{"roles": [', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
      const wrongTypes = await client.call('PUT', path, { token, body: { roles: 'admin', is_active: 'yes', email: 7 } });
      expectError(wrongTypes, 422, 'validation_error');
      expect(errorPaths(wrongTypes.body)).toEqual(['email', 'is_active', 'roles']);
      const empty = await client.call('PUT', path, { token, body: {} });
      expectError(empty, 422, 'validation_error');
      const unknown = await client.call('PUT', path, { token, body: { username: 'renamed', password_hash: 'x', roles: ['admin'] } });
      expectError(unknown, 422, 'validation_error');
      expect(errorPaths(unknown.body)).toEqual(['password_hash', 'username']);
      const badId = await client.call('PUT', `${prefix}/users/not-a-ulid`, { token, body: { full_name: 'X' } });
      expectError(badId, 422, 'validation_error');
      expect(errorPaths(badId.body)).toEqual(['path.user_id']);
      expectError(
        await client.call('PUT', path, { token, rawBody: JSON.stringify({ full_name: 'x'.repeat(9000) }), headers: { 'content-type': 'application/json' } }),
        413,
        'payload_too_large',
      );
      expectError(await client.call('PUT', path, { token, rawBody: 'roles=admin', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');

      expect(await users().get(target.userId)).toEqual(before);
    });
  });

  describe('DELETE users/{user_id}', () => {
    it('answers 422 for an id that is not a ULID and 404 for an unknown one, deleting nothing', async () => {
      const target = await seedUser(['viewer']);
      const badId = await client.call('DELETE', `${prefix}/users/${target.userId.toLowerCase()}x`, { token: admin.token });
      expectError(badId, 422, 'validation_error');
      expect(errorPaths(badId.body)).toEqual(['path.user_id']);
      expectError(await client.call('DELETE', `${prefix}/users/${ulid()}`, { token: admin.token }), 404, 'not_found');
      expect(await users().get(target.userId)).toBeDefined();
    });

    it('ignores a body on a route that takes none', async () => {
      const target = await seedUser(['viewer']);
      const res = await client.call('DELETE', `${prefix}/users/${target.userId}`, {
        token: admin.token,
        rawBody: '',
        headers: { 'content-type': 'application/json' },
      });
      expect(res.status, res.text).toBe(200);
      expect(await users().get(target.userId)).toBeUndefined();
    });
  });
});
