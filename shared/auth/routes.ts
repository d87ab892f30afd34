import * as z from 'zod';
import * as s from './model.js';
import { defineRoutes } from '../platform/api/route.js';
import { pageOf } from '../platform/api/schemas.js';
import type { Operations, ApiRequest } from '../platform/api/types.js';
import { requirePrincipal } from '../platform/api/types.js';
import { forbidden, unauthorized } from '../platform/errors.js';
import { pageRequest } from '../platform/api/pagination.js';
import { AuthService, meView, userView } from './service.js';
import { UserRepository, type UserRecord } from './repo.js';
import { LoginAttemptRepository, SessionRepository } from './sessions-repo.js';
import { disconnectUser } from '../realtime/publisher.js';
import { RIGHTS_CHANGED, SESSION_ENDED } from '../realtime/channels.js';
import { pauseSchedulesOfOwner } from '../schedules/service.js';
import { logger } from '../platform/logger.js';
import { tokenSigner } from '../platform/use/signer.js';


const alias = (path: string) => [`/api/v1${path}`];
const tags = ['Authentication'];

export const authRoutes = defineRoutes([
  {
    operationId: 'login',
    method: 'POST',
    path: '/auth/login',
    aliases: alias('/auth/login'),
    group: 'auth',
    permission: null,
    summary: 'Log in with username (or e-mail) and password',
    description: 'JSON or the OAuth2 password form. Wrong credentials are a 401; repeated failures lock the account with growing backoff (429).',
    tags,
    errors: [401],
    body: s.loginBody,
    response: s.tokenView,
    acceptsForm: true,
    maxBodyBytes: 8 * 1024,
    resourceType: 'session',
    rateLimits: [
      { by: 'ip', limit: 30, windowSeconds: 60 },
      { by: 'account', limit: 10, windowSeconds: 60 },
    ],
  },
  {
    operationId: 'register',
    method: 'POST',
    path: '/auth/register',
    aliases: alias('/auth/register'),
    group: 'auth',
    permission: null,
    summary: 'Register a new user (role `user`) when self-registration is enabled',
    description: 'A 403 when self-registration is switched off (`ALLOW_REGISTRATION=false`).',
    tags,
    errors: [403],
    body: s.registerBody,
    response: s.userView,
    status: 201,
    maxBodyBytes: 8 * 1024,
    resourceType: 'user',
    rateLimits: [{ by: 'ip', limit: 10, windowSeconds: 300 }],
  },
  {
    operationId: 'refresh',
    method: 'POST',
    path: '/auth/refresh',
    aliases: alias('/auth/refresh'),
    group: 'auth',
    permission: null,
    summary: 'Exchange a refresh token for new tokens (the refresh token rotates)',
    description: 'An unknown, expired or revoked refresh token is a 401; reusing a rotated refresh token revokes its whole family.',
    tags,
    errors: [401],
    body: s.refreshBody,
    response: s.tokenView,
    maxBodyBytes: 4 * 1024,
    resourceType: 'session',
    rateLimits: [{ by: 'ip', limit: 60, windowSeconds: 60 }],
  },
  {
    operationId: 'logout',
    method: 'POST',
    path: '/auth/logout',
    aliases: alias('/auth/logout'),
    group: 'auth',
    permission: 'profile:read',
    summary: 'Log out: revoke the session (its refresh tokens and access tokens)',
    tags,
    body: s.logoutBody,
    response: z.object({ revoked: z.boolean() }),
    maxBodyBytes: 4 * 1024,
    resourceType: 'session',
  },
  {
    operationId: 'me',
    method: 'GET',
    path: '/auth/me',
    aliases: alias('/auth/me'),
    group: 'auth',
    permission: 'profile:read',
    summary: 'The current user with roles and effective permissions',
    tags,
    response: s.meView,
  },
  {
    operationId: 'listUsers',
    method: 'GET',
    path: '/auth/users',
    aliases: alias('/auth/users'),
    group: 'auth',
    permission: 'users:manage',
    summary: 'List users (admin)',
    tags,
    query: s.listUsersQuery,
    response: pageOf(s.userView),
  },
  {
    operationId: 'createUser',
    method: 'POST',
    path: '/auth/users',
    aliases: alias('/auth/users'),
    group: 'auth',
    permission: 'users:manage',
    summary: 'Create a user with roles (admin)',
    tags,
    body: s.createUserBody,
    response: s.userView,
    status: 201,
    maxBodyBytes: 8 * 1024,
    resourceType: 'user',
  },
  {
    operationId: 'updateUser',
    method: 'PUT',
    path: '/auth/users/{user_id}',
    aliases: alias('/auth/users/{user_id}'),
    group: 'auth',
    permission: 'users:manage',
    summary: 'Update a user: profile, roles, active flag, password (admin; the last admin cannot be demoted)',
    tags,
    params: s.userIdParams,
    body: s.updateUserBody,
    response: s.userView,
    maxBodyBytes: 8 * 1024,
    resourceType: 'user',
    resourceIdParam: 'user_id',
  },
  {
    operationId: 'deleteUser',
    method: 'DELETE',
    path: '/auth/users/{user_id}',
    aliases: alias('/auth/users/{user_id}'),
    group: 'auth',
    permission: 'users:manage',
    summary: 'Delete a user (admin; the last admin cannot be deleted)',
    tags,
    params: s.userIdParams,
    response: z.object({ user_id: z.string(), deleted: z.literal(true) }),
    resourceType: 'user',
    resourceIdParam: 'user_id',
  },
  {
    operationId: 'jwks',
    method: 'GET',
    path: '/.well-known/jwks.json',
    group: 'auth',
    permission: null,
    summary: 'Public keys that verify access tokens (JWKS)',
    tags,
    rawResponse: { contentTypes: ['application/json'], schema: s.jwkSet, description: 'A JWK Set (RFC 7517), not the envelope' },
  },
]);

function service(req: ApiRequest) {
  const { store } = req.deps;
  return new AuthService(req.deps, {
    users: new UserRepository(store),
    sessions: new SessionRepository(store),
    attempts: new LoginAttemptRepository(store),
  });
}

export const authOperations: Operations<typeof authRoutes> = {
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
    await disconnectUser(req.deps, principal.userId, { sessionId: principal.sessionId, close: SESSION_ENDED });
    return { data: { revoked: true }, message: 'Logged out' };
  },

  async me(req) {
    const user = (req.currentUser as UserRecord | undefined) ?? (await new UserRepository(req.deps.store).get(requirePrincipal(req).userId));
    if (!user) throw unauthorized('User no longer exists');
    return { data: meView(user) };
  },

  async listUsers(req) {
    const { startKey, respond } = await pageRequest(req, 'users');
    const page = await new UserRepository(req.deps.store).list(req.query.limit, startKey);
    return { data: respond({ items: page.items.map(userView), lastKey: page.lastKey }) };
  },

  async createUser(req) {
    const user = await service(req).createUser(req.body);
    req.audit.resourceId = user.user_id;
    return { data: userView(user), message: 'User created', status: 201 };
  },

  async updateUser(req) {
    const user = await service(req).updateUser(requirePrincipal(req), req.params.user_id, req.body);
    // Open WebSockets carry the rights of their `$connect`: close them when those change.
    if (req.body.roles !== undefined || req.body.is_active === false) await disconnectUser(req.deps, user.user_id, { close: RIGHTS_CHANGED });
    else if (req.body.password !== undefined) await disconnectUser(req.deps, user.user_id, { close: SESSION_ENDED });
    return { data: userView(user), message: 'User updated' };
  },

  async deleteUser(req) {
    await service(req).deleteUser(req.params.user_id);
    // Their schedules would fire under an id that no longer exists. A failure here leaves them to the
    // firing's own owner check, which pauses them at their next firing.
    await pauseSchedulesOfOwner(req.deps, req.params.user_id, 'the owner account was deleted').catch((err) =>
      logger.error('schedules of a deleted user not paused', { user_id: req.params.user_id, error: (err as Error).message }),
    );
    await disconnectUser(req.deps, req.params.user_id, { close: RIGHTS_CHANGED });
    return { data: { user_id: req.params.user_id, deleted: true as const }, message: 'User deleted' };
  },

  async jwks(req) {
    const jwks = await tokenSigner(req.deps).jwks();
    return { raw: { contentType: 'application/json', body: JSON.stringify(jwks) }, headers: { 'Cache-Control': 'public, max-age=300' } };
  },
};
