import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { Deps } from '../platform/runtime.js';
import type { AuditEntry } from '../platform/api/http-services.js';
import { logger } from '../platform/logger.js';
import { auditQueue } from '../platform/use/audit-queue.js';
import { AuditRepository } from './repo.js';

/** Appends one entry to the audit log (once: an entry already written is left as it is). */
export async function recordAudit(deps: Deps, entry: AuditEntry): Promise<void> {
  await new AuditRepository(deps.store).append(entry, new Date(entry.timestamp));
}

/** Hands an entry whose write failed to the audit retry queue (`retryAudits` writes it later). */
export async function deferAudit(deps: Deps, entry: AuditEntry): Promise<void> {
  await auditQueue(deps).send({ ...entry });
}

function auditEntryOf(body: string): AuditEntry | undefined {
  try {
    const value = JSON.parse(body) as Partial<AuditEntry>;
    const ok = typeof value === 'object' && value !== null && typeof value.audit_id === 'string' && typeof value.timestamp === 'string' && !Number.isNaN(Date.parse(value.timestamp)) && typeof value.action === 'string';
    return ok ? (value as AuditEntry) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The audit retry queue's consumer: writes each deferred entry (a redelivered one is written once).
 * A write that fails again is reported as a batch item failure: SQS redelivers it, and after the
 * queue's receive limit it moves to the audit dead-letter queue, which alarms.
 */
export async function retryAudits(deps: Deps, event: SQSEvent): Promise<SQSBatchResponse> {
  const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
  for (const record of event.Records) {
    const entry = auditEntryOf(record.body);
    if (!entry) {
      // Kept, not dropped: it goes to the dead-letter queue, where the alarm shows it.
      logger.error('audit retry message is not an audit entry', { message_id: record.messageId });
      batchItemFailures.push({ itemIdentifier: record.messageId });
      continue;
    }
    try {
      await recordAudit(deps, entry);
    } catch (err) {
      logger.error('deferred audit entry not written; it will be delivered again', { message_id: record.messageId, audit_id: entry.audit_id, error: err as Error });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
}
