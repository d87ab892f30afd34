import { describe, expect, it } from 'vitest';
import { AuthService } from '../../../shared/auth/service.js';
import { toApiError } from '../../../shared/platform/api/errors.js';
import { DomainError } from '../../../shared/platform/errors.js';
import { type UserRepository } from '../../../shared/auth/repo.js';
import { VersionConflictError as ConcurrentUpdateError } from '../../../shared/platform/store/conflicts.js';
import type { LoginAttemptRepository, SessionRepository } from '../../../shared/auth/sessions-repo.js';
import type { Deps } from '../../../shared/platform/runtime.js';
import { getConfig } from '../../../shared/platform/config.js';
import { systemClock } from '../../../shared/platform/ports.js';

/**
 * On DynamoDB (not DynamoDB Local) two transactions that touch the same item at once, such as two
 * admins created together (both add to the admin counter), cancel one with TransactionConflict, which
 * the user store reports as ConcurrentUpdateError. That is a lost race to retry (409), never a 500.
 */
describe('AuthService.createUser under a concurrent transaction', () => {
  it('answers 409 conflict when the transaction lost a race', async () => {
    const users = { create: async () => Promise.reject(new ConcurrentUpdateError()) } as unknown as UserRepository;
    const service = new AuthService({ config: getConfig(), clock: systemClock } as unknown as Deps, {
      users,
      sessions: {} as SessionRepository,
      attempts: {} as LoginAttemptRepository,
    });
    const err = await service.createUser({ username: 'racer', password: 'a-long-enough-password', roles: ['admin'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(toApiError(err as DomainError).status).toBe(409);
    expect((err as DomainError).code).toBe('conflict');
  });
});
