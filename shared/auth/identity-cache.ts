import type { Identity } from '../platform/api/http-services.js';

/** Tokens remembered at most (the oldest go first). */
const MAX_ENTRIES = 10_000;

interface Entry {
  identity: Identity;
  /** Epoch ms after which the entry is not used: the token's or session's end, or the cache time. */
  until: number;
}

/**
 * What authenticating a token read (its session and user, found live), kept per function instance so
 * that a token's next requests need no read. The writes that end a session or change a user forget the
 * entries they touch here, so in this instance they take effect at once; another instance (another
 * Lambda container) sees them when its entry runs out, `AUTH_CACHE_SECONDS` at most. The local runtime
 * is one process: there, every function shares this cache and a logout is exact.
 */
class IdentityCache {
  private readonly entries = new Map<string, Entry>();
  /** Moves on every forget: a read that began before one may have seen what it forgot. */
  private generation = 0;

  /** Taken before the reads whose result is then `set`. */
  ticket(): number {
    return this.generation;
  }

  get(token: string, nowMs: number): Identity | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (entry.until <= nowMs) {
      this.entries.delete(token);
      return undefined;
    }
    return entry.identity;
  }

  /** Keeps what was read since `ticket`, unless something was forgotten meanwhile. */
  set(token: string, identity: Identity, until: number, ticket: number): void {
    if (ticket !== this.generation) return;
    this.entries.delete(token);
    this.entries.set(token, { identity, until });
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
  }

  /** A session ended (logout, a reused refresh token). */
  forgetSession(sessionId: string): void {
    this.generation++;
    for (const [token, entry] of this.entries) if (entry.identity.principal.sessionId === sessionId) this.entries.delete(token);
  }

  /** A user changed (roles, activation, password, profile) or was deleted. */
  forgetUser(userId: string): void {
    this.generation++;
    for (const [token, entry] of this.entries) if (entry.identity.principal.userId === userId) this.entries.delete(token);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }
}

export const identityCache = new IdentityCache();
