import { JwtVerifier } from 'aws-jwt-verify';
import { newUlid } from '../platform/ids.js';
import type { Deps } from '../platform/runtime.js';
import { tokenSigner } from '../platform/use/signer.js';

export interface AccessClaims {
  sub: string;
  sid: string;
  username: string;
  roles: string[];
}

/** The signer's public keys could not be read (KMS down): the token is not known to be bad. */
export class SignerUnavailableError extends Error {
  constructor(override readonly cause: unknown) {
    super('token signer unavailable');
    this.name = 'SignerUnavailableError';
  }
}

type Verifier = ReturnType<typeof JwtVerifier.create<{ issuer: string; audience: string; jwksUri: string }>>;
let verifier: { signer: unknown; verifier: Verifier } | undefined;

/**
 * aws-jwt-verify fetches JWKS only over HTTPS, so the verifier is seeded with the signer's public
 * keys (KMS GetPublicKey on AWS, the local key file locally) and never fetches.
 */
async function getVerifier(deps: Deps): Promise<Verifier> {
  if (verifier && verifier.signer === tokenSigner(deps)) return verifier.verifier;
  const v = JwtVerifier.create({
    issuer: deps.config.issuer,
    audience: deps.config.audience,
    jwksUri: `https://${deps.config.issuer}.invalid/.well-known/jwks.json`,
  });
  let jwks;
  try {
    jwks = await tokenSigner(deps).jwks();
  } catch (err) {
    throw new SignerUnavailableError(err);
  }
  v.cacheJwks(jwks as never);
  verifier = { signer: tokenSigner(deps), verifier: v };
  return v;
}

export async function issueAccessToken(deps: Deps, claims: AccessClaims): Promise<{ token: string; expiresIn: number }> {
  const now = Math.floor(deps.clock.now().getTime() / 1000);
  const expiresIn = deps.config.accessTokenTtlSeconds;
  const token = await tokenSigner(deps).sign({
    ...claims,
    iss: deps.config.issuer,
    aud: deps.config.audience,
    iat: now,
    nbf: now - 5,
    exp: now + expiresIn,
    jti: newUlid(),
    token_use: 'access',
  });
  return { token, expiresIn };
}

/**
 * Throws when the token is malformed, wrongly signed, expired or for another audience, and when it does
 * not say when it was issued and ends (`iat`, `exp`) or would live longer than the configured access
 * token lifetime: a token that never expires is never accepted, whoever signed it.
 */
export async function verifyAccessToken(deps: Deps, token: string): Promise<AccessClaims & { exp: number }> {
  const v = await getVerifier(deps);
  const payload = (await v.verify(token as never)) as unknown as Record<string, unknown>;
  if (payload.token_use !== 'access' || typeof payload.sub !== 'string' || typeof payload.sid !== 'string') {
    throw new Error('not an access token');
  }
  const { iat, exp } = payload;
  if (typeof iat !== 'number' || typeof exp !== 'number' || !Number.isFinite(iat) || !Number.isFinite(exp)) {
    throw new Error('access token without iat or exp');
  }
  if (exp - iat > deps.config.accessTokenTtlSeconds) throw new Error('access token lifetime exceeds the configured maximum');
  return {
    sub: payload.sub,
    sid: payload.sid,
    username: String(payload.username ?? ''),
    roles: Array.isArray(payload.roles) ? (payload.roles as string[]) : [],
    exp,
  };
}
