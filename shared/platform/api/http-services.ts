import type { Deps } from '../runtime.js';
import type { Principal } from '../principal.js';

/** An authenticated caller: the principal, and the account record the check read (saves a second read). */
export interface Identity {
  principal: Principal;
  account?: unknown;
}

/**
 * What the HTTP stack needs from the areas above it, handed in by the composition root (`shared/http.ts`)
 * so that the platform knows no area.
 */
export interface HttpServices {
  /** Resolves a bearer token; throws `unauthorized` for a bad or ended one, `unavailable` when it cannot tell. */
  identify(deps: Deps, token: string): Promise<Identity>;
  /**
   * Resolves a bearer token from its signature and claims alone (no session read): for routes marked
   * `authWhenStoreDown: 'token-only'` while the table is unreachable. Throws `unauthorized` for a bad token.
   */
  verifyToken?(deps: Deps, token: string): Promise<Identity>;
  /** Records one audit entry (again, harmlessly, for an id already written); throws when it could not. */
  audit(deps: Deps, entry: AuditEntry): Promise<void>;
  /**
   * Hands an entry whose write kept failing to the audit retry queue, which writes it later (and
   * alarms when it cannot); throws when even that failed.
   */
  deferAudit?(deps: Deps, entry: AuditEntry): Promise<void>;
}

export interface AuditEntry {
  /** Chosen once per request (a ULID of `timestamp`), so that a retried write stores one record. */
  audit_id: string;
  timestamp: string;
  actor_id: string | null;
  actor_username: string | null;
  action: string;
  resource_type: string;
  resource_id: string | null;
  outcome: 'success' | 'failure' | 'denied';
  status_code: number;
  request_id: string;
  ip: string;
  user_agent: string;
  method: string;
  path: string;
  details?: Record<string, unknown>;
}
