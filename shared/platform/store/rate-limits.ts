import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Store } from './client.js';
import { buildUpdate } from './update.js';
import { windowAt, type Window } from '../window.js';

/**
 * Fixed-window counters kept in the table, so that every Lambda instance (and the local runtime) sees
 * the same count. One atomic ADD per count; a window's item expires (TTL) a minute after it ends.
 */

/** How long a window's item outlives the window. */
const WINDOW_GRACE_SECONDS = 60;

/**
 * Adds `amounts` to the counters of the window that holds `now` (the item at `keyOf(window start)`),
 * and answers the item as it is after the addition, with the window.
 */
export async function addToWindow(
  store: Store,
  keyOf: (windowStart: number) => Record<string, unknown>,
  windowSeconds: number,
  now: Date,
  amounts: Record<string, number>,
): Promise<Window & { counts: Record<string, unknown> }> {
  const window = windowAt(now, windowSeconds);
  const out = await store.doc.send(
    new UpdateCommand({
      TableName: store.table,
      Key: keyOf(window.start),
      ...buildUpdate({ add: amounts, set: { expires_at: window.start + windowSeconds + WINDOW_GRACE_SECONDS } }),
      ReturnValues: 'ALL_NEW',
    }),
  );
  return { ...window, counts: out.Attributes ?? {} };
}

export class RateLimitRepository {
  constructor(private readonly store: Store) {}

  /** Counts a hit and answers the count in the window and when the window ends. */
  async hit(bucket: string, windowSeconds: number, now: Date): Promise<{ count: number; resetAt: Date }> {
    const out = await addToWindow(this.store, (start) => ({ pk: `RATE#${bucket}`, sk: String(start) }), windowSeconds, now, { hits: 1 });
    return { count: Number(out.counts.hits ?? 1), resetAt: out.resetAt };
  }
}
