import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalRuntime, type LocalRuntime } from '../../../local/runtime.js';
import { Client, login, seedUser, sessionAs, testStore, type Session } from '../auth/fixtures.js';
import { ROLES } from '../../../shared/platform/permissions.js';
import { logger } from '../../../shared/platform/logger.js';

/**
 * Liveness without dependencies; detailed and dependency checks that really reach each dependency;
 * and a runtime of the test's own whose DynamoDB Local is killed under it: 503, never 500.
 */

const DEPENDENCIES = ['table', 'task_queue', 'state_machine', 'scheduler', 'event_bus', 'sweeper'];

describe('on the shared runtime', () => {
  const client = new Client();
  let viewer: Session;
  beforeAll(async () => {
    viewer = await sessionAs(['viewer']);
  });

  it('GET /api/v1/health is public and answers ok with version and stage', async () => {
    const res = await client.call('GET', '/api/v1/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ data: { status: 'ok', version: expect.any(String), stage: 'local' }, message: 'Service is alive' });
    expect(Date.parse(res.body.data.timestamp)).not.toBeNaN();
  });

  it('HEAD /api/v1/health answers as GET does, without a body; HEAD elsewhere stays a 404', async () => {
    const get = await client.call('GET', '/api/v1/health');
    const head = await client.call('HEAD', '/api/v1/health');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(head.headers['content-type']).toBe(get.headers['content-type']);
    expect(head.headers['x-request-id']).toBeTruthy();
    expect(head.headers['x-content-type-options']).toBe('nosniff');
    const preflight = await client.call('OPTIONS', '/api/v1/health');
    expect(preflight.headers['access-control-allow-methods']?.split(',')).toContain('HEAD');
    // Only routes marked `head` answer HEAD (API Gateway gets a HEAD route for those alone).
    expect((await client.call('HEAD', '/api/v1/health/detailed')).status).toBe(404);
  });

  it.each(['/api/v1/health/detailed', '/api/v1/health/dependencies'])('%s checks every dependency with its latency', async (path) => {
    const res = await client.call('GET', path, { token: viewer.token });
    expect(res.status, res.text).toBe(200);
    // "degraded" only means a check took over a second, which a busy machine may cause.
    expect(['healthy', 'degraded']).toContain(res.body.data.status);
    const deps = res.body.data.dependencies as { name: string; required: boolean; status: string; latency_ms: number }[];
    expect(deps.map((d) => d.name).sort()).toEqual([...DEPENDENCIES].sort());
    for (const d of deps) {
      expect(['healthy', 'degraded'], d.name).toContain(d.status);
      expect(Number.isInteger(d.latency_ms) && d.latency_ms >= 0, d.name).toBe(true);
    }
    expect(deps.filter((d) => d.required).map((d) => d.name).sort()).toEqual(['table', 'task_queue']);
  });

  it('/detailed adds version, stage and uptime', async () => {
    const res = await client.call('GET', '/api/v1/health/detailed', { token: viewer.token });
    expect(res.body.data).toMatchObject({ version: expect.any(String), stage: 'local', uptime_seconds: expect.any(Number), checked_at: expect.any(String) });
  });

  it('the detailed checks need a token (health:read, which every role has)', async () => {
    expect((await client.call('GET', '/api/v1/health/detailed')).status).toBe(401);
    for (const role of ROLES) {
      const session = await sessionAs([role]);
      expect((await client.call('GET', '/api/v1/health/dependencies', { token: session.token })).status, role).toBe(200);
    }
  });
});

describe('with DynamoDB Local stopped under a running runtime', () => {
  let runtime: LocalRuntime;
  let client: Client;
  let session: Session;
  let refreshToken: string;
  /** A token the runtime has not checked yet, so that nothing about it is cached (AUTH_CACHE_SECONDS). */
  let unseenToken: string;

  beforeAll(async () => {
    // Not restarted here: this pins the answers during a lasting outage (the restart is in runtime/faults.test.ts).
    runtime = await startLocalRuntime({ changeFeed: false, port: 0, dataDir: null, log: () => undefined, tableName: 'supervisor', restartDynamoDb: false, dynamodbJit: 'quick' });
    client = new Client(undefined, runtime.url);
    const store = testStore(runtime.dynamodb!.endpoint);
    session = await login(await seedUser(['admin'], { store }), client);
    refreshToken = session.refreshToken;
    expect((await client.call('GET', '/api/v1/health/detailed', { token: session.token })).status).toBe(200);
    unseenToken = (await login(session, client)).token;
    // What follows logs every 503 as an error, by design; the test knows why.
    logger.setLogLevel('SILENT');
    runtime.dynamodb!.kill();
    await new Promise<void>((resolve) => (runtime.dynamodb!.process.exitCode !== null || runtime.dynamodb!.process.signalCode !== null ? resolve() : runtime.dynamodb!.process.once('exit', () => resolve())));
  }, 120_000);

  afterAll(async () => {
    await runtime?.stop();
  });

  it('its DynamoDB Local ran with the JVM quick compiler only, as asked', () => {
    expect(runtime.dynamodb!.process.spawnargs).toContain('-XX:TieredStopAtLevel=1');
  });

  it('liveness still answers 200: it calls no dependency', async () => {
    expect((await client.call('GET', '/api/v1/health')).status).toBe(200);
  });

  it.each(['/api/v1/health/detailed', '/api/v1/health/dependencies'])('%s answers 503 dependency_unavailable naming the table', async (path) => {
    // The token check reads the session from the table, so the 503 may come from there rather than
    // from the health check itself; either way it names the table.
    const res = await client.call('GET', path, { token: session.token });
    expect(res.status, res.text).toBe(503);
    expect(res.body.error).toBe('dependency_unavailable');
    expect(res.body.detail).toMatch(/\btable\b/);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain('table');
    expect(res.body.request_id).toBeTruthy();
  });

  it('every other route answers 503, not 500, without internals', async () => {
    const calls = [
      client.call('GET', '/auth/me', { token: unseenToken }),
      client.call('POST', '/auth/login', { body: { username: session.username, password: session.password } }),
      client.call('POST', '/auth/refresh', { body: { refresh_token: refreshToken } }),
      client.call('GET', '/api/v1/audit-logs', { token: session.token }),
    ];
    for (const res of await Promise.all(calls)) {
      expect(res.status, res.text).toBe(503);
      expect(res.body.error).toBe('dependency_unavailable');
      expect(res.body.detail).toBe('table is unavailable, try again shortly');
      expect(res.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|\bat\s/);
    }
  });
});
