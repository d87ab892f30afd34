import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../../local/dynamodb-local.js';
import { request } from '../auth/fixtures.js';

/**
 * `npm start` and `npm run admin:create` as real child processes: bootstrap without and with a running
 * runtime, data kept between processes, graceful shutdown that finishes the request in flight and stops
 * DynamoDB Local, and a clear message when Java is missing.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const TSX = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const temps: string[] = [];
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'supervisor-test-'));
  temps.push(dir);
  return dir;
}

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  waitFor: (text: string | RegExp, timeoutMs?: number) => Promise<void>;
}

function run(script: string, args: string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, [TSX, script, ...args], {
    cwd: ROOT,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    async waitFor(text, timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(typeof text === 'string' ? out.includes(text) : text.test(out))) {
        if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode}) before printing ${text}:\n${out}`);
        if (Date.now() > deadline) throw new Error(`no ${text} within ${timeoutMs} ms:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const PASSWORD = 'bootstrap-admin-password';

describe('bootstrap, persistence and graceful shutdown', () => {
  it('creates the first admin without a runtime, then with one running; shutdown drains the request in flight', { timeout: 240_000 }, async () => {
    const dataDir = tempDir();
    const env = { DATA_DIR: dataDir };

    // 1. No runtime: admin:create starts DynamoDB Local on the data directory for the moment it needs.
    const offline = run('bin/admin-create.ts', ['--username', 'first-admin', '--password', PASSWORD, '--email', 'first@example.com'], env);
    expect(await offline.exited, offline.output()).toBe(0);
    expect(offline.output()).toMatch(/admin created: first-admin \([0-9A-Z]{26}\)/);
    // It says what it starts and where it wrote.
    expect(offline.output()).toContain(`starting DynamoDB Local on ${path.join(dataDir, 'dynamodb')}`);
    expect(offline.output()).toMatch(/DynamoDB Local ready after \d+\.\d s/);
    expect(offline.output()).toContain(`written to ${path.join(dataDir, 'dynamodb')}`);

    // 2. The runtime on the same data directory finds that admin.
    const port = await freePort();
    const runtime = run('bin/local.ts', ['--port', String(port)], env);
    await runtime.waitFor('Supervisor is running');
    const baseUrl = `http://127.0.0.1:${port}`;
    const dynamoPort = Number(/DynamoDB\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(runtime.output())![1]);
    expect(existsSync(path.join(dataDir, 'runtime.json'))).toBe(true);
    const first = await request('POST', '/auth/login', { baseUrl, body: { username: 'first@example.com', password: PASSWORD } });
    expect(first.status, first.text).toBe(200);
    expect(first.body.data.user.roles).toEqual(['admin']);

    // 3. With the runtime running, admin:create uses its DynamoDB Local.
    const online = run('bin/admin-create.ts', ['--username', 'second-admin', '--password', PASSWORD], env);
    expect(await online.exited, online.output()).toBe(0);
    expect(online.output()).toContain(`written to the database of the server running at ${baseUrl}`);
    expect(online.output()).not.toContain('starting DynamoDB Local');
    expect((await request('POST', '/auth/login', { baseUrl, body: { username: 'second-admin', password: PASSWORD } })).status).toBe(200);
    const again = run('bin/admin-create.ts', ['--username', 'second-admin', '--password', PASSWORD], env);
    expect(await again.exited).toBe(1);
    expect(again.output()).toContain('username is already taken');
    const weak = run('bin/admin-create.ts', ['--username', 'third-admin', '--password', 'short'], env);
    expect(await weak.exited).toBe(2);
    expect(weak.output()).toContain('--password');

    // 4. SIGTERM while a request is in flight: no new connections, the request completes, exit 0.
    const body = JSON.stringify({ username: 'second-admin', password: PASSWORD });
    const pending = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/auth/login',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' },
    });
    const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
      pending.on('response', (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      pending.on('error', reject);
    });
    // The server sends 100 Continue once it has taken the request in: from here on it is in flight.
    await new Promise<void>((resolve) => pending.once('continue', () => resolve()));
    runtime.child.kill('SIGTERM');
    await runtime.waitFor('SIGTERM: stopping');
    expect(await portAnswers(port)).toBe(false);
    pending.end(body);
    const answered = await response;
    expect(answered.status, answered.text).toBe(200);
    expect(JSON.parse(answered.text).data.access_token).toEqual(expect.any(String));
    expect(await runtime.exited, runtime.output()).toBe(0);
    expect(runtime.output()).toContain('stopped');
    expect(await portAnswers(dynamoPort)).toBe(false);
    expect(existsSync(path.join(dataDir, 'runtime.json'))).toBe(false);
  });

  it('in memory: the banner comes before the first request, admin:create writes to its database; SIGINT leaves nothing behind', { timeout: 180_000 }, async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const runtime = run('bin/local.ts', ['--in-memory', '--port', String(port)], { DATA_DIR: dataDir });
    // Knock from the start: the first request answered must be logged after the banner.
    let first: number | undefined;
    while (first === undefined) {
      if (runtime.child.exitCode !== null) throw new Error(runtime.output());
      first = await request('GET', '/api/v1/health', { baseUrl }).then(
        (res) => res.status,
        () => undefined,
      );
      if (first === undefined) await new Promise((r) => setTimeout(r, 25));
    }
    expect(first).toBe(200);
    await runtime.waitFor(/ GET \/api\/v1\/health 200 /);
    const out = runtime.output();
    expect(out.indexOf('Supervisor is running')).toBeGreaterThanOrEqual(0);
    expect(out.indexOf('Supervisor is running')).toBeLessThan(out.search(/ GET \/api\/v1\/health 200 /));
    expect(out).toContain('in memory');
    const dynamoPort = Number(/DynamoDB\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);

    // admin:create finds the in-memory database through the pointer the runtime publishes.
    expect(existsSync(path.join(dataDir, 'runtime-memory.json'))).toBe(true);
    const create = run('bin/admin-create.ts', ['--username', 'memory-admin', '--password', PASSWORD], { DATA_DIR: dataDir });
    expect(await create.exited, create.output()).toBe(0);
    expect(create.output()).toContain(`written to the in-memory database of the server running at ${baseUrl}`);
    expect(create.output()).not.toContain('starting DynamoDB Local');
    const login = await request('POST', '/auth/login', { baseUrl, body: { username: 'memory-admin', password: PASSWORD } });
    expect(login.status, login.text).toBe(200);
    // Nothing but the pointer went to disk: no database files in the data directory.
    expect(existsSync(path.join(dataDir, 'dynamodb'))).toBe(false);

    runtime.child.kill('SIGINT');
    expect(await runtime.exited, runtime.output()).toBe(0);
    expect(await portAnswers(dynamoPort)).toBe(false);
    expect(existsSync(path.join(dataDir, 'runtime-memory.json'))).toBe(false);
    // With no in-memory server left, --in-memory says so instead of writing anywhere else.
    const none = run('bin/admin-create.ts', ['--username', 'late-admin', '--password', PASSWORD, '--in-memory'], { DATA_DIR: dataDir });
    expect(await none.exited).toBe(1);
    expect(none.output()).toContain('no in-memory server is running');
  });
});

describe('without Java', () => {
  function pathWithoutJava(): string {
    const bin = path.join(tempDir(), 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, path.join(bin, 'node'));
    return bin;
  }

  it('npm start says Java is missing, how to install it, and exits non-zero', { timeout: 60_000 }, async () => {
    const runtime = run('bin/local.ts', ['--in-memory', '--port', String(await freePort())], { PATH: pathWithoutJava() });
    const code = await runtime.exited;
    expect(code).not.toBe(0);
    expect(runtime.output()).toContain('DynamoDB Local needs Java');
    expect(runtime.output()).toContain('apt-get install');
    expect(runtime.output()).toContain('DYNAMODB_ENDPOINT');
    expect(runtime.output()).not.toMatch(/\n\s+at /);
  });

  it('admin:create says the same', { timeout: 60_000 }, async () => {
    const create = run('bin/admin-create.ts', ['--username', 'someone', '--password', PASSWORD], { PATH: pathWithoutJava(), DATA_DIR: tempDir() });
    expect(await create.exited).not.toBe(0);
    expect(create.output()).toContain('DynamoDB Local needs Java');
  });
});
