import { beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ulid } from 'ulid';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { call, eventually, openSocket } from '../../support/client.js';
import { ConnectionRepository } from '../../../shared/realtime/repo.js';
import { localEndpoint } from '../../../shared/platform/aws/util.js';
import { WS_MESSAGE_MAX_BYTES } from '../../../shared/realtime/bounded.js';
import { sessionAs, testStore, type Session } from '../auth/fixtures.js';

/**
 * API Gateway's 128 KB limit on one WebSocket message, kept locally: the `@connections` endpoint
 * refuses a bigger post (413 PayloadTooLargeException) and events about big items arrive bounded.
 */

type Socket = Awaited<ReturnType<typeof openSocket>>;

let user: Session;
beforeAll(async () => {
  user = await sessionAs(['user']);
});

async function connectionIdOf(socket: Socket, userId: string): Promise<string> {
  socket.send({ action: 'subscribe', channels: ['tasks'] });
  await socket.waitFor((m) => m.type === 'subscribed');
  const [conn] = await eventually(() => new ConnectionRepository(testStore()).ofUser(userId), (c) => c.length === 1);
  return conn.connection_id;
}

describe('the 128 KB WebSocket message limit', () => {
  it('@connections takes a message of exactly 128 KB and refuses one byte more with 413 PayloadTooLargeException', async () => {
    const socket = await openSocket('/ws', user.token);
    const id = await connectionIdOf(socket, user.userId);
    const client = new ApiGatewayManagementApiClient({ ...localEndpoint(inject('connectionsUrl')), maxAttempts: 1 });
    try {
      const fits = JSON.stringify({ type: 'big', pad: '' });
      const exact = JSON.stringify({ type: 'big', pad: 'x'.repeat(WS_MESSAGE_MAX_BYTES - fits.length) });
      expect(Buffer.byteLength(exact)).toBe(WS_MESSAGE_MAX_BYTES);
      await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from(exact) }));
      expect((await socket.waitFor((m) => m.type === 'big')).pad).toHaveLength(WS_MESSAGE_MAX_BYTES - fits.length);

      const over = JSON.stringify({ type: 'too-big', pad: '' });
      const tooBig = Buffer.from(JSON.stringify({ type: 'too-big', pad: 'x'.repeat(WS_MESSAGE_MAX_BYTES - over.length + 1) }));
      expect(tooBig.length).toBe(WS_MESSAGE_MAX_BYTES + 1);
      const refused = await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: tooBig })).catch((err: Error) => err);
      expect((refused as Error).name).toBe('PayloadTooLargeException');
      expect((refused as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(413);
      // The socket stays open and nothing of the refused message arrived.
      await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('{"type":"after"}') }));
      await socket.waitFor((m) => m.type === 'after');
      expect(socket.messages.some((m) => m.type === 'too-big')).toBe(false);
    } finally {
      client.destroy();
      await socket.close();
    }
  });

  it('a task with a 140 KB payload is announced as a bounded view; the full task is read over HTTP', async () => {
    const socket = await openSocket('/ws', user.token);
    try {
      socket.send({ action: 'subscribe', channels: ['tasks'] });
      await socket.waitFor((m) => m.type === 'subscribed');
      const code = `// ${ulid()}\n${'let x = 1;\n'.repeat(13_000)}`;
      expect(code.length).toBeGreaterThan(140_000);
      const created = await call('POST', '/api/v1/tasks', { token: user.token, body: { type: 'code_analysis', provider_id: 'local', payload: { code } } });
      expect(created.status).toBe(201);
      const taskId = created.body.data.task_id as string;
      const event = await socket.waitFor((m) => m.type === 'task.created' && m.data.task_id === taskId);
      expect(Buffer.byteLength(JSON.stringify(event))).toBeLessThanOrEqual(WS_MESSAGE_MAX_BYTES);
      expect(event.data).toMatchObject({ task_id: taskId, type: 'code_analysis', created_by: user.userId, truncated: true });
      expect(event.data.status).toBeTypeOf('string');
      expect(event.data.created_at).toBeTypeOf('string');
      expect(event.data.payload.code.length).toBeLessThan(code.length);
      expect(code.startsWith(event.data.payload.code)).toBe(true);

      const full = await call('GET', `/api/v1/tasks/${taskId}`, { token: user.token });
      expect(full.body.data.payload.code).toBe(code);
      expect(full.body.data.truncated).toBeUndefined();
    } finally {
      await socket.close();
    }
  });
});
