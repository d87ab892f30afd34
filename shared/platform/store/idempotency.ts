import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Store } from './client.js';
import { epochSeconds } from './client.js';

export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** An in-progress record older than this belongs to a request that died; a retry may take it over. */
export const IN_PROGRESS_EXPIRY_SECONDS = 60;

export interface IdempotencyRecord {
  request_hash: string;
  state: 'in_progress' | 'completed';
  status_code?: number;
  response_body?: string;
  expires_at: number;
  in_progress_expires_at: number;
}

export type ClaimResult = { claimed: true } | { claimed: false; existing: IdempotencyRecord };

/** The same design as Powertools' idempotency utility, on the single table. */
export class IdempotencyRepository {
  constructor(private readonly store: Store) {}

  private key(scope: string) {
    return { pk: `IDEMPOTENCY#${scope}`, sk: 'IDEMPOTENCY' };
  }

  async claim(scope: string, requestHash: string, now: Date): Promise<ClaimResult> {
    const nowEpoch = epochSeconds(now);
    try {
      await this.store.doc.send(
        new PutCommand({
          TableName: this.store.table,
          Item: {
            ...this.key(scope),
            entity: 'idempotency',
            request_hash: requestHash,
            state: 'in_progress',
            expires_at: nowEpoch + IDEMPOTENCY_TTL_SECONDS,
            in_progress_expires_at: nowEpoch + IN_PROGRESS_EXPIRY_SECONDS,
          },
          ConditionExpression:
            'attribute_not_exists(pk) OR expires_at < :now OR (#state = :inProgress AND in_progress_expires_at < :now)',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':now': nowEpoch, ':inProgress': 'in_progress' },
        }),
      );
      return { claimed: true };
    } catch (err) {
      if ((err as { name?: string }).name !== 'ConditionalCheckFailedException') throw err;
      const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: this.key(scope), ConsistentRead: true }));
      if (!out.Item) return this.claim(scope, requestHash, now);
      return { claimed: false, existing: out.Item as IdempotencyRecord };
    }
  }

  async complete(scope: string, statusCode: number, responseBody: string): Promise<void> {
    await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: this.key(scope),
        UpdateExpression: 'SET #state = :done, status_code = :status, response_body = :body',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':done': 'completed', ':status': statusCode, ':body': responseBody },
      }),
    );
  }

  async release(scope: string): Promise<void> {
    await this.store.doc.send(new DeleteCommand({ TableName: this.store.table, Key: this.key(scope) }));
  }
}
