import type { Deps } from '../platform/runtime.js';
import type { Identity } from '../platform/api/http-services.js';
import { dependencyUnavailable, unauthorized } from '../platform/errors.js';
import { permissionsOf, ROLES, type Role } from '../platform/permissions.js';
import { epochSeconds } from '../platform/store/client.js';
import { logger } from '../platform/logger.js';
import { SignerUnavailableError, verifyAccessToken } from './tokens.js';
import { sessionEndReason } from './session-rules.js';
import { SessionRepository } from './sessions-repo.js';
import { identityCache } from './identity-cache.js';

/**
 * Who a bearer token speaks for: its signature and expiry, then one consistent read of its session and
 * user, which must both still be live (logout, a password change or deactivation end a token at once).
 * What the read found is kept for the token's next requests (`identityCache`, `AUTH_CACHE_SECONDS`).
 */
export async function identify(deps: Deps, token: string): Promise<Identity> {
  const nowMs = deps.clock.now().getTime();
  const cached = identityCache.get(token, nowMs);
  if (cached) return cached;
  const ticket = identityCache.ticket();
  let claims;
  try {
    claims = await verifyAccessToken(deps, token);
  } catch (err) {
    if (err instanceof SignerUnavailableError) {
      logger.error('token signer unavailable', { error: err.cause as Error });
      throw dependencyUnavailable('The token signer');
    }
    throw unauthorized('Invalid or expired token');
  }
  const { session, user } = await new SessionRepository(deps.store).getWithUser(claims.sid, claims.sub);
  const ended = sessionEndReason(session, user, epochSeconds(deps.clock.now()));
  if (ended || !session || !user) throw unauthorized(ended ?? 'Session has ended');
  const roles = user.roles as Role[];
  const identity: Identity = {
    principal: { userId: user.user_id, username: user.username, roles, permissions: permissionsOf(roles), sessionId: session.session_id },
    account: user,
  };
  const cacheMs = deps.config.authCacheSeconds * 1000;
  if (cacheMs > 0) identityCache.set(token, identity, Math.min(claims.exp * 1000, session.expires_at * 1000, nowMs + cacheMs), ticket);
  return identity;
}

/**
 * Who a bearer token speaks for, from its signature, expiry and claims alone: no session read, so a
 * token ended by logout still passes until it expires. Only for the routes marked
 * `authWhenStoreDown: 'token-only'` while the table cannot be reached (see the authenticate middleware).
 */
export async function identifyByToken(deps: Deps, token: string): Promise<Identity> {
  let claims;
  try {
    claims = await verifyAccessToken(deps, token);
  } catch (err) {
    if (err instanceof SignerUnavailableError) throw dependencyUnavailable('The token signer');
    throw unauthorized('Invalid or expired token');
  }
  const roles = claims.roles.filter((r): r is Role => (ROLES as readonly string[]).includes(r));
  return { principal: { userId: claims.sub, username: claims.username, roles, permissions: permissionsOf(roles), sessionId: claims.sid } };
}
