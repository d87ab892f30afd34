import type { Deps } from '../platform/runtime.js';
import { ConnectionGoneError } from '../platform/ports.js';
import { ConnectionRepository } from './repo.js';
import { serverMessage, type CloseReason } from './channels.js';
import { logger } from '../platform/logger.js';
import { connectionsOf } from '../platform/use/connections.js';
import { boundEventData } from './bounded.js';

export interface PublishOptions {
  /** Only subscribers holding this permission receive it (on top of the channel's own permission). */
  permission?: string;
  /** Only this user, or subscribers holding `permission`, receive it (e.g. owner-only items). */
  ownerId?: string;
}

/**
 * Sends an event to every connection subscribed to any of the channels, once per connection, through
 * the `@connections` API. Connections that are gone (410) are cleaned up. Never throws: a failed
 * notification must not fail the state change that caused it. The data is bounded to what one
 * WebSocket message may carry (`boundEventData`: 128 KB on API Gateway, and locally).
 */
export async function publish(deps: Deps, channels: string[], type: string, data: unknown, options: PublishOptions = {}): Promise<number> {
  const repo = new ConnectionRepository(deps.store);
  const nowEpoch = Math.floor(deps.clock.now().getTime() / 1000);
  let delivered = 0;
  const bounded = boundEventData(data);
  try {
    const seen = new Set<string>();
    const sends: Promise<void>[] = [];
    // The channels' subscribers are read side by side (one round trip, not one per channel), then
    // taken in the channels' order: a connection on several hears the event once, on the first.
    const byChannel = await Promise.all(channels.map((channel) => repo.subscribers(channel)));
    for (const [i, channel] of channels.entries()) {
      for (const sub of byChannel[i]) {
        if (seen.has(sub.connection_id)) continue;
        seen.add(sub.connection_id);
        if (sub.expires_at <= nowEpoch) {
          sends.push(repo.remove(sub.connection_id, [channel]).catch(() => undefined));
          continue;
        }
        const unrestricted = options.permission === undefined && options.ownerId === undefined;
        const byPermission = options.permission !== undefined && sub.permissions.includes(options.permission);
        const byOwnership = options.ownerId !== undefined && sub.user_id === options.ownerId;
        if (!unrestricted && !byPermission && !byOwnership) continue;
        const message = serverMessage(type, bounded, channel);
        sends.push(
          connectionsOf(deps).post(sub.connection_id, message).then(
            () => {
              delivered++;
            },
            async (err) => {
              if (err instanceof ConnectionGoneError) await repo.remove(sub.connection_id, [channel]).catch(() => undefined);
              else logger.error('websocket post failed', { connection_id: sub.connection_id, type, error: err as Error });
            },
          ),
        );
      }
    }
    await Promise.all(sends);
  } catch (err) {
    logger.error('publish failed', { type, error: err as Error });
  }
  return delivered;
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
