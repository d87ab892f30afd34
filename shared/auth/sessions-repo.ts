import { GetCommand, TransactWriteCommand, UpdateCommand, DeleteCommand } from '@aws-sdk/lib-dynamodb';
import type { Store } from '../platform/store/client.js';
import { getItems } from '../platform/store/batch-get.js';
import { epochSeconds } from '../platform/store/client.js';
import type { UserRecord } from './repo.js';
import { identityCache } from './identity-cache.js';

/**
 * A session is one refresh-token family: the first refresh token is issued at login, each refresh
 * rotates it, and access tokens carry the family id (`sid`). Revoking the family (logout, reuse of a
 * rotated token) ends every token of it.
 */
export interface SessionRecord {
  session_id: string;
  user_id: string;
  revoked: boolean;
  created_at: string;
  /** Epoch seconds; checked in code, TTL only cleans up. */
  expires_at: number;
  revoked_reason?: string;
}

export interface RefreshRecord {
  token_hash: string;
  session_id: string;
  user_id: string;
  expires_at: number;
  used_at?: string;
}

const sessionKey = (id: string) => ({ pk: `SESSION#${id}`, sk: 'SESSION' });
const refreshKey = (hash: string) => ({ pk: `REFRESH#${hash}`, sk: 'REFRESH' });
const userKey = (id: string) => ({ pk: `USER#${id}`, sk: 'PROFILE' });

export class RefreshReuseError extends Error {}

export class SessionRepository {
  constructor(private readonly store: Store) {}

  async start(session: SessionRecord, refreshHash: string): Promise<void> {
    await this.store.doc.send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: this.store.table, Item: { ...sessionKey(session.session_id), entity: 'session', ...session }, ConditionExpression: 'attribute_not_exists(pk)' } },
          {
            Put: {
              TableName: this.store.table,
              Item: { ...refreshKey(refreshHash), entity: 'refresh', token_hash: refreshHash, session_id: session.session_id, user_id: session.user_id, expires_at: session.expires_at },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
        ],
      }),
    );
  }

  async getRefresh(hash: string): Promise<RefreshRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: refreshKey(hash), ConsistentRead: true }));
    return out.Item as RefreshRecord | undefined;
  }

  async get(sessionId: string): Promise<SessionRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: sessionKey(sessionId), ConsistentRead: true }));
    return out.Item as SessionRecord | undefined;
  }

  /** The session and its user in one round trip, for authenticating a request. */
  async getWithUser(sessionId: string, userId: string): Promise<{ session?: SessionRecord; user?: UserRecord }> {
    const items = await getItems(this.store, [sessionKey(sessionId), userKey(userId)], { consistent: true });
    return {
      session: items.find((i) => i.pk === sessionKey(sessionId).pk) as SessionRecord | undefined,
      user: items.find((i) => i.pk === userKey(userId).pk) as UserRecord | undefined,
    };
  }

  /**
   * Marks the presented refresh token used and stores its successor, only if it was unused and the
   * session is live. A failed condition means the token was used before: the caller revokes the family.
   */
  async rotate(old: RefreshRecord, newHash: string, nowIso: string, now: Date): Promise<void> {
    try {
      await this.store.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.store.table,
                Key: refreshKey(old.token_hash),
                UpdateExpression: 'SET used_at = :now',
                ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(used_at)',
                ExpressionAttributeValues: { ':now': nowIso },
              },
            },
            {
              ConditionCheck: {
                TableName: this.store.table,
                Key: sessionKey(old.session_id),
                ConditionExpression: 'revoked = :f AND expires_at > :nowEpoch',
                ExpressionAttributeValues: { ':f': false, ':nowEpoch': epochSeconds(now) },
              },
            },
            {
              Put: {
                TableName: this.store.table,
                Item: { ...refreshKey(newHash), entity: 'refresh', token_hash: newHash, session_id: old.session_id, user_id: old.user_id, expires_at: old.expires_at },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      );
    } catch (err) {
      if ((err as { name?: string }).name === 'TransactionCanceledException') throw new RefreshReuseError('refresh token reuse');
      throw err;
    }
  }

  /** Ends the session; this instance's cached identities of it go at once (see identityCache). */
  async revoke(sessionId: string, reason: string, nowIso: string): Promise<void> {
    await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: sessionKey(sessionId),
        UpdateExpression: 'SET revoked = :t, revoked_reason = :r, revoked_at = :now',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':t': true, ':r': reason, ':now': nowIso },
      }),
    ).catch((err) => {
      if ((err as { name?: string }).name !== 'ConditionalCheckFailedException') throw err;
    });
    identityCache.forgetSession(sessionId);
  }
}

/** Failed-login counter per account, kept until a successful login or its expiry. */
export class LoginAttemptRepository {
  constructor(private readonly store: Store) {}
  private key(login: string) {
    return { pk: `LOGIN#${login.toLowerCase()}`, sk: 'FAILURES' };
  }
  async get(login: string): Promise<{ failures: number; locked_until?: string } | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: this.key(login), ConsistentRead: true }));
    return out.Item as { failures: number; locked_until?: string } | undefined;
  }
  async recordFailure(login: string, now: Date, lockSeconds: (failures: number) => number): Promise<{ failures: number; lockedUntil?: Date }> {
    const out = await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: this.key(login),
        UpdateExpression: 'ADD failures :one SET expires_at = :exp',
        ExpressionAttributeValues: { ':one': 1, ':exp': epochSeconds(now) + 24 * 3600 },
        ReturnValues: 'ALL_NEW',
      }),
    );
    const failures = Number(out.Attributes?.failures ?? 1);
    const seconds = lockSeconds(failures);
    if (seconds === 0) return { failures };
    const lockedUntil = new Date(now.getTime() + seconds * 1000);
    await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: this.key(login),
        UpdateExpression: 'SET locked_until = :until',
        ExpressionAttributeValues: { ':until': lockedUntil.toISOString() },
      }),
    );
    return { failures, lockedUntil };
  }
  async clear(login: string): Promise<void> {
    await this.store.doc.send(
      new DeleteCommand({ TableName: this.store.table, Key: this.key(login) }),
    );
  }
}
