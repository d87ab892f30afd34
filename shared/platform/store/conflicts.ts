import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Store } from './client.js';
import { buildUpdate, type UpdateSpec, type VersionCheck } from './update.js';

/**
 * Optimistic concurrency: a write conditioned on the version that was read fails when someone else
 * wrote meanwhile; the writer reads again, decides again and retries, a bounded number of times.
 */

/** A conditional write lost to a concurrent change: what was read is stale. */
export class VersionConflictError extends Error {
  constructor(readonly what = 'the record') {
    super(`${what} changed while it was being updated`);
  }
}

/** How many times a read-decide-write is tried in all before its conflict is given up on. */
export const CONFLICT_ATTEMPTS = 10;

export interface RetryOptions {
  /** Tries in all (default CONFLICT_ATTEMPTS). */
  attempts?: number;
  /** Which errors are a lost race worth another try (default: VersionConflictError). */
  isConflict?: (err: unknown) => boolean;
}

/**
 * Runs `fn` (which reads, decides and writes) until it does not lose a race, with a short random
 * backoff between tries (up to 10 ms × 2^try, capped at 320 ms). Any other error, or the conflict of the
 * last try, is thrown.
 */
export async function retryOnConflict<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? CONFLICT_ATTEMPTS;
  const isConflict = options.isConflict ?? ((err: unknown) => err instanceof VersionConflictError);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!isConflict(err) || attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 10 * 2 ** Math.min(attempt - 1, 5)));
    }
  }
}

type DynamoError = { name?: string; CancellationReasons?: { Code?: string }[] };

/** The codes of a cancelled transaction's items, in item order ('None' for the items that passed). */
export function cancellationCodes(err: unknown): string[] {
  return ((err as DynamoError)?.CancellationReasons ?? []).map((r) => r.Code ?? 'None');
}

export function isTransactionCancelled(err: unknown): boolean {
  return (err as DynamoError)?.name === 'TransactionCanceledException';
}

/** A failed condition: of a single write, or of any item of a cancelled transaction. */
export function isConditionFailure(err: unknown): boolean {
  if ((err as DynamoError)?.name === 'ConditionalCheckFailedException') return true;
  return isTransactionCancelled(err) && cancellationCodes(err).includes('ConditionalCheckFailed');
}

/**
 * A transaction that lost a race with another transaction on the same item (DynamoDB, not DynamoDB
 * Local): nothing was wrong with its conditions, so trying it again is safe.
 */
export function isTransactionConflict(err: unknown): boolean {
  if ((err as DynamoError)?.name === 'TransactionConflictException') return true;
  if (!isTransactionCancelled(err)) return false;
  const codes = cancellationCodes(err);
  return codes.includes('TransactionConflict') && !codes.includes('ConditionalCheckFailed');
}

/**
 * The conditional update with a version: applies `changes` to the item at `key` while its version
 * attribute still holds `check.expected`, else throws VersionConflictError (naming `what`).
 */
export async function updateVersioned(store: Store, key: Record<string, unknown>, check: VersionCheck, changes: UpdateSpec, what?: string): Promise<void> {
  try {
    await store.doc.send(new UpdateCommand({ TableName: store.table, Key: key, ...buildUpdate({ ...changes, expect: check }) }));
  } catch (err) {
    if (isConditionFailure(err)) throw new VersionConflictError(what);
    throw err;
  }
}
