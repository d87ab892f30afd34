import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { newUlid } from '../ids.js';
import type { Store } from './client.js';
import { epochSeconds } from './client.js';

export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** An in-progress record older than this belongs to a request that died; a retry may take it over. */
export const IN_PROGRESS_EXPIRY_SECONDS = 60;
/** Rounds of put / read / take-over before a claim gives up (each round loses only to another claimer). */
export const MAX_CLAIM_ROUNDS = 3;

export interface IdempotencyRecord {
  request_hash: string;
  state: 'in_progress' | 'completed';
  status_code?: number;
  response_body?: string;
  expires_at: number;
  in_progress_expires_at: number;
  /** Who holds the record while it is in progress: completion and release are conditional on it. */
  claim_token?: string;
  /**
   * The id of what the operation creates, chosen at the first claim and kept by a take-over of the same
   * request: a retry after a crash finds what the first attempt stored instead of creating it again.
   */
  resource_id?: string;
}

export interface Claim {
  token: string;
  resourceId: string;
  /** The record was taken over from an earlier attempt of the same request (which may have stored its effect). */
  takeover: boolean;
}

export type ClaimResult = ({ claimed: true } & Claim) | { claimed: false; existing: IdempotencyRecord };

/** The claim was lost (taken over, or all rounds lost to other claimers). */
export class ClaimLostError extends Error {
  constructor(scope: string) {
    super(`idempotency claim on ${scope} lost`);
    this.name = 'ClaimLostError';
  }
}

const isConditionFailed = (err: unknown) => (err as { name?: string }).name === 'ConditionalCheckFailedException';

/** The same design as Powertools' idempotency utility, on the single table. */
export class IdempotencyRepository {
  constructor(private readonly store: Store) {}

  private key(scope: string) {
    return { pk: `IDEMPOTENCY#${scope}`, sk: 'IDEMPOTENCY' };
  }

  /**
   * Claims the scope for a run of the request: a new record, an expired one, or an in-progress one whose
   * holder died (older than IN_PROGRESS_EXPIRY_SECONDS, or given back by `release`). A take-over of the
   * same request keeps the record's resource id. Answers the record found otherwise; throws
   * ClaimLostError after MAX_CLAIM_ROUNDS rounds lost to concurrent claimers.
   */
  async claim(scope: string, requestHash: string, now: Date): Promise<ClaimResult> {
    const nowEpoch = epochSeconds(now);
    for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
      const token = randomUUID();
      const resourceId = newUlid(now.getTime());
      try {
        await this.store.doc.send(
          new PutCommand({
            TableName: this.store.table,
            Item: {
              ...this.key(scope),
              entity: 'idempotency',
              request_hash: requestHash,
              state: 'in_progress',
              claim_token: token,
              resource_id: resourceId,
              expires_at: nowEpoch + IDEMPOTENCY_TTL_SECONDS,
              in_progress_expires_at: nowEpoch + IN_PROGRESS_EXPIRY_SECONDS,
            },
            ConditionExpression: 'attribute_not_exists(pk) OR expires_at < :now',
            ExpressionAttributeValues: { ':now': nowEpoch },
          }),
        );
        return { claimed: true, token, resourceId, takeover: false };
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
      const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: this.key(scope), ConsistentRead: true }));
      const existing = out.Item as IdempotencyRecord | undefined;
      if (!existing) continue;
      if (existing.state !== 'in_progress' || existing.in_progress_expires_at >= nowEpoch || existing.expires_at < nowEpoch) return { claimed: false, existing };
      // A dead (or released) attempt: take it over, on the condition that nobody else did since it was read.
      const sameRequest = existing.request_hash === requestHash && !!existing.resource_id;
      const keptId = sameRequest ? existing.resource_id! : resourceId;
      try {
        await this.store.doc.send(
          new UpdateCommand({
            TableName: this.store.table,
            Key: this.key(scope),
            UpdateExpression: 'SET claim_token = :token, resource_id = :rid, request_hash = :hash, in_progress_expires_at = :ipe',
            ConditionExpression: '#state = :inProgress AND in_progress_expires_at = :seen',
            ExpressionAttributeNames: { '#state': 'state' },
            ExpressionAttributeValues: {
              ':token': token,
              ':rid': keptId,
              ':hash': requestHash,
              ':ipe': nowEpoch + IN_PROGRESS_EXPIRY_SECONDS,
              ':inProgress': 'in_progress',
              ':seen': existing.in_progress_expires_at,
            },
          }),
        );
        return { claimed: true, token, resourceId: keptId, takeover: sameRequest };
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
    }
    throw new ClaimLostError(scope);
  }

  /** Stores the answer, if the claim is still the caller's; answers false when it was taken over meanwhile. */
  async complete(scope: string, token: string, statusCode: number, responseBody: string): Promise<boolean> {
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: this.key(scope),
          UpdateExpression: 'SET #state = :done, status_code = :status, response_body = :body REMOVE claim_token',
          ConditionExpression: 'claim_token = :token AND #state = :inProgress',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':done': 'completed', ':status': statusCode, ':body': responseBody, ':token': token, ':inProgress': 'in_progress' },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /**
   * Gives the claim back after a failed attempt: the next request with the key may take it over at once.
   * The record (and its resource id) stays, so that a retry of the same request finds whatever the failed
   * attempt stored. Nothing happens when the claim is no longer the caller's.
   */
  async release(scope: string, token: string): Promise<void> {
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: this.key(scope),
          UpdateExpression: 'SET in_progress_expires_at = :zero REMOVE claim_token',
          ConditionExpression: 'claim_token = :token AND #state = :inProgress',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':zero': 0, ':token': token, ':inProgress': 'in_progress' },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  /** Forgets the scope entirely (tests and administration). */
  async forget(scope: string): Promise<void> {
    await this.store.doc.send(new DeleteCommand({ TableName: this.store.table, Key: this.key(scope) }));
  }
}
