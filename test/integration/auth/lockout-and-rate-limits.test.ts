import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ulid } from 'ulid';
import type { LocalRuntime } from '../../../local/runtime.js';
import type { Store } from '../../../shared/platform/store/client.js';
import { LoginAttemptRepository } from '../../../shared/auth/sessions-repo.js';
import { Client, seedUser, TEST_PASSWORD } from './fixtures.js';
import { ManualClock } from '../../../shared/platform/local/clock.js';
import { ownRuntime } from './own-runtime.js';

/**
 * Account lockout with growing backoff, and the per-IP and per-account limits of the auth routes.
 * A runtime of this file's own with a manual clock: every window and lock is exact, no test waits.
 */

// Start at a whole five-minute mark, a little in the past: every window (60 s, 300 s) begins there, and
// tokens issued on this clock are never "not yet valid" for the verifier, which reads the real time.
const FIVE_MINUTES = 300_000;
const clock = new ManualClock(Math.floor(Date.now() / FIVE_MINUTES) * FIVE_MINUTES - FIVE_MINUTES + 1000);

let runtime: LocalRuntime;
let store: Store;
let baseUrl: string;
const client = (ip?: string) => new Client(ip, baseUrl);

beforeAll(async () => {
  ({ runtime, store, baseUrl } = await ownRuntime({ clock }));
});
afterAll(async () => {
  await runtime?.stop();
});

/** Moves the clock to 1 s past the start of the next window of this length. */
function nextWindow(seconds: number) {
  const now = clock.now().getTime();
  const next = Math.floor(now / (seconds * 1000)) * seconds * 1000 + seconds * 1000 + 1000;
  clock.advance(next - now);
}

describe('lockout after repeated failed logins', () => {
  it('locks with 429 and Retry-After, also for the right password, and the lock grows with each failure', async () => {
    nextWindow(60);
    const user = await seedUser(['user'], { store });
    const c = client();
    const attempt = (password: string) => c.call('POST', '/auth/login', { body: { username: user.username, password } });

    for (let i = 1; i <= 4; i++) expect((await attempt('wrong-password-' + i)).status).toBe(401);
    const fifth = await attempt('wrong-password-5');
    expect(fifth.status).toBe(429);
    expect(fifth.body.error).toBe('rate_limited');
    expect(fifth.headers['retry-after']).toBe('30');

    const rightWhileLocked = await attempt(TEST_PASSWORD);
    expect(rightWhileLocked.status).toBe(429);
    expect(rightWhileLocked.headers['retry-after']).toBe('30');
    clock.advance(10_000);
    expect((await attempt(TEST_PASSWORD)).headers['retry-after']).toBe('20');
    // Attempts while locked are refused before the password is checked: they do not extend the lock.
    expect((await new LoginAttemptRepository(store).get(`user#${user.userId}`))?.failures).toBe(5);

    clock.advance(21_000);
    const sixth = await attempt('wrong-password-6');
    expect(sixth.status).toBe(429);
    expect(sixth.headers['retry-after']).toBe('60');

    clock.advance(61_000);
    const seventh = await attempt('wrong-password-7');
    expect(seventh.status).toBe(429);
    expect(seventh.headers['retry-after']).toBe('120');

    clock.advance(121_000);
    const ok = await attempt(TEST_PASSWORD);
    expect(ok.status, ok.text).toBe(200);
    // A successful login clears the count: the next failure is an ordinary 401.
    expect(await new LoginAttemptRepository(store).get(`user#${user.userId}`)).toBeUndefined();
    expect((await attempt('wrong-again')).status).toBe(401);
  });

  it('counts failures per account, whether the username or the e-mail was typed', async () => {
    nextWindow(60);
    const email = `both-${ulid().toLowerCase()}@example.com`;
    const user = await seedUser(['viewer'], { store, email });
    const c = client();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const username = i % 2 === 0 ? user.username : email;
      statuses.push((await c.call('POST', '/auth/login', { body: { username, password: 'wrong-password' } })).status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
  });

  it('locks an unknown login name too, so that probing cannot tell it from a real one', async () => {
    nextWindow(60);
    const c = client();
    const nobody = `nobody-${ulid().toLowerCase()}`;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await c.call('POST', '/auth/login', { body: { username: nobody, password: 'wrong-password' } })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
  });

  it('locks the login name by e-mail the same way', async () => {
    nextWindow(60);
    const email = `lock-${ulid().toLowerCase()}@example.com`;
    await seedUser(['viewer'], { store, email });
    const c = client();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await c.call('POST', '/auth/login', { body: { username: email, password: 'wrong-password' } })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
  });
});

describe('rate limits on the auth routes', () => {
  it('limits logins per source IP (30 per minute), leaving other addresses alone', async () => {
    nextWindow(60);
    const c = client();
    const statuses: number[] = [];
    // Distinct unknown names, so that no account lock gets involved.
    for (let i = 0; i < 30; i += 6) {
      const batch = await Promise.all(
        Array.from({ length: 6 }, () => c.call('POST', '/auth/login', { body: { username: `ghost-${ulid().toLowerCase()}`, password: 'whatever-it-is' } })),
      );
      statuses.push(...batch.map((r) => r.status));
    }
    expect(statuses.every((s) => s === 401)).toBe(true);
    const limited = await c.call('POST', '/api/v1/auth/login', { body: { username: `ghost-${ulid().toLowerCase()}`, password: 'whatever-it-is' } });
    expect(limited.status).toBe(429);
    expect(limited.body.error).toBe('rate_limited');
    expect(limited.headers['retry-after']).toBe('59');
    expect(limited.body.request_id).toBeTruthy();

    const user = await seedUser(['viewer'], { store });
    expect((await client().call('POST', '/auth/login', { body: { username: user.username, password: user.password } })).status).toBe(200);
    expect((await c.call('POST', '/auth/login', { body: { username: user.username, password: user.password } })).status).toBe(429);

    nextWindow(60);
    expect((await c.call('POST', '/auth/login', { body: { username: user.username, password: user.password } })).status).toBe(200);
  });

  it('limits logins per account (10 per minute) whatever the address', async () => {
    nextWindow(60);
    const user = await seedUser(['viewer'], { store });
    for (let i = 0; i < 10; i++) {
      const res = await client().call('POST', '/auth/login', { body: { username: user.username, password: user.password } });
      expect(res.status, `login ${i + 1}`).toBe(200);
    }
    const limited = await client().call('POST', '/auth/login', { body: { username: user.username.toUpperCase(), password: user.password } });
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('59');
    clock.advance(30_000);
    expect((await client().call('POST', '/auth/login', { body: { username: user.username, password: user.password } })).headers['retry-after']).toBe('29');
    nextWindow(60);
    expect((await client().call('POST', '/auth/login', { body: { username: user.username, password: user.password } })).status).toBe(200);
  });

  it('limits registrations per source IP (10 per 5 minutes)', async () => {
    nextWindow(300);
    const c = client();
    for (let i = 0; i < 10; i++) {
      const res = await c.call('POST', '/auth/register', { body: { username: `r-${ulid().toLowerCase()}`, password: TEST_PASSWORD } });
      expect(res.status, res.text).toBe(201);
    }
    const username = `r-${ulid().toLowerCase()}`;
    const limited = await c.call('POST', '/auth/register', { body: { username, password: TEST_PASSWORD } });
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('299');
    expect((await client().call('POST', '/auth/register', { body: { username, password: TEST_PASSWORD } })).status).toBe(201);
  });

  it('limits refreshes per source IP (60 per minute)', async () => {
    nextWindow(60);
    const c = client();
    const statuses: number[] = [];
    for (let i = 0; i < 60; i += 10) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => c.call('POST', '/auth/refresh', { body: { refresh_token: 'r'.repeat(43) } })));
      statuses.push(...batch.map((r) => r.status));
    }
    expect(statuses.every((s) => s === 401)).toBe(true);
    const limited = await c.call('POST', '/auth/refresh', { body: { refresh_token: 'r'.repeat(43) } });
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('59');
  });

  it('does not count requests that fail validation', async () => {
    nextWindow(60);
    const user = await seedUser(['viewer'], { store });
    const c = client();
    for (let i = 0; i < 12; i++) expect((await c.call('POST', '/auth/login', { body: { username: user.username } })).status).toBe(422);
    expect((await c.call('POST', '/auth/login', { body: { username: user.username, password: user.password } })).status).toBe(200);
  });
});
