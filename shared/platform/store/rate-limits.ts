import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Store } from './client.js';
import { epochSeconds } from './client.js';

/**
 * Fixed-window counters kept in the table, so that every Lambda instance (and the local runtime) sees
 * the same count. One atomic ADD per request.
 */
export class RateLimitRepository {
  constructor(private readonly store: Store) {}

  /** Counts a hit and answers the count in the window and when the window ends. */
  async hit(bucket: string, windowSeconds: number, now: Date): Promise<{ count: number; resetAt: Date }> {
    const windowStart = Math.floor(epochSeconds(now) / windowSeconds) * windowSeconds;
    const resetEpoch = windowStart + windowSeconds;
    const out = await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: { pk: `RATE#${bucket}`, sk: String(windowStart) },
        UpdateExpression: 'ADD hits :one SET expires_at = :exp',
        ExpressionAttributeValues: { ':one': 1, ':exp': resetEpoch + 60 },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return { count: Number(out.Attributes?.hits ?? 1), resetAt: new Date(resetEpoch * 1000) };
  }
}
