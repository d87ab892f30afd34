import { afterEach, describe, expect, it } from 'vitest';
import { identityCache } from '../../../shared/auth/identity-cache.js';
import type { Identity } from '../../../shared/platform/api/http-services.js';

const identity = (userId: string, sessionId: string): Identity => ({
  principal: { userId, username: userId, roles: ['user'], permissions: [], sessionId },
});

afterEach(() => identityCache.clear());

describe('identity cache', () => {
  it('answers a token until its entry runs out', () => {
    identityCache.set('t1', identity('u1', 's1'), 2_000, identityCache.ticket());
    expect(identityCache.get('t1', 1_999)?.principal.userId).toBe('u1');
    expect(identityCache.get('t1', 2_000)).toBeUndefined();
    expect(identityCache.get('t1', 1_000)).toBeUndefined();
  });

  it('forgets the tokens of an ended session, and of a changed user, and only those', () => {
    const ticket = identityCache.ticket();
    identityCache.set('a', identity('u1', 's1'), 10_000, ticket);
    identityCache.set('b', identity('u1', 's2'), 10_000, ticket);
    identityCache.set('c', identity('u2', 's3'), 10_000, ticket);
    identityCache.forgetSession('s1');
    expect(identityCache.get('a', 0)).toBeUndefined();
    expect(identityCache.get('b', 0)).toBeDefined();
    identityCache.forgetUser('u1');
    expect(identityCache.get('b', 0)).toBeUndefined();
    expect(identityCache.get('c', 0)).toBeDefined();
  });

  it('does not keep what a read found when a session ended or a user changed while it was reading', () => {
    const ticket = identityCache.ticket();
    identityCache.forgetSession('s-ended-meanwhile');
    identityCache.set('t', identity('u1', 's1'), 10_000, ticket);
    expect(identityCache.get('t', 0)).toBeUndefined();
  });
});
