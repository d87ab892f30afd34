import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiGatewayConnections } from '../../shared/platform/aws/connections.js';
import { ConnectionGoneError } from '../../shared/platform/ports.js';

/**
 * The Connections adapter is the same in both modes: the real ApiGatewayManagementApiClient. Here it
 * talks over real HTTP to a server speaking the `@connections` API the way API Gateway (and the local
 * runtime) does: POST sends, DELETE closes, 410 GoneException for a stale connection id.
 */
let server: Server;
let endpoint: string;
const received: Array<{ method: string; path: string; body: string; auth: string | undefined }> = [];
const live = new Set(['conn-live-1', 'conn-live-2']);

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://x');
    received.push({ method: req.method ?? '', path: decodeURIComponent(url.pathname), body, auth: req.headers.authorization });
    const match = /^\/@connections\/([^/]+)$/.exec(decodeURIComponent(url.pathname));
    const id = match?.[1] ?? '';
    if (id === 'conn-bare-410') {
      res.writeHead(410).end(); // a server that only sends the status
      return;
    }
    if (!match || !live.has(id)) {
      res.writeHead(410, { 'content-type': 'application/json', 'x-amzn-ErrorType': 'GoneException' }).end('{"message":"Gone"}');
      return;
    }
    if (id === 'conn-live-2' && req.method === 'POST') {
      res.writeHead(500, { 'content-type': 'application/json', 'x-amzn-ErrorType': 'InternalServerErrorException' }).end('{"message":"boom"}');
      return;
    }
    if (req.method === 'DELETE') live.delete(id);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('ApiGatewayConnections over HTTP (local endpoint)', () => {
  it('post sends the data as JSON to POST /@connections/{id}, signed', async () => {
    const connections = new ApiGatewayConnections(endpoint);
    await connections.post('conn-live-1', { type: 'task.output', task_id: 't1', chunk: 'héllo' });
    const last = received.at(-1)!;
    expect(last.method).toBe('POST');
    expect(last.path).toBe('/@connections/conn-live-1');
    expect(JSON.parse(last.body)).toEqual({ type: 'task.output', task_id: 't1', chunk: 'héllo' });
    expect(last.auth).toMatch(/^AWS4-HMAC-SHA256 Credential=local\/\d{8}\/local\/execute-api\/aws4_request/);
  });

  it('410 GoneException becomes ConnectionGoneError', async () => {
    const connections = new ApiGatewayConnections(endpoint);
    const err = await connections.post('conn-stale', { a: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionGoneError);
    expect((err as ConnectionGoneError).connectionId).toBe('conn-stale');
  });

  it('a bare 410 (no error type header) is gone too', async () => {
    await expect(new ApiGatewayConnections(endpoint).post('conn-bare-410', {})).rejects.toBeInstanceOf(ConnectionGoneError);
  });

  it('other errors propagate as they are', async () => {
    const err = await new ApiGatewayConnections(endpoint).post('conn-live-2', {}).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(ConnectionGoneError);
    expect((err as Error).name).toBe('InternalServerErrorException');
  });

  it('close is DELETE /@connections/{id}; closing a gone connection is fine', async () => {
    const connections = new ApiGatewayConnections(endpoint);
    live.add('conn-to-close');
    await connections.close('conn-to-close');
    expect(received.at(-1)).toMatchObject({ method: 'DELETE', path: '/@connections/conn-to-close' });
    await expect(connections.close('conn-to-close')).resolves.toBeUndefined();
  });

  it('close with a code first posts {type: "closing", code, reason}, then deletes (DeleteConnection carries no code)', async () => {
    const connections = new ApiGatewayConnections(endpoint);
    live.add('conn-coded');
    const before = received.length;
    await connections.close('conn-coded', { code: 4003, reason: 'rights changed' });
    const sent = received.slice(before);
    expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /@connections/conn-coded', 'DELETE /@connections/conn-coded']);
    expect(JSON.parse(sent[0].body)).toMatchObject({ type: 'closing', code: 4003, reason: 'rights changed' });
    // Already gone: nothing more is sent than the post that found it gone.
    const after = received.length;
    await expect(connections.close('conn-coded', { code: 4001, reason: 'session ended' })).resolves.toBeUndefined();
    expect(received.slice(after).map((r) => r.method)).toEqual(['POST']);
  });
});
