import type { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { ConnectionGoneError, type Connections } from '../ports.js';
import { errorName, httpStatus, lazy, localEndpoint } from './util.js';

/**
 * `Connections` through the API Gateway management API (`@connections`). The same adapter serves
 * both modes: on AWS `endpoint` is the WebSocket API's `https://…/<stage>` URL; locally it is the local
 * runtime's loopback-only `http://<key>@127.0.0.1:<port>`, which serves the same routes (410 Gone for
 * stale ids) and admits only requests signed with the runtime's own access key id; region `local`.
 */
export class ApiGatewayConnections implements Connections {
  private readonly sdk = lazy(async () => {
    const mod = await import('@aws-sdk/client-apigatewaymanagementapi');
    const local = !this.endpoint.startsWith('https://');
    const client = new mod.ApiGatewayManagementApiClient({
      ...(local ? localEndpoint(this.endpoint) : { endpoint: this.endpoint }),
      // A post to a dead socket must not stall a handler: fail fast, retry twice.
      maxAttempts: 3,
    }) as ApiGatewayManagementApiClient;
    return { mod, client };
  });

  constructor(readonly endpoint: string) {}

  /** Sends `data` as JSON text. Throws `ConnectionGoneError` when the client has disconnected (410). */
  async post(connectionId: string, data: unknown): Promise<void> {
    const { mod, client } = await this.sdk();
    try {
      await client.send(
        new mod.PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from(JSON.stringify(data) ?? 'null', 'utf8') }),
      );
    } catch (err) {
      if (isGone(err)) throw new ConnectionGoneError(connectionId);
      throw err;
    }
  }

  /**
   * Closes the socket; closing one that is already gone is not an error. DeleteConnection sends no
   * close code, so a `close` code and reason go first as a `{type: "closing", code, reason}` message
   * (the local runtime's endpoint also closes the socket with that code).
   */
  async close(connectionId: string, close?: { code: number; reason: string }): Promise<void> {
    const { mod, client } = await this.sdk();
    if (close) {
      try {
        await this.post(connectionId, { type: 'closing', code: close.code, reason: close.reason, timestamp: new Date().toISOString() });
      } catch (err) {
        if (err instanceof ConnectionGoneError) return;
        // Not delivered: the connection is closed all the same.
      }
    }
    try {
      await client.send(new mod.DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }
}

function isGone(err: unknown): boolean {
  return errorName(err) === 'GoneException' || httpStatus(err) === 410;
}
