import type { Deps } from '../platform/runtime.js';
import type { AuditEntry } from '../platform/api/http-services.js';
import { AuditRepository } from './repo.js';

/** Appends one entry to the audit log. */
export async function recordAudit(deps: Deps, entry: AuditEntry): Promise<void> {
  await new AuditRepository(deps.store).append(entry, new Date(entry.timestamp));
}
