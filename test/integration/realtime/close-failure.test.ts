import { describe, expect, it, inject, vi } from 'vitest';
import { ulid } from 'ulid';
import { MissingEnvError } from '../../../shared/platform/aws/index.js';
import { logger } from '../../../shared/platform/logger.js';
import { ConnectionGoneError, systemClock } from '../../../shared/platform/ports.js';
import type { Deps } from '../../../shared/platform/runtime.js';
import { Store } from '../../../shared/platform/store/client.js';
import { disconnectUser } from '../../../shared/realtime/publisher.js';
import { ConnectionRepository } from '../../../shared/realtime/repo.js';

const store = new Store({ tableName: 'supervisor', endpoint: inject('dynamodbEndpoint') });

function depsClosingWith(close: () => Promise<void>): Deps {
  return { store, clock: systemClock, connections: { post: async () => undefined, close } } as unknown as Deps;
}

async function openConnection(userId: string): Promise<string> {
  const id = `c-${ulid()}`;
  await new ConnectionRepository(store).put({
    connection_id: id,
    user_id: userId,
    username: userId,
    permissions: [],
    channels: [],
    preferences: {},
    connected_at: new Date().toISOString(),
    expires_at: Math.floor(Date.now() / 1000) + 3600,
  });
  return id;
}

describe('closing a user\'s sockets when the @connections port fails', () => {
  it('keeps the record and logs an error (with the failure) instead of dropping the record of a socket still open', async () => {
    const userId = `u-${ulid()}`;
    const id = await openConnection(userId);
    const error = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    try {
      const failure = new MissingEnvError('WS_MANAGEMENT_ENDPOINT', 'Connections');
      const closed = await disconnectUser(depsClosingWith(() => Promise.reject(failure)), userId, { close: { code: 4001, reason: 'session ended' } });
      expect(closed).toBe(0);
      expect(await new ConnectionRepository(store).get(id)).toBeDefined();
      expect(error).toHaveBeenCalledWith(expect.stringContaining('its record is kept'), expect.objectContaining({ connection_id: id, error: failure }));
    } finally {
      error.mockRestore();
    }
  });

  it('removes the record when the socket is closed, or already gone', async () => {
    const userId = `u-${ulid()}`;
    const closedId = await openConnection(userId);
    expect(await disconnectUser(depsClosingWith(async () => undefined), userId)).toBe(1);
    expect(await new ConnectionRepository(store).get(closedId)).toBeUndefined();
    const goneId = await openConnection(userId);
    expect(await disconnectUser(depsClosingWith(() => Promise.reject(new ConnectionGoneError(goneId))), userId)).toBe(1);
    expect(await new ConnectionRepository(store).get(goneId)).toBeUndefined();
  });
});
