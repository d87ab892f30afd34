import {
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { Store } from '../platform/store/client.js';
import { getItems } from '../platform/store/batch-get.js';
import { queryPage, type StorePage } from '../platform/store/query.js';
import { VersionConflictError } from '../platform/store/conflicts.js';
import { buildUpdate } from '../platform/store/update.js';
import type { Role } from '../platform/permissions.js';
import { identityCache } from './identity-cache.js';

export interface UserRecord {
  user_id: string;
  username: string;
  email?: string;
  full_name?: string;
  roles: Role[];
  is_active: boolean;
  password_hash: string;
  created_at: string;
  updated_at: string;
  last_login_at?: string;
  /** Sessions that began before this instant (a password change) no longer authenticate. */
  sessions_valid_after?: string;
}

const userKey = (id: string) => ({ pk: `USER#${id}`, sk: 'PROFILE' });
const uniqueKey = (kind: 'username' | 'email', value: string) => ({ pk: `UNIQUE#${kind}#${value.toLowerCase()}`, sk: 'UNIQUE' });
const ADMIN_COUNTER = { pk: 'COUNTER#users', sk: 'ADMINS' };

export class UniqueTakenError extends Error {
  constructor(readonly field: 'username' | 'email') {
    super(`${field} is already taken`);
  }
}
export class LastAdminError extends Error {
  constructor() {
    super('the last admin cannot be removed or demoted');
  }
}

function strip(item: Record<string, unknown> | undefined): UserRecord | undefined {
  if (!item) return undefined;
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g1s, entity: _e, ...rest } = item;
  return rest as unknown as UserRecord;
}

const isAdmin = (roles: readonly string[]) => roles.includes('admin');

export class UserRepository {
  constructor(private readonly store: Store) {}

  async get(userId: string): Promise<UserRecord | undefined> {
    // Consistent: requests act on what they read (conditional updates on updated_at, the admin counter).
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: userKey(userId), ConsistentRead: true }));
    return strip(out.Item);
  }

  async findByLogin(login: string): Promise<UserRecord | undefined> {
    const kind = login.includes('@') ? 'email' : 'username';
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: uniqueKey(kind, login), ConsistentRead: true }));
    const userId = out.Item?.user_id as string | undefined;
    return userId ? this.get(userId) : undefined;
  }

  /** Creates the user and claims its username and e-mail in one transaction. */
  async create(user: UserRecord): Promise<void> {
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      {
        Put: {
          TableName: this.store.table,
          Item: { ...userKey(user.user_id), entity: 'user', gsi1pk: 'USERS', gsi1sk: user.user_id, ...user },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      {
        Put: {
          TableName: this.store.table,
          Item: { ...uniqueKey('username', user.username), user_id: user.user_id },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
    ];
    if (user.email) {
      items.push({
        Put: {
          TableName: this.store.table,
          Item: { ...uniqueKey('email', user.email), user_id: user.user_id },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      });
    }
    if (isAdmin(user.roles)) items.push(this.adminCount(+1));
    try {
      await this.store.doc.send(new TransactWriteCommand({ TransactItems: items }));
    } catch (err) {
      throw mapCancellation(err, user.email ? ['user', 'username', 'email'] : ['user', 'username']);
    }
  }

  /**
   * Changes profile fields and roles. Demoting an admin decrements the admin counter on the
   * condition that another admin remains, in the same transaction as the change.
   */
  async update(
    before: UserRecord,
    changes: Partial<Pick<UserRecord, 'email' | 'full_name' | 'roles' | 'is_active' | 'password_hash' | 'sessions_valid_after'>>,
    now: string,
  ): Promise<UserRecord> {
    const after: UserRecord = { ...before, ...changes, updated_at: now };
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      {
        Update: {
          TableName: this.store.table,
          Key: userKey(before.user_id),
          ...buildUpdate({ set: { ...changes, updated_at: now }, condition: 'attribute_exists(pk)', expect: { attr: 'updated_at', expected: before.updated_at } }),
        },
      },
    ];
    const wasAdmin = isAdmin(before.roles) && before.is_active;
    const willBeAdmin = isAdmin(after.roles) && after.is_active;
    if (wasAdmin && !willBeAdmin) items.push(this.adminCount(-1));
    if (!wasAdmin && willBeAdmin) items.push(this.adminCount(+1));
    if (changes.email !== undefined && changes.email.toLowerCase() !== (before.email ?? '').toLowerCase()) {
      items.push({
        Put: {
          TableName: this.store.table,
          Item: { ...uniqueKey('email', changes.email), user_id: before.user_id },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      });
      if (before.email) items.push({ Delete: { TableName: this.store.table, Key: uniqueKey('email', before.email) } });
    }
    try {
      await this.store.doc.send(new TransactWriteCommand({ TransactItems: items }));
    } catch (err) {
      throw mapCancellation(err, ['user', wasAdmin && !willBeAdmin ? 'admins' : 'email', 'email']);
    }
    identityCache.forgetUser(before.user_id);
    return after;
  }

  async delete(user: UserRecord): Promise<void> {
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      { Delete: { TableName: this.store.table, Key: userKey(user.user_id), ConditionExpression: 'attribute_exists(pk)' } },
      { Delete: { TableName: this.store.table, Key: uniqueKey('username', user.username) } },
    ];
    if (user.email) items.push({ Delete: { TableName: this.store.table, Key: uniqueKey('email', user.email) } });
    if (isAdmin(user.roles) && user.is_active) items.push(this.adminCount(-1));
    try {
      await this.store.doc.send(new TransactWriteCommand({ TransactItems: items }));
    } catch (err) {
      throw mapCancellation(err, ['user', 'username', ...(user.email ? ['email'] : []), 'admins']);
    }
    identityCache.forgetUser(user.user_id);
  }

  async list(limit: number, startKey?: Record<string, unknown>): Promise<StorePage<UserRecord>> {
    const page = await queryPage<Record<string, unknown>>(this.store, {
      index: 'gsi1',
      keyCondition: 'gsi1pk = :p',
      values: { ':p': 'USERS' },
      limit,
      startKey,
      ascending: true,
    });
    return { ...page, items: page.items.map((i) => strip(i)!) };
  }

  async getMany(ids: string[]): Promise<Map<string, UserRecord>> {
    const out = new Map<string, UserRecord>();
    for (const item of await getItems(this.store, ids.map(userKey))) {
      const u = strip(item)!;
      out.set(u.user_id, u);
    }
    return out;
  }

  async touchLogin(userId: string, now: string): Promise<void> {
    await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: userKey(userId),
        UpdateExpression: 'SET last_login_at = :now',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':now': now },
      }),
    ).catch(() => undefined);
  }

  private adminCount(delta: 1 | -1) {
    return delta > 0
      ? {
          Update: {
            TableName: this.store.table,
            Key: ADMIN_COUNTER,
            UpdateExpression: 'ADD #c :one',
            ExpressionAttributeNames: { '#c': 'count' },
            ExpressionAttributeValues: { ':one': 1 },
          },
        }
      : {
          Update: {
            TableName: this.store.table,
            Key: ADMIN_COUNTER,
            UpdateExpression: 'ADD #c :minus',
            ConditionExpression: '#c > :one',
            ExpressionAttributeNames: { '#c': 'count' },
            ExpressionAttributeValues: { ':minus': -1, ':one': 1 },
          },
        };
  }
}

/** Turns a cancelled transaction into the domain error its failed condition stands for. */
function mapCancellation(err: unknown, labels: string[]): unknown {
  const e = err as { name?: string; CancellationReasons?: { Code?: string }[] };
  if (e?.name !== 'TransactionCanceledException' || !e.CancellationReasons) return err;
  const failed = e.CancellationReasons.findIndex((r) => r.Code === 'ConditionalCheckFailed');
  // DynamoDB (not DynamoDB Local) cancels a transaction that races another on the same item (the
  // admin counter) with TransactionConflict: a lost race, not a server error.
  if (failed < 0) return e.CancellationReasons.some((r) => r.Code === 'TransactionConflict') ? new VersionConflictError() : err;
  const label = labels[failed] ?? (failed === e.CancellationReasons.length - 1 ? 'admins' : 'user');
  if (label === 'username' || label === 'email') return new UniqueTakenError(label);
  if (label === 'admins') return new LastAdminError();
  return new VersionConflictError();
}
