import { createHash } from 'node:crypto';
import type { Deps } from '../platform/runtime.js';
import { ConnectionGoneError } from '../platform/ports.js';
import { ConnectionRepository, type ConnectionRecord, type StreamState } from './repo.js';
import { serverMessage, type CloseReason } from './channels.js';
import { logger } from '../platform/logger.js';
import { connectionsOf } from '../platform/use/connections.js';
import { boundEventData } from './bounded.js';

export interface PublishOptions {
  /** Only subscribers holding this permission receive it (on top of the channel's own permission). */
  permission?: string;
  /** Only this user, or subscribers holding `permission`, receive it (e.g. owner-only items). */
  ownerId?: string;
  /** Only subscribers whose connection preferences (`update_preferences`) accept it receive it (one read per subscriber). */
  accepts?: (preferences: Record<string, unknown>) => boolean;
}

/** One event for the subscribers of its channels. */
export interface LiveEvent {
  channels: readonly string[];
  type: string;
  data: unknown;
  options?: PublishOptions;
}

/**
 * Sends an event to every connection subscribed to any of the channels, once per connection, through
 * the `@connections` API (see `publishAll`). Never throws; answers how many messages were delivered.
 */
export function publish(deps: Deps, channels: string[], type: string, data: unknown, options: PublishOptions = {}): Promise<number> {
  return publishAll(deps, [{ channels, type, data, options }]);
}

interface Outgoing {
  channel: string;
  type: string;
  message: ReturnType<typeof serverMessage>;
  accepts?: PublishOptions['accepts'];
}

/**
 * Sends events, in order, to the connections subscribed to their channels: each connection hears an
 * event once (on the first of its channels it holds) and its events in the order given; connections
 * are served side by side. Each channel's subscribers are read once for all the events (a change-feed
 * batch of a hundred task changes reads `tasks` once). Connections that are gone (410) are cleaned up;
 * expired ones are removed. Never throws: a failed notification must not fail what caused it. The
 * data is bounded to what one WebSocket message may carry (`boundEventData`: 128 KB on API Gateway,
 * and locally). Answers how many messages were delivered.
 */
export async function publishAll(deps: Deps, events: readonly LiveEvent[]): Promise<number> {
  const repo = new ConnectionRepository(deps.store);
  const nowEpoch = Math.floor(deps.clock.now().getTime() / 1000);
  let delivered = 0;
  try {
    const channels = [...new Set(events.flatMap((e) => e.channels))];
    // The channels' subscribers are read side by side: one round trip, not one per channel.
    const lists = await Promise.all(channels.map((channel) => repo.subscribers(channel)));
    const subscribersOf = new Map(channels.map((channel, i) => [channel, lists[i]]));
    const queues = new Map<string, Outgoing[]>();
    const expired = new Map<string, string>();
    for (const event of events) {
      const options = event.options ?? {};
      const bounded = boundEventData(event.data);
      const seen = new Set<string>();
      for (const channel of event.channels) {
        for (const sub of subscribersOf.get(channel)!) {
          if (seen.has(sub.connection_id)) continue;
          seen.add(sub.connection_id);
          if (sub.expires_at <= nowEpoch) {
            expired.set(`${sub.connection_id}\n${channel}`, sub.connection_id);
            continue;
          }
          const unrestricted = options.permission === undefined && options.ownerId === undefined;
          const byPermission = options.permission !== undefined && sub.permissions.includes(options.permission);
          const byOwnership = options.ownerId !== undefined && sub.user_id === options.ownerId;
          if (!unrestricted && !byPermission && !byOwnership) continue;
          const queue = queues.get(sub.connection_id) ?? [];
          queue.push({ channel, type: event.type, message: serverMessage(event.type, bounded, channel), accepts: options.accepts });
          queues.set(sub.connection_id, queue);
        }
      }
    }
    const removals = [...expired].map(([key, connectionId]) => removeStale(repo, connectionId, key.split('\n')[1]!));
    const sends = [...queues].map(async ([connectionId, queue]) => {
      // Preferences are read once per connection, and only when some event depends on them.
      let preferences: Promise<Record<string, unknown> | undefined> | undefined;
      for (const out of queue) {
        if (out.accepts) {
          preferences ??= repo.get(connectionId).then((conn) => (conn ? (conn.preferences ?? {}) : undefined));
          const prefs = await preferences;
          if (prefs === undefined || !out.accepts(prefs)) continue;
        }
        try {
          await connectionsOf(deps).post(connectionId, out.message);
          delivered++;
        } catch (err) {
          if (err instanceof ConnectionGoneError) {
            await removeStale(repo, connectionId, out.channel);
            return;
          }
          logger.error('websocket post failed', { connection_id: connectionId, type: out.type, error: err as Error });
        }
      }
    });
    await Promise.all([...removals, ...sends]);
  } catch (err) {
    logger.error('publish failed', { types: [...new Set(events.map((e) => e.type))], error: err as Error });
  }
  return delivered;
}

/**
 * The live connections subscribed to any of `channels` (or only `connectionId`, if it is), each once
 * with the first of the channels it holds: for a per-connection stream that reads each record's preferences.
 */
export async function subscribedConnections(deps: Deps, channels: readonly string[], options: { connectionId?: string } = {}): Promise<{ conn: ConnectionRecord; channel: string }[]> {
  const repo = new ConnectionRepository(deps.store);
  const nowEpoch = deps.clock.now().getTime() / 1000;
  const ids = new Map<string, string>();
  if (options.connectionId) {
    const conn = await repo.get(options.connectionId);
    const channel = conn && channels.find((c) => conn.channels.includes(c));
    return conn && channel && conn.expires_at > nowEpoch ? [{ conn, channel }] : [];
  }
  for (const channel of channels) {
    for (const sub of await repo.subscribers(channel)) if (!ids.has(sub.connection_id) && sub.expires_at > nowEpoch) ids.set(sub.connection_id, channel);
  }
  const out = await Promise.all([...ids].map(async ([id, channel]) => ({ conn: await repo.get(id), channel })));
  return out.filter((c): c is { conn: ConnectionRecord; channel: string } => c.conn !== undefined && c.conn.expires_at > nowEpoch);
}

/** Replaces what a stream channel last sent a connection if nobody did since `expectedSeq` was read (see `ConnectionRepository.claimStreamState`). */
export function claimStreamState(deps: Deps, connectionId: string, channel: string, expectedSeq: number, state: Omit<StreamState, 'seq'>): Promise<boolean> {
  return new ConnectionRepository(deps.store).claimStreamState(connectionId, channel, expectedSeq, state);
}

/**
 * Sends one event to one connection (a per-subscriber stream such as the analytics stream), bounded
 * like every published event. A connection that is gone (410) is cleaned up. Never throws; answers
 * whether the event was delivered.
 */
export async function sendTo(deps: Deps, connectionId: string, channel: string, type: string, data: unknown): Promise<boolean> {
  try {
    await connectionsOf(deps).post(connectionId, serverMessage(type, boundEventData(data), channel));
    return true;
  } catch (err) {
    if (err instanceof ConnectionGoneError) await removeStale(new ConnectionRepository(deps.store), connectionId, channel);
    else logger.error('websocket post failed', { connection_id: connectionId, type, error: err as Error });
    return false;
  }
}

/**
 * Closes a user's WebSocket connections (all of them, or those of one session): their rights were
 * copied at `$connect`, so when the user logs out, loses a role or changes password, the client must
 * connect again with a token that reflects it. `close` says why (4001 session ended, 4003 rights
 * changed). Never throws. A connection that could not be closed (the port unreachable or not configured)
 * keeps its record, so that it can still be found and closed, and the failure is logged as an error.
 */
export async function disconnectUser(deps: Deps, userId: string, options: { sessionId?: string; close?: CloseReason } = {}): Promise<number> {
  const repo = new ConnectionRepository(deps.store);
  let closed = 0;
  try {
    const connections = await repo.ofUser(userId);
    for (const conn of connections) {
      if (options.sessionId && conn.session_id !== options.sessionId) continue;
      try {
        await connectionsOf(deps).close(conn.connection_id, options.close);
      } catch (err) {
        if (!(err instanceof ConnectionGoneError)) {
          // Not closed (the management API unreachable, or not granted): the record stays, so the
          // connection can still be found and closed, and the failure is not silent.
          logger.error('closing a WebSocket connection failed; its record is kept', { connection_id: conn.connection_id, user_id: userId, error: err as Error });
          continue;
        }
      }
      await repo.remove(conn.connection_id).catch((err) => logger.error('connection record not removed', { connection_id: conn.connection_id, error: err as Error }));
      closed++;
    }
  } catch (err) {
    logger.error('closing connections failed', { user_id: userId, error: err as Error });
  }
  return closed;
}

/** How often a stream subscriber receives a changed snapshot when its preferences name no refresh interval. */
export const DEFAULT_REFRESH_SECONDS = 5;

/**
 * Sends each live subscriber of `channel` the snapshot the view `load` answers builds for its preferences, when it
 * differs from the last one the connection received and that one is at least the subscriber's
 * `refresh_interval_seconds` old (`force`: these connections get it at once, if it changed). Each send
 * is claimed first with a conditional write on the connection (`stream_<channel>`: hash and time of the
 * last snapshot), so two pushers racing send it once. Never throws; answers how many were sent.
 */
export async function publishSnapshot(
  deps: Deps,
  channel: string,
  type: string,
  load: () => Promise<(preferences: Record<string, unknown>) => unknown>,
  options: { force?: string[] } = {},
): Promise<number> {
  const repo = new ConnectionRepository(deps.store);
  const now = deps.clock.now();
  let sent = 0;
  try {
    const subscribers = (await repo.subscribers(channel)).filter((sub) => sub.expires_at > Math.floor(now.getTime() / 1000));
    // The state is read only when someone listens.
    const view = subscribers.length ? await load() : undefined;
    await Promise.all(
      subscribers.map(async (sub) => {
        const conn = await repo.get(sub.connection_id);
        if (!conn || !conn.channels.includes(channel)) return;
        const data = boundEventData(view!(conn.preferences ?? {}));
        const digest = createHash('sha256').update(JSON.stringify(data)).digest('base64url').slice(0, 22);
        const last = conn[`stream_${channel}`] ?? { seq: 0 };
        if (last.digest === digest) return;
        const interval = Number(conn.preferences?.refresh_interval_seconds ?? DEFAULT_REFRESH_SECONDS) * 1000;
        const forced = options.force?.includes(sub.connection_id) ?? false;
        if (last.sent_at !== undefined && !forced && now.getTime() - last.sent_at < interval) return;
        if (!(await repo.claimStreamState(sub.connection_id, channel, last.seq, { sent_at: now.getTime(), digest }))) return;
        try {
          await connectionsOf(deps).post(sub.connection_id, serverMessage(type, data, channel));
          sent++;
        } catch (err) {
          if (err instanceof ConnectionGoneError) await removeStale(repo, sub.connection_id, channel);
          else logger.error('websocket snapshot not delivered', { connection_id: sub.connection_id, type, error: err as Error });
        }
      }),
    );
  } catch (err) {
    logger.error('snapshot publish failed', { type, error: err as Error });
  }
  return sent;
}

/** Removes a subscription whose connection expired or is gone; a failure is logged (the next publish finds it again). */
async function removeStale(repo: ConnectionRepository, connectionId: string, channel: string): Promise<void> {
  try {
    await repo.remove(connectionId, [channel]);
  } catch (err) {
    logger.warn('stale subscription not removed', { connection_id: connectionId, channel, error: err as Error });
  }
}
