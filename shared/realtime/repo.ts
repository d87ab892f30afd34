import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Store } from '../platform/store/client.js';
import { isConditionFailure } from '../platform/store/conflicts.js';
import { queryPage } from '../platform/store/query.js';
import { writeItems } from '../platform/store/batch-write.js';

/** API Gateway closes a WebSocket after 2 hours; the TTL only cleans up, expiry is checked in code. */
export const CONNECTION_TTL_SECONDS = 2 * 3600;

export interface ConnectionRecord {
  connection_id: string;
  user_id: string;
  username: string;
  permissions: string[];
  channels: string[];
  preferences: Record<string, unknown>;
  connected_at: string;
  expires_at: number;
  /** The session (refresh-token family) whose access token opened it; logout closes it. */
  session_id?: string;
  /** `stream_<channel>`: what a stream channel (analytics, monitoring) last sent it; see `claimStreamState`. */
  [stream: `stream_${string}`]: StreamState | undefined;
}

/** What a stream channel last sent a connection; `seq` orders its writers. */
export interface StreamState {
  seq: number;
  /** When the last periodic update was sent (epoch ms), and a digest of what it said. */
  sent_at?: number;
  digest?: string;
  /** Keys of the one-off events already sent (bounded by the writer). */
  sent_keys?: string[];
}

export interface Subscriber {
  connection_id: string;
  user_id: string;
  permissions: string[];
  expires_at: number;
}

/** A subscribe that would take a connection past its channel limit. */
export class ChannelLimitError extends Error {
  constructor(
    readonly limit: number,
    readonly held: number,
  ) {
    super(`a connection may hold at most ${limit} channels`);
  }
}

/** The stored channel set (a string set; a list in records written before it was one) as a sorted list. */
function channelList(stored: unknown): string[] {
  if (stored instanceof Set || Array.isArray(stored)) return [...(stored as Iterable<string>)].sort();
  return [];
}

function withChannelList(record: ConnectionRecord): ConnectionRecord {
  return { ...record, channels: channelList(record.channels) };
}

const connKey = (id: string) => ({ pk: `CONN#${id}`, sk: 'CONN' });
const subKey = (channel: string, id: string) => ({ pk: `CHANNEL#${channel}`, sk: `CONN#${id}` });
const userConnections = (userId: string) => `USER_CONNECTIONS#${userId}`;

export class ConnectionRepository {
  constructor(private readonly store: Store) {}

  async put(conn: ConnectionRecord): Promise<void> {
    // `channels` is a string set (ADD/DELETE keep concurrent subscribes from overwriting each other);
    // DynamoDB has no empty set, so a connection without channels has no attribute.
    const { channels, ...rest } = conn;
    await this.store.doc.send(
      new PutCommand({
        TableName: this.store.table,
        Item: {
          ...connKey(conn.connection_id),
          entity: 'connection',
          gsi1pk: userConnections(conn.user_id),
          gsi1sk: conn.connection_id,
          ...rest,
          ...(channels.length ? { channels: new Set(channels) } : {}),
        },
      }),
    );
  }

  /** A user's open connections (to close them when the user's sessions or rights change). */
  async ofUser(userId: string): Promise<ConnectionRecord[]> {
    const out: ConnectionRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await queryPage<ConnectionRecord>(this.store, { index: 'gsi1', keyCondition: 'gsi1pk = :p', values: { ':p': userConnections(userId) }, limit: 100, ascending: true, startKey });
      out.push(...page.items.map(withChannelList));
      startKey = page.lastKey;
    } while (startKey);
    return out;
  }

  async get(id: string): Promise<ConnectionRecord | undefined> {
    // Consistent: a client's first message usually follows `$connect`'s write by milliseconds.
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: connKey(id), ConsistentRead: true }));
    return out.Item ? withChannelList(out.Item as ConnectionRecord) : undefined;
  }

  /**
   * Subscribes the connection to `channels`: their subscription items first, then one atomic `ADD` to
   * the connection's channel set, so concurrent subscribes all land (none overwrites another's list).
   * The set may not grow past `maxChannels`: then the items just written are taken back and
   * `ChannelLimitError` is thrown. `conn.channels` becomes the set as stored after the change.
   */
  async subscribe(conn: ConnectionRecord, channels: string[], maxChannels = Number.MAX_SAFE_INTEGER): Promise<void> {
    // A batch write refuses a list that names the same key twice: a channel listed twice is one.
    const fresh = [...new Set(channels)];
    if (!fresh.length) return;
    const adding = fresh.filter((c) => !conn.channels.includes(c));
    await writeItems(
      this.store,
      fresh.map((c) => ({
        put: { ...subKey(c, conn.connection_id), entity: 'subscription', connection_id: conn.connection_id, user_id: conn.user_id, permissions: conn.permissions, expires_at: conn.expires_at },
      })),
    );
    try {
      const out = await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: connKey(conn.connection_id),
          UpdateExpression: 'ADD channels :c',
          ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(channels) OR size(channels) <= :room)',
          ExpressionAttributeValues: { ':c': new Set(fresh), ':room': maxChannels - adding.length },
          ReturnValues: 'ALL_NEW',
        }),
      );
      conn.channels = channelList(out.Attributes?.channels);
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const current = await this.get(conn.connection_id);
      if (!current) throw err;
      // Over the limit: take back the items of the channels the connection does not hold.
      const extra = adding.filter((c) => !current.channels.includes(c));
      if (extra.length) await writeItems(this.store, extra.map((c) => ({ delete: subKey(c, conn.connection_id) })));
      conn.channels = current.channels;
      throw new ChannelLimitError(maxChannels, current.channels.length);
    }
  }

  async unsubscribe(conn: ConnectionRecord, channels: string[]): Promise<void> {
    channels = [...new Set(channels)];
    await writeItems(this.store, channels.map((c) => ({ delete: subKey(c, conn.connection_id) })));
    conn.channels = conn.channels.filter((c) => !channels.includes(c));
    const out = await this.store.doc
      .send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: connKey(conn.connection_id),
          UpdateExpression: 'DELETE channels :c',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':c': new Set(channels) },
          ReturnValues: 'ALL_NEW',
        }),
      )
      .catch((err) => {
        // The connection is gone meanwhile: nothing left to unsubscribe it from.
        if (!isConditionFailure(err)) throw err;
        return undefined;
      });
    if (out) conn.channels = channelList(out.Attributes?.channels);
  }

  async setPreferences(id: string, preferences: Record<string, unknown>): Promise<void> {
    await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: connKey(id),
        UpdateExpression: 'SET preferences = :p',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':p': preferences },
      }),
    );
  }

  /**
   * Replaces what a stream channel last sent the connection (`stream_<channel>`) if nobody did since
   * `expectedSeq` was read (conditional write): of two pushers that read the same state, one wins and
   * the other sends nothing. False when another won or the connection is gone.
   */
  async claimStreamState(id: string, channel: string, expectedSeq: number, state: Omit<StreamState, 'seq'>): Promise<boolean> {
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: connKey(id),
          UpdateExpression: 'SET #s = :s',
          ConditionExpression: expectedSeq === 0 ? 'attribute_exists(pk) AND attribute_not_exists(#s)' : 'attribute_exists(pk) AND #s.#seq = :seq',
          ExpressionAttributeNames: { '#s': `stream_${channel}`, ...(expectedSeq === 0 ? {} : { '#seq': 'seq' }) },
          ExpressionAttributeValues: { ':s': { ...state, seq: expectedSeq + 1 }, ...(expectedSeq === 0 ? {} : { ':seq': expectedSeq }) },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /**
   * Removes the connection and every subscription it holds, plus its subscriptions to `alsoChannels`
   * (where a publisher found it: a subscribe that raced `$disconnect` leaves one the record does not list).
   */
  async remove(id: string, alsoChannels: string[] = []): Promise<void> {
    const conn = await this.get(id);
    const channels = [...new Set([...(conn?.channels ?? []), ...alsoChannels])];
    if (channels.length) await writeItems(this.store, channels.map((c) => ({ delete: subKey(c, id) })));
    await this.store.doc.send(new DeleteCommand({ TableName: this.store.table, Key: connKey(id) }));
  }

  async subscribers(channel: string): Promise<Subscriber[]> {
    const out: Subscriber[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await queryPage<Subscriber>(this.store, {
        keyCondition: 'pk = :p',
        values: { ':p': `CHANNEL#${channel}` },
        limit: 1000,
        ascending: true,
        startKey,
      });
      out.push(...page.items);
      startKey = page.lastKey;
    } while (startKey);
    return out;
  }
}
