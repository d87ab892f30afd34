import { describe, expect, it } from 'vitest';
import { ulid } from 'ulid';
import { issueAccessToken, verifyAccessToken } from '../../../shared/auth/tokens.js';
import { parseConfig } from '../../../shared/platform/config.js';
import { LocalTokenSigner } from '../../../shared/platform/local/token-signer.js';
import { systemClock } from '../../../shared/platform/ports.js';
import type { Deps } from '../../../shared/platform/runtime.js';

/** An access token must say when it ends, and must not live longer than the configured lifetime. */
const config = parseConfig({ ACCESS_TOKEN_TTL_SECONDS: '900' });
const signer = await LocalTokenSigner.create(null, config.issuer);
const deps = { config, signer, clock: systemClock } as unknown as Deps;
const now = Math.floor(Date.now() / 1000);
const claims = { sub: 'user-1', sid: 'session-1', username: 'someone', roles: ['admin'], iss: config.issuer, aud: config.audience, jti: ulid(), token_use: 'access' };

describe('verifyAccessToken', () => {
  it('accepts the tokens it issues', async () => {
    const { token } = await issueAccessToken(deps, { sub: 'user-1', sid: 'session-1', username: 'someone', roles: ['admin'] });
    expect((await verifyAccessToken(deps, token)).sub).toBe('user-1');
  });

  it('rejects a correctly signed token without exp (it would never expire)', async () => {
    const token = await signer.sign({ ...claims, iat: now, nbf: now - 5 });
    await expect(verifyAccessToken(deps, token)).rejects.toThrow();
  });

  it('rejects a correctly signed token without iat, or living longer than the configured lifetime', async () => {
    await expect(verifyAccessToken(deps, await signer.sign({ ...claims, exp: now + 600 }))).rejects.toThrow();
    await expect(verifyAccessToken(deps, await signer.sign({ ...claims, iat: now, exp: now + 10 * 365 * 86400 }))).rejects.toThrow(/lifetime/);
    await expect(verifyAccessToken(deps, await signer.sign({ ...claims, iat: now, exp: now + 901 }))).rejects.toThrow(/lifetime/);
    expect((await verifyAccessToken(deps, await signer.sign({ ...claims, iat: now, exp: now + 900 }))).sub).toBe('user-1');
  });
});
