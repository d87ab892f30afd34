import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { adminSession, call, eventually, userWithRole, type Session } from '../../support/client.js';
import { systemEventsSuite } from './system-events.suite.js';

/** A local receiver: records each request; `plan` answers status codes in turn (then 200). */
interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  verified: boolean;
  method: string;
  url: string;
}

function receiver(secret?: string) {
  const seen: Received[] = [];
  const plan: number[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let verified = false;
      if (secret && req.method === 'POST') {
        try {
          new Webhook(secret).verify(body, req.headers as Record<string, string>);
          verified = true;
        } catch {
          verified = false;
        }
      }
      if (req.method === 'POST') seen.push({ headers: req.headers, body, verified, method: req.method ?? '', url: req.url ?? '' });
      const status = req.method === 'POST' ? (plan.shift() ?? 200) : 200;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok thanks' : `boom ${status}`);
    });
  });
  return {
    seen,
    plan,
    server,
    async start() {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const secret = `whsec_${randomBytes(32).toString('base64')}`;
const hook = receiver(secret);
let hookUrl = '';
let admin: Session;
let viewer: Session;
let user: Session;
let operator: Session;

beforeAll(async () => {
  hookUrl = await hook.start();
  admin = await adminSession();
  [viewer, user, operator] = await Promise.all([userWithRole('viewer', admin), userWithRole('user', admin), userWithRole('operator', admin)]);
});

afterAll(async () => {
  await hook.stop();
});

describe('plugins', () => {
  it('discovers the built-in catalog idempotently, with metadata and JSON Schema', async () => {
    const first = await call('POST', '/api/v1/plugins/discover', { token: admin.token });
    expect(first.status).toBe(200);
    const again = await call('POST', '/api/v1/plugins/discover', { token: admin.token });
    expect(again.status).toBe(200);
    expect(again.body.data.discovered).toEqual([]);
    const names = again.body.data.plugins.map((p: { name: string }) => p.name).sort();
    expect(names).toEqual(['email', 'github', 'slack', 'webhook']);
    const webhook = again.body.data.plugins.find((p: { name: string }) => p.name === 'webhook');
    expect(webhook.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(webhook.config_schema.properties.signing_secret.writeOnly).toBe(true);
    expect(webhook.config_schema.required).toContain('url');
  });

  it('checks permissions: viewers read, only managers change, users cannot publish', async () => {
    expect((await call('GET', '/api/v1/plugins', { token: viewer.token })).status).toBe(200);
    expect((await call('POST', '/api/v1/plugins/webhook/activate', { token: viewer.token })).status).toBe(403);
    expect((await call('POST', '/api/v1/plugins/discover', { token: user.token })).status).toBe(403);
    expect((await call('POST', '/api/v1/plugins/events/publish', { token: user.token, body: { event_type: 'deploy.done' } })).status).toBe(403);
    expect((await call('GET', '/api/v1/plugins/webhook/configuration', { token: viewer.token })).status).toBe(403);
    expect((await call('GET', '/api/v1/plugins')).status).toBe(401);
  });

  it('answers 422 for bad input and 409 for a transition not allowed', async () => {
    expect((await call('GET', '/api/v1/plugins/types/nonsense', { token: viewer.token })).status).toBe(422);
    const bad = await call('PUT', '/api/v1/plugins/webhook/configuration', { token: admin.token, body: { configuration: { url: 'ftp://x', signing_secret: 'nope' } } });
    expect(bad.status).toBe(422);
    const paths = bad.body.errors.map((e: { path: string }) => e.path).sort();
    expect(paths).toEqual(['body.configuration.signing_secret', 'body.configuration.url']);
    expect((await call('POST', '/api/v1/plugins/webhook/activate', { token: admin.token })).status).toBe(409);
    expect((await call('POST', '/api/v1/plugins/events/publish', { token: admin.token, body: { event_type: 'task.completed' } })).status).toBe(422);
  });

  it('keeps secrets out of every answer', async () => {
    const put = await call('PUT', '/api/v1/plugins/webhook/configuration', { token: operator.token, body: { configuration: { url: hookUrl, signing_secret: secret, events: ['deploy.*'] } } });
    expect(put.status).toBe(200);
    expect(put.body.data.configuration.signing_secret).toBe('********');
    expect(put.body.data.status).toBe('loaded');
    const reads = await Promise.all([
      call('GET', '/api/v1/plugins/webhook/configuration', { token: admin.token }),
      call('GET', '/api/v1/plugins/webhook', { token: admin.token }),
      call('GET', '/api/v1/plugins', { token: admin.token }),
      call('GET', `/api/v1/audit-logs?resource_type=plugin`, { token: admin.token }),
    ]);
    for (const r of reads) expect(JSON.stringify(r.body)).not.toContain(secret.slice(6));
  });

  it('lets one of two racing activations win; the other gets a 409', async () => {
    const [a, b] = await Promise.all([
      call('POST', '/api/v1/plugins/webhook/activate', { token: admin.token }),
      call('POST', '/api/v1/plugins/webhook/activate', { token: operator.token }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const p = await call('GET', '/api/v1/plugins/webhook', { token: viewer.token });
    expect(p.body.data.status).toBe('active');
  });

  it('delivers signed events, retries after 500s, records every attempt, and redelivers', async () => {
    hook.plan.push(500, 503);
    const published = await call('POST', '/api/v1/plugins/events/publish', {
      token: operator.token,
      headers: { 'idempotency-key': `k-${Date.now()}` },
      body: { event_type: 'deploy.finished', data: { version: '1.2.3' } },
    });
    expect(published.status).toBe(202);
    const eventId = published.body.data.event_id as string;
    const history = await eventually(
      () => call('GET', `/api/v1/plugins/events/history?plugin_name=webhook&event_type=deploy.finished`, { token: viewer.token }),
      (r) => r.body.data?.items?.find((d: { event_id: string }) => d.event_id === eventId)?.status === 'succeeded',
      20_000,
    );
    const d = history.body.data.items.find((x: { event_id: string }) => x.event_id === eventId);
    expect(d.attempts).toBe(3);
    expect(d.attempt_log.map((a: { status_code: number }) => a.status_code)).toEqual([500, 503, 200]);
    expect(d.attempt_log[0].response_excerpt).toBe('boom 500');
    const mine = hook.seen.filter((r) => r.headers['webhook-id'] === eventId);
    expect(mine).toHaveLength(3);
    expect(mine.every((r) => r.verified)).toBe(true);
    expect(JSON.parse(mine[2].body)).toMatchObject({ type: 'deploy.finished', data: { event_id: eventId, version: '1.2.3' } });

    const again = await call('POST', `/api/v1/plugins/events/${eventId}/redeliver`, { token: operator.token, body: {} });
    expect(again.status).toBe(200);
    expect(again.body.data.deliveries[0]).toMatchObject({ attempts: 4, status: 'succeeded' });
    expect(again.body.data.deliveries[0].attempt_log[3].trigger).toBe('manual');
    expect(hook.seen.filter((r) => r.headers['webhook-id'] === eventId && r.verified)).toHaveLength(4);

    const metrics = await call('GET', '/api/v1/plugins/metrics', { token: viewer.token });
    const row = metrics.body.data.plugins.find((p: { plugin_name: string }) => p.plugin_name === 'webhook');
    expect(row.deliveries).toBeGreaterThanOrEqual(4);
    expect(row.failures).toBeGreaterThanOrEqual(2);
    expect(row.success_rate).toBeCloseTo(row.successes / row.deliveries, 3);
    expect(row.latency_p50_ms).not.toBeNull();
    expect(row.last_error).toMatch(/HTTP 50/);
  });

  it('does not deliver events outside the filter, and checks health for real', async () => {
    const before = hook.seen.length;
    await call('POST', '/api/v1/plugins/events/publish', { token: admin.token, body: { event_type: 'other.thing' } });
    await new Promise((r) => setTimeout(r, 500));
    expect(hook.seen.length).toBe(before);
    const health = await call('GET', '/api/v1/plugins/webhook/health', { token: viewer.token });
    expect(health.status).toBe(200);
    expect(health.body.data.healthy).toBe(true);
    const all = await call('GET', '/api/v1/plugins/health/all', { token: viewer.token });
    expect(all.body.data.plugins.find((p: { plugin_name: string }) => p.plugin_name === 'webhook').healthy).toBe(true);
  });

  it('sends an email notification (.eml locally) and answers its delivery record', async () => {
    const put = await call('PUT', '/api/v1/plugins/email/configuration', { token: admin.token, body: { configuration: { from: 'bot@example.com', to: ['ops@example.com'] } } });
    expect(put.status).toBe(200);
    expect((await call('POST', '/api/v1/plugins/email/activate', { token: admin.token })).status).toBe(200);
    const sent = await call('POST', '/api/v1/plugins/notifications/send', {
      token: operator.token,
      body: { plugin_name: 'email', recipient: 'someone@example.com', subject: 'Hello', message: 'Body text', priority: 'high' },
    });
    expect(sent.status).toBe(200);
    expect(sent.body.data).toMatchObject({ plugin_name: 'email', status: 'succeeded', attempts: 1 });
    expect(sent.body.data.attempt_log[0].response_excerpt).toMatch(/^message id /);
    const bad = await call('POST', '/api/v1/plugins/notifications/send', { token: operator.token, body: { plugin_name: 'email', recipient: 'not-an-email', subject: 'x', message: 'y' } });
    expect(bad.status).toBe(422);
  });

  it('never writes a secret to a log line', async () => {
    // Everything the runtime logged so far, this file's configuration, deliveries and retries included.
    const log = readFileSync(inject('runtimeLogFile'), 'utf8');
    expect(log.length).toBeGreaterThan(0);
    for (const needle of [secret, secret.slice(6), Buffer.from(secret.slice(6), 'base64').toString('hex')]) expect(log).not.toContain(needle);
  });

  it('unloads a plugin (secrets removed) and discovers it again', async () => {
    const gone = await call('DELETE', '/api/v1/plugins/webhook', { token: admin.token });
    expect(gone.status).toBe(200);
    expect(gone.body.data.status).toBe('unloaded');
    expect(gone.body.data.configured).toBe(false);
    const found = await call('POST', '/api/v1/plugins/discover', { token: admin.token });
    expect(found.body.data.discovered).toEqual(['webhook']);
  });
});

systemEventsSuite();
