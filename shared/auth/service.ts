import { newUlid } from '../platform/ids.js';
import type { Deps } from '../platform/runtime.js';
import type { UserRecord, UserRepository } from './repo.js';
import { LastAdminError, UniqueTakenError } from './repo.js';
import { VersionConflictError } from '../platform/store/conflicts.js';
import type { LoginAttemptRepository, SessionRepository } from './sessions-repo.js';
import { RefreshReuseError } from './sessions-repo.js';
import { conflict, forbidden, notFound, rateLimited, unauthorized } from '../platform/errors.js';
import { dummyPasswordHash, hashPassword, newOpaqueToken, sha256, verifyPassword } from './passwords.js';
import { lockSecondsAfter } from './lockout.js';
import { sessionEndReason } from './session-rules.js';
import { permissionsOf, type Role } from '../platform/permissions.js';
import { issueAccessToken } from './tokens.js';
import type { Principal } from '../platform/principal.js';
import { viewOf } from '../platform/view.js';
import { userView as userViewSchema } from './model.js';

export interface AuthRepositories {
  users: UserRepository;
  sessions: SessionRepository;
  attempts: LoginAttemptRepository;
}

export function userView(u: UserRecord) {
  return viewOf(userViewSchema, u);
}

export function meView(u: UserRecord) {
  return { ...userView(u), permissions: permissionsOf(u.roles) };
}

export interface NewUser {
  username: string;
  password: string;
  email?: string;
  full_name?: string;
  roles: Role[];
}

/** Identity: users, sessions (refresh-token families), access tokens, lockout. */
export class AuthService {
  constructor(
    private readonly deps: Deps,
    private readonly repos: AuthRepositories,
  ) {}

  private now() {
    return this.deps.clock.now();
  }

  async createUser(input: NewUser): Promise<UserRecord> {
    const now = this.now().toISOString();
    const user: UserRecord = {
      user_id: newUlid(),
      username: input.username,
      ...(input.email ? { email: input.email.toLowerCase() } : {}),
      ...(input.full_name ? { full_name: input.full_name } : {}),
      roles: [...new Set(input.roles)],
      is_active: true,
      password_hash: await hashPassword(input.password),
      created_at: now,
      updated_at: now,
    };
    try {
      await this.repos.users.create(user);
    } catch (err) {
      if (err instanceof UniqueTakenError) throw conflict(`${err.field} is already taken`);
      // DynamoDB cancels one of two transactions racing on the admin counter (TransactionConflict).
      if (err instanceof VersionConflictError) throw conflict('Another user was being created at the same time; try again');
      throw err;
    }
    return user;
  }

  async login(login: string, password: string) {
    const now = this.now();
    const user = await this.repos.users.findByLogin(login);
    // Failures count per account, whichever name (username or e-mail) was typed; unknown names per name.
    const lockKey = user ? `user#${user.user_id}` : `name#${login.toLowerCase()}`;
    const attempts = await this.repos.attempts.get(lockKey);
    if (attempts?.locked_until && new Date(attempts.locked_until) > now) {
      throw rateLimited((new Date(attempts.locked_until).getTime() - now.getTime()) / 1000, 'Account is temporarily locked after repeated failed logins');
    }
    const ok = await verifyPassword(password, user?.password_hash ?? (await dummyPasswordHash()));
    if (!user || !ok || !user.is_active) {
      const { lockedUntil } = await this.repos.attempts.recordFailure(lockKey, now, lockSecondsAfter);
      if (lockedUntil) {
        throw rateLimited((lockedUntil.getTime() - now.getTime()) / 1000, 'Account is temporarily locked after repeated failed logins');
      }
      throw unauthorized('Invalid username or password');
    }
    if (attempts) await this.repos.attempts.clear(lockKey);
    await this.repos.users.touchLogin(user.user_id, now.toISOString());
    return this.startSession({ ...user, last_login_at: now.toISOString() });
  }

  private async startSession(user: UserRecord) {
    const now = this.now();
    const sessionId = newUlid();
    const refreshToken = newOpaqueToken();
    await this.repos.sessions.start(
      {
        session_id: sessionId,
        user_id: user.user_id,
        revoked: false,
        created_at: now.toISOString(),
        expires_at: Math.floor(now.getTime() / 1000) + this.deps.config.refreshTokenTtlSeconds,
      },
      sha256(refreshToken),
    );
    return this.tokens(user, sessionId, refreshToken);
  }

  private async tokens(user: UserRecord, sessionId: string, refreshToken: string) {
    const { token, expiresIn } = await issueAccessToken(this.deps, {
      sub: user.user_id,
      sid: sessionId,
      username: user.username,
      roles: user.roles,
    });
    return { access_token: token, refresh_token: refreshToken, token_type: 'bearer' as const, expires_in: expiresIn, user: meView(user) };
  }

  async refresh(refreshToken: string) {
    const now = this.now();
    const record = await this.repos.sessions.getRefresh(sha256(refreshToken));
    if (!record || record.expires_at <= Math.floor(now.getTime() / 1000)) throw unauthorized('Invalid or expired refresh token');
    if (record.used_at) {
      await this.repos.sessions.revoke(record.session_id, 'refresh_token_reuse', now.toISOString());
      throw unauthorized('Refresh token was already used; the session has been revoked');
    }
    const [user, session] = await Promise.all([this.repos.users.get(record.user_id), this.repos.sessions.get(record.session_id)]);
    const ended = sessionEndReason(session, user, Math.floor(now.getTime() / 1000));
    if (ended || !user) throw unauthorized(ended ?? 'User is not active');
    const next = newOpaqueToken();
    try {
      await this.repos.sessions.rotate(record, sha256(next), now.toISOString(), now);
    } catch (err) {
      if (err instanceof RefreshReuseError) {
        await this.repos.sessions.revoke(record.session_id, 'refresh_token_reuse', now.toISOString());
        throw unauthorized('Refresh token was already used or the session has ended');
      }
      throw err;
    }
    return this.tokens(user, record.session_id, next);
  }

  async logout(principal: Principal, refreshToken?: string): Promise<void> {
    const now = this.now().toISOString();
    await this.repos.sessions.revoke(principal.sessionId, 'logout', now);
    if (refreshToken) {
      const record = await this.repos.sessions.getRefresh(sha256(refreshToken));
      if (record && record.user_id === principal.userId && record.session_id !== principal.sessionId) {
        await this.repos.sessions.revoke(record.session_id, 'logout', now);
      }
    }
  }

  async updateUser(
    actor: Principal,
    userId: string,
    changes: { email?: string; full_name?: string; roles?: Role[]; is_active?: boolean; password?: string },
  ): Promise<UserRecord> {
    const before = await this.repos.users.get(userId);
    if (!before) throw notFound('User');
    if (actor.userId === userId && changes.is_active === false) throw forbidden('You cannot deactivate yourself');
    const { password, ...rest } = changes;
    const update = {
      ...rest,
      ...(rest.email ? { email: rest.email.toLowerCase() } : {}),
      ...(rest.roles ? { roles: [...new Set(rest.roles)] } : {}),
      ...(password ? { password_hash: await hashPassword(password), sessions_valid_after: this.now().toISOString() } : {}),
    };
    try {
      return await this.repos.users.update(before, update, this.now().toISOString());
    } catch (err) {
      if (err instanceof LastAdminError) throw conflict('The last admin cannot be demoted or deactivated');
      if (err instanceof UniqueTakenError) throw conflict(`${err.field} is already taken`);
      if (err instanceof VersionConflictError) throw conflict('The user was changed by another request; reload and try again');
      throw err;
    }
  }

  async deleteUser(userId: string): Promise<void> {
    const user = await this.repos.users.get(userId);
    if (!user) throw notFound('User');
    try {
      await this.repos.users.delete(user);
    } catch (err) {
      if (err instanceof LastAdminError) throw conflict('The last admin cannot be deleted');
      if (err instanceof VersionConflictError) throw notFound('User');
      throw err;
    }
  }
}
