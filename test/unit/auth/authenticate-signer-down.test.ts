import { describe, expect, it } from 'vitest';
import { authenticate, type HttpRequest } from '../../../shared/platform/api/middleware.js';
import { toApiError } from '../../../shared/platform/api/errors.js';
import { DomainError } from '../../../shared/platform/errors.js';
import { identify } from '../../../shared/auth/identity.js';
import { getConfig } from '../../../shared/platform/config.js';
import { systemClock } from '../../../shared/platform/ports.js';
import type { Deps } from '../../../shared/platform/runtime.js';

/**
 * The verifier gets its public keys from the TokenSigner (KMS GetPublicKey on AWS) on a cold start.
 * When that call fails the token is not known to be bad: the answer is 503 (try again), not 401 —
 * a frontend that sees 401 throws its user's session away.
 */
function requestWith(jwks: () => Promise<unknown>, authorization: string): HttpRequest {
  const deps = { config: getConfig(), clock: systemClock, signer: { algorithm: 'ES256', jwks, sign: async () => '' } } as unknown as Deps;
  return {
    event: {},
    context: {
      api: {
        route: { permission: 'profile:read' },
        logger: { error: () => undefined },
        request: { headers: { authorization }, deps },
      },
    },
  } as unknown as HttpRequest;
}

const header = `Bearer ${Buffer.from('{"alg":"ES256","kid":"k"}').toString('base64url')}.${Buffer.from('{"sub":"x"}').toString('base64url')}.c2ln`;

describe('authenticate when the token signer is unavailable', () => {
  it('answers 503 dependency_unavailable when the public keys cannot be fetched', async () => {
    const kmsDown = Object.assign(new Error('KMS is unavailable'), { name: 'KMSInternalException', $metadata: { httpStatusCode: 500 } });
    const err = await authenticate({ identify }).before!(requestWith(() => Promise.reject(kmsDown), header)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(toApiError(err as DomainError).status).toBe(503);
    expect((err as DomainError).code).toBe('dependency_unavailable');
  });

  it('still answers 401 for a bad token when the keys are there', async () => {
    const err = await authenticate({ identify }).before!(requestWith(async () => ({ keys: [] }), header)).catch((e: unknown) => e);
    expect(toApiError(err as DomainError).status).toBe(401);
  });
});
