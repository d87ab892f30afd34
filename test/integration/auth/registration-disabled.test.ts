import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ulid } from 'ulid';
import type { LocalRuntime } from '../../../local/runtime.js';
import type { Store } from '../../../shared/platform/store/client.js';
import { UserRepository } from '../../../shared/auth/repo.js';
import { Client, login, seedUser, TEST_PASSWORD } from './fixtures.js';
import { ownRuntime } from './own-runtime.js';

/** Self-registration switched off with ALLOW_REGISTRATION=false: 403, nobody created; admins still create users. */

let runtime: LocalRuntime;
let store: Store;
let client: Client;

beforeAll(async () => {
  let baseUrl: string;
  ({ runtime, store, baseUrl } = await ownRuntime({ env: { ALLOW_REGISTRATION: 'false' } }));
  client = new Client(undefined, baseUrl);
});
afterAll(async () => {
  await runtime?.stop();
});

describe('registration switched off', () => {
  it.each(['/auth/register', '/api/v1/auth/register'])('%s answers 403 and creates nobody', async (path) => {
    const username = `closed-${ulid().toLowerCase()}`;
    const res = await client.call('POST', path, { body: { username, password: TEST_PASSWORD } });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ error: 'forbidden', detail: 'Self-registration is disabled' });
    expect(await new UserRepository(store).findByLogin(username)).toBeUndefined();
  });

  it('still lets an admin create users', async () => {
    const admin = await login(await seedUser(['admin'], { store }), client);
    const username = `made-${ulid().toLowerCase()}`;
    const res = await client.call('POST', '/auth/users', { token: admin.token, body: { username, password: TEST_PASSWORD } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.data.roles).toEqual(['user']);
  });
});
