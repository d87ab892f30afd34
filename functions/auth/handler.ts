import { createHttpHandler } from '../../shared/platform/api/http-handler.js';
import type { Operations, ApiRequest } from '../../shared/platform/api/types.js';
import { requirePrincipal } from '../../shared/platform/api/types.js';
import { authRoutes } from '../../shared/auth/routes.js';
import { forbidden } from '../../shared/platform/api/errors.js';
import { decodeCursor, encodeCursor } from '../../shared/platform/api/pagination.js';
import { AuthService, meView, userView } from '../../shared/auth/service.js';
import { UserRepository } from '../../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../../shared/auth/sessions-repo.js';
import { AuditRepository } from '../../shared/audit/repo.js';
import { unauthorized } from '../../shared/platform/api/errors.js';
import { disconnectUser } from '../../shared/realtime/publisher.js';

function service(req: ApiRequest) {
  const { store } = req.deps;
  return new AuthService(req.deps, {
    users: new UserRepository(store),
    sessions: new SessionRepository(store),
    attempts: new LoginAttemptRepository(store),
  });
}

const operations: Operations<typeof authRoutes> = {
  async login(req) {
    req.audit.details = { username: req.body.username };
    const tokens = await service(req).login(req.body.username, req.body.password);
    req.audit.resourceId = tokens.user.user_id;
    return { data: tokens, message: 'Logged in' };
  },

  async register(req) {
    if (!req.deps.config.allowRegistration) throw forbidden('Self-registration is disabled');
    const user = await service(req).createUser({ ...req.body, roles: ['user'] });
    req.audit.resourceId = user.user_id;
    return { data: userView(user), message: 'User registered', status: 201 };
  },

  async refresh(req) {
    const tokens = await service(req).refresh(req.body.refresh_token);
    req.audit.resourceId = tokens.user.user_id;
    return { data: tokens, message: 'Tokens refreshed' };
  },

  async logout(req) {
    const principal = requirePrincipal(req);
    await service(req).logout(principal, req.body?.refresh_token);
    await disconnectUser(req.deps, principal.userId, { sessionId: principal.sessionId });
    return { data: { revoked: true }, message: 'Logged out' };
  },

  async me(req) {
    const user = req.currentUser ?? (await new UserRepository(req.deps.store).get(requirePrincipal(req).userId));
    if (!user) throw unauthorized('User no longer exists');
    return { data: meView(user) };
  },

  async listUsers(req) {
    const secret = await req.deps.appSecret();
    const scope = 'users';
    const page = await new UserRepository(req.deps.store).list(req.query.limit, decodeCursor(req.query.cursor, scope, secret));
    return { data: { items: page.items.map(userView), next_cursor: encodeCursor(page.lastKey, scope, secret) } };
  },

  async createUser(req) {
    const user = await service(req).createUser(req.body);
    req.audit.resourceId = user.user_id;
    return { data: userView(user), message: 'User created', status: 201 };
  },

  async updateUser(req) {
    const user = await service(req).updateUser(requirePrincipal(req), req.params.user_id, req.body);
    // Open WebSockets carry the rights of their `$connect`: close them when those change.
    if (req.body.password !== undefined || req.body.roles !== undefined || req.body.is_active === false) await disconnectUser(req.deps, user.user_id);
    return { data: userView(user), message: 'User updated' };
  },

  async deleteUser(req) {
    await service(req).deleteUser(req.params.user_id);
    await disconnectUser(req.deps, req.params.user_id);
    return { data: { user_id: req.params.user_id, deleted: true as const }, message: 'User deleted' };
  },

  async jwks(req) {
    const jwks = await req.deps.signer.jwks();
    return { raw: { contentType: 'application/json', body: JSON.stringify(jwks) }, headers: { 'Cache-Control': 'public, max-age=300' } };
  },

  async listAuditLogs(req) {
    const { limit, cursor, from, to, ...filter } = req.query;
    const secret = await req.deps.appSecret();
    const scope = `audit:${JSON.stringify({ ...filter, from, to })}`;
    const position = decodeCursor(cursor, scope, secret) as { month?: string; key?: Record<string, unknown> } | undefined;
    const page = await new AuditRepository(req.deps.store).list(
      { ...filter, from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined },
      limit,
      position,
      req.deps.clock.now(),
    );
    return { data: { items: page.items, next_cursor: encodeCursor(page.next, scope, secret) } };
  },
};

export const handler = createHttpHandler('auth', [authRoutes], operations);
