import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { adminSession, call, eventually, userWithRole, type Session } from '../../support/client.js';
import { waitForStatus } from '../tasks/helpers.js';
import { createWorkflow, execute, step, waitForExecution } from '../workflows/helpers.js';
import { outboundFetch } from '../../../shared/platform/outbound.js';

/** Records POSTs; GET/HEAD answer 200 (health probes). */
function server(handler: (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void) {
  const s = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, Buffer.concat(chunks).toString('utf8'), res));
  });
  return {
    async start() {
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
      return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    },
    stop: () =>
      new Promise<void>((r) => {
        s.closeAllConnections();
        s.close(() => r());
      }),
  };
}

const secret = `whsec_${randomBytes(24).toString('base64')}`;
const token = `ghp_${randomBytes(18).toString('hex')}`;
const hooks: { id: string; verified: boolean; body: any }[] = [];
const comments: { path: string; auth: string; body: any }[] = [];
const slack: any[] = [];

const hookServer = server((req, body, res) => {
  if (req.method === 'POST') {
    let verified = false;
    try {
      new Webhook(secret).verify(body, req.headers as Record<string, string>);
      verified = true;
    } catch {
      verified = false;
    }
    hooks.push({ id: String(req.headers['webhook-id']), verified, body: JSON.parse(body) });
  }
  res.end('ok');
});
const github = server((req, body, res) => {
  if (req.method === 'POST') comments.push({ path: req.url ?? '', auth: String(req.headers.authorization), body: JSON.parse(body) });
  if (req.url === '/user' && req.headers.authorization !== `Bearer ${token}`) {
    res.writeHead(401).end('{"message":"Bad credentials"}');
    return;
  }
  res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' }).end('{"id":1}');
});
const slackServer = server((req, body, res) => {
  if (req.method === 'POST') slack.push(JSON.parse(body));
  res.end('ok');
});
/** Accepts the connection and never answers. */
const silent = server(() => undefined);

/**
 * Platform events (task.completed …) through the real local runtime to fake receivers. Registered by
 * plugins.test.ts after its own tests: the plugins are shared state of the one runtime, so the two
 * must not run side by side.
 */
export function systemEventsSuite(): void {
describe('plugins: system events and the SSRF guard', () => {
let admin: Session;
let user: Session;
let urls: { hook: string; github: string; slack: string; silent: string };

async function configureAndActivate(name: string, configuration: Record<string, unknown>) {
  const put = await call('PUT', `/api/v1/plugins/${name}/configuration`, { token: admin.token, body: { configuration } });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
  const status = (await call('GET', `/api/v1/plugins/${name}`, { token: admin.token })).body.data.status;
  if (status !== 'active') expect((await call('POST', `/api/v1/plugins/${name}/activate`, { token: admin.token })).status).toBe(200);
}

  beforeAll(async () => {
  urls = { hook: await hookServer.start(), github: await github.start(), slack: await slackServer.start(), silent: await silent.start() };
  admin = await adminSession();
  user = await userWithRole('user', admin);
  await call('POST', '/api/v1/plugins/discover', { token: admin.token });
});

  afterAll(async () => {
  for (const name of ['webhook', 'github', 'slack']) await call('POST', `/api/v1/plugins/${name}/deactivate`, { token: admin.token });
  await Promise.all([hookServer.stop(), github.stop(), slackServer.stop(), silent.stop()]);
});

describe('system events reach the plugins', () => {
  it('a pr_review task completing gives exactly one signed task.completed delivery, a PR comment and a Slack message', async () => {
    await configureAndActivate('webhook', { url: urls.hook, signing_secret: secret, events: ['task.completed'] });
    await configureAndActivate('github', { token, api_url: urls.github });
    await configureAndActivate('slack', { webhook_url: `${urls.slack}/services/T/B/X`, events: ['task.completed'] });

    const created = await call('POST', '/api/v1/tasks', {
      token: user.token,
      // On the offline provider: other suites register providers (some of them gone by now) that routing could pick.
      body: { type: 'pr_review', provider_id: 'local', payload: { repository: 'octo/widgets', pr_number: 42, title: 'Fix it', diff: '--- a\n+++ b\n@@\n-x\n+y\n' } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const taskId = created.body.data.task_id as string;
    const task = await waitForStatus(user, taskId, ['completed', 'failed']);
    expect(task.status, JSON.stringify(task.error ?? task)).toBe('completed');

    await eventually(
      async () => hooks.filter((h) => h.body.data.task_id === taskId),
      (seen) => seen.length >= 1,
      15_000,
    );
    await eventually(async () => comments.length, (n) => n >= 1, 15_000);
    await eventually(async () => slack.length, (n) => n >= 1, 15_000);
    await new Promise((r) => setTimeout(r, 800));
    const mine = hooks.filter((h) => h.body.data.task_id === taskId);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ verified: true, body: { type: 'task.completed' } });

    expect(comments).toHaveLength(1);
    expect(comments[0].path).toBe('/repos/octo/widgets/issues/42/comments');
    expect(comments[0].auth).toBe(`Bearer ${token}`);
    expect(comments[0].body.body).toContain(taskId);
    expect(slack[0].text).toContain('task.completed');

    const history = await call('GET', '/api/v1/plugins/events/history?event_type=task.completed', { token: admin.token });
    const deliveries = history.body.data.items.filter((d: { event_id: string }) => d.event_id === mine[0].id);
    expect(deliveries.map((d: { plugin_name: string }) => d.plugin_name).sort()).toEqual(['github', 'slack', 'webhook']);
    expect(deliveries.every((d: { status: string }) => d.status === 'succeeded')).toBe(true);
    expect(JSON.stringify(history.body)).not.toContain(token);
  });

  it('a workflow run completing gives exactly one signed execution.completed delivery (the live feed tells it; no writer tells it again)', async () => {
    await configureAndActivate('webhook', { url: urls.hook, signing_secret: secret, events: ['execution.completed'] });
    const workflowId = await createWorkflow(user.token, { steps: [step('only')] });
    const started = await execute(user.token, workflowId);
    const run = await waitForExecution(user.token, workflowId, started.execution_id);
    expect(run.status).toBe('completed');
    await eventually(
      async () => hooks.filter((h) => h.body.data.execution_id === started.execution_id),
      (seen) => seen.length >= 1,
      15_000,
    );
    await new Promise((r) => setTimeout(r, 800));
    const mine = hooks.filter((h) => h.body.data.execution_id === started.execution_id);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ verified: true, body: { type: 'execution.completed', data: { workflow_id: workflowId, status: 'completed' } } });
  });

  it('checks GitHub credentials in the health check', async () => {
    const ok = await call('GET', '/api/v1/plugins/github/health', { token: admin.token });
    expect(ok.body.data.checks.find((c: { name: string }) => c.name === 'token_valid').ok).toBe(true);
    await configureAndActivate('github', { token: 'ghp_wrong_token_value', api_url: urls.github });
    const bad = await call('GET', '/api/v1/plugins/github/health', { token: admin.token });
    expect(bad.body.data.healthy).toBe(false);
    expect(bad.body.data.checks.find((c: { name: string }) => c.name === 'token_valid')).toMatchObject({ ok: false, detail: 'HTTP 401' });
  });

  it('puts an active plugin in error after three failed health checks (audited)', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await configureAndActivate('slack', { webhook_url: `http://127.0.0.1:${port}/hook` });
    for (let i = 0; i < 3; i++) await call('GET', '/api/v1/plugins/slack/health', { token: admin.token });
    const p = await call('GET', '/api/v1/plugins/slack', { token: admin.token });
    expect(p.body.data.status).toBe('error');
    expect(p.body.data.health.consecutive_failures).toBe(3);
    const audit = await call('GET', '/api/v1/audit-logs?action=plugin.error', { token: admin.token });
    expect(audit.body.data.items.some((e: { resource_id: string }) => e.resource_id === 'slack')).toBe(true);
  });

  it('records a receiver that times out as a failed attempt with the timeout', async () => {
    await configureAndActivate('webhook', { url: urls.silent, signing_secret: secret, events: ['slow.*'], timeout_ms: 600 });
    const pub = await call('POST', '/api/v1/plugins/events/publish', { token: admin.token, body: { event_type: 'slow.event', data: {} } });
    const eventId = pub.body.data.event_id;
    const h = await eventually(
      () => call('GET', '/api/v1/plugins/events/history?plugin_name=webhook&event_type=slow.event', { token: admin.token }),
      (r) => (r.body.data.items.find((d: { event_id: string }) => d.event_id === eventId)?.attempts ?? 0) >= 1,
      15_000,
    );
    const d = h.body.data.items.find((x: { event_id: string }) => x.event_id === eventId);
    expect(d.attempt_log[0]).toMatchObject({ ok: false, status_code: null });
    expect(d.attempt_log[0].error).toMatch(/timed out|request failed/);
  });
});

describe('SSRF guard', () => {
  it('refuses loopback and link-local targets without connecting when private addresses are not allowed', async () => {
    let connections = 0;
    const listener = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
    const port = (listener.address() as AddressInfo).port;
    await expect(outboundFetch(`http://127.0.0.1:${port}/x`, { method: 'POST', body: '{}' }, { allowPrivate: false })).rejects.toMatchObject({ code: 'forbidden_address' });
    await expect(outboundFetch(`http://localhost:${port}/x`, {}, { allowPrivate: false })).rejects.toMatchObject({ code: 'forbidden_address' });
    await expect(outboundFetch('http://169.254.169.254/latest/meta-data', {}, { allowPrivate: true })).rejects.toMatchObject({ code: 'forbidden_address' });
    await new Promise((r) => setTimeout(r, 100));
    expect(connections).toBe(0);
    await new Promise<void>((r) => listener.close(() => r()));
  });
});
});
}
