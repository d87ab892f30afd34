import { afterAll, describe, expect, inject, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ApiGatewayManagementApiClient, GetConnectionCommand, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { startLocalRuntime } from '../../../local/runtime.js';
import { DataDirLockedError } from '../../../local/data-dir.js';
import { localEndpoint } from '../../../shared/platform/aws/util.js';
import { openSocket } from '../../support/client.js';
import { sessionAs } from '../auth/fixtures.js';

/**
 * The local runtime on a shared host: DynamoDB Local (which listens on every interface and checks no
 * signature) shows its tables only to the runtime's own access key id; `@connections` is not served on
 * the public port, and its loopback port admits only the runtime's key; one runtime per data directory;
 * a failed start leaves no DynamoDB Local behind.
 */

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'supervisor-lockdown-'));
  temps.push(dir);
  return dir;
}

const mode = (file: string) => statSync(file).mode & 0o777;

/** This process's `java` children (DynamoDB Local instances it started). */
function javaChildren(): string[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => /\bjava\b/.test(line))
      .map((line) => line.trim().split(/\s+/)[0]);
  } catch {
    return []; // ps exits 1 when there is no child
  }
}

describe('DynamoDB Local', () => {
  it('lists the tables to the runtime key only: other credentials see an empty database', async () => {
    const own = localEndpoint(inject('dynamodbEndpoint'));
    expect(own.credentials.accessKeyId).toMatch(/^[a-f0-9]{48}$/);
    const list = async (accessKeyId: string) => {
      const client = new DynamoDBClient({ endpoint: own.endpoint, region: 'local', credentials: { accessKeyId, secretAccessKey: 'x' } });
      try {
        return (await client.send(new ListTablesCommand({}))).TableNames ?? [];
      } finally {
        client.destroy();
      }
    };
    expect(await list(own.credentials.accessKeyId)).toContain('supervisor');
    // What anyone reaching the port would try: the old shared key, and any other.
    expect(await list('local')).toEqual([]);
    expect(await list('AKIAIOSFODNN7EXAMPLE')).toEqual([]);
  });
});

describe('@connections', () => {
  it('is not served on the public port: an unauthenticated POST/GET/DELETE reaches no connection', async () => {
    const viewer = await sessionAs(['viewer']);
    const socket = await openSocket('/ws', viewer.token);
    const received: string[] = [];
    socket.ws.on('message', (data) => received.push(data.toString()));
    // Any id, live or not: before, a live one got the forged event, its IP and user agent, or was closed.
    for (const method of ['POST', 'GET', 'DELETE']) {
      const res = await fetch(`${inject('baseUrl')}/@connections/AAAAAAAAAAAAAAA%3D`, {
        method,
        ...(method === 'POST' ? { body: JSON.stringify({ type: 'forged' }) } : {}),
      });
      expect(res.status, method).toBe(404);
      expect(((await res.json()) as { error: string }).error).toBe('not_found');
    }
    expect(received.filter((m) => m.includes('forged'))).toEqual([]);
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    await socket.close();
  });

  it('on its loopback port, refuses requests not signed with the runtime key (403)', async () => {
    const own = localEndpoint(inject('connectionsUrl'));
    expect(new URL(own.endpoint).hostname).toBe('127.0.0.1');
    for (const method of ['POST', 'GET', 'DELETE']) {
      const res = await fetch(`${own.endpoint}/@connections/AAAAAAAAAAAAAAA%3D`, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
      expect(res.status, method).toBe(403);
      expect(res.headers.get('x-amzn-errortype')).toBe('ForbiddenException');
    }
    // Properly signed, with another key.
    const other = new ApiGatewayManagementApiClient({ endpoint: own.endpoint, region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 });
    const refused = await other.send(new PostToConnectionCommand({ ConnectionId: 'AAAAAAAAAAAAAAA=', Data: Buffer.from('{}') })).catch((err: Error) => err);
    expect((refused as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(403);
    other.destroy();
    // The runtime key gets through (410: no such connection).
    const mine = new ApiGatewayManagementApiClient({ ...own, maxAttempts: 1 });
    const gone = await mine.send(new GetConnectionCommand({ ConnectionId: 'AAAAAAAAAAAAAAA=' })).catch((err: Error) => err);
    expect((gone as Error).name).toBe('GoneException');
    mine.destroy();
  });
});

describe('data directory', () => {
  it('is private (0700, key files 0600), keyed by a kept access key id, and serves one runtime at a time', { timeout: 120_000 }, async () => {
    const dataDir = path.join(tempDir(), 'data');
    const runtime = await startLocalRuntime({ port: 0, dataDir, log: () => undefined });
    try {
      // A serving runtime keeps the JVM's optimising compiler (DynamoDbLocalJit).
      expect(runtime.dynamodb!.process.spawnargs).not.toContain('-XX:TieredStopAtLevel=1');
      expect(mode(dataDir)).toBe(0o700);
      expect(mode(path.join(dataDir, 'dynamodb'))).toBe(0o700);
      const keyFile = path.join(dataDir, 'dynamodb', 'access-key-id');
      expect(mode(keyFile)).toBe(0o600);
      const key = readFileSync(keyFile, 'utf8').trim();
      expect(localEndpoint(runtime.dynamodb!.endpoint).credentials.accessKeyId).toBe(key);
      expect(readFileSync(path.join(dataDir, 'runtime.lock'), 'utf8')).toBe(String(process.pid));

      const second = await startLocalRuntime({ port: 0, dataDir, log: () => undefined }).catch((err: Error) => err);
      expect(second).toBeInstanceOf(DataDirLockedError);
    } finally {
      await runtime.stop();
    }
    expect(existsSync(path.join(dataDir, 'runtime.lock'))).toBe(false);
    expect(existsSync(path.join(dataDir, 'dynamodb', `${readFileSync(path.join(dataDir, 'dynamodb', 'access-key-id'), 'utf8').trim()}_local.db`))).toBe(true);
  });

  it('refuses a data directory whose lock is held by a live process', async () => {
    const dataDir = tempDir();
    // The parent of this process (the test runner) is alive and is not this process.
    writeFileSync(path.join(dataDir, 'runtime.lock'), String(process.ppid));
    const err = await startLocalRuntime({ port: 0, dataDir, dynamodbEndpoint: inject('dynamodbEndpoint'), log: () => undefined }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(DataDirLockedError);
    expect((err as Error).message).toContain(`pid ${process.ppid}`);
    expect(readFileSync(path.join(dataDir, 'runtime.lock'), 'utf8')).toBe(String(process.ppid));
  });
});

describe('a failed start', () => {
  it('with the port taken stops the DynamoDB Local it started and takes over a stale lock, then releases it', { timeout: 120_000 }, async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    const dataDir = tempDir();
    // A lock left by a process that is gone (pid far above any pid_max in use).
    writeFileSync(path.join(dataDir, 'runtime.lock'), '999999999');
    const before = javaChildren();
    try {
      const err = await startLocalRuntime({ port, dataDir, log: () => undefined }).catch((e: Error) => e);
      expect((err as NodeJS.ErrnoException).code).toBe('EADDRINUSE');
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
    expect(javaChildren().filter((pid) => !before.includes(pid))).toEqual([]);
    expect(existsSync(path.join(dataDir, 'runtime.lock'))).toBe(false);
  });
});
