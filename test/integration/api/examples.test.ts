import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ulid } from 'ulid';
import { ROUTES } from '../../../shared/routes.js';
import type { RouteSpec } from '../../../shared/platform/api/route.js';
import { EXAMPLES, type OperationExample } from '../../../shared/docs/examples.js';
import { Store } from '../../../shared/platform/store/client.js';
import { taskRecord } from '../../support/task-record.js';
import { getConfig } from '../../../shared/platform/config.js';
import { systemClock } from '../../../shared/platform/ports.js';
import type { Deps } from '../../../shared/platform/runtime.js';
import { MetricsStore } from '../../../shared/platform/metrics/store.js';
import { evaluateRules } from '../../../shared/monitoring/service.js';
import { TaskRepository, type TaskRecord } from '../../../shared/tasks/repo.js';
import { call, adminSession, eventually, type Session } from '../../support/client.js';
import { checkResponse } from '../../support/contract.js';
import { authService, testStore } from '../auth/fixtures.js';

/**
 * The examples the OpenAPI document publishes (`shared/docs/examples.json`) are what this file sends
 * and receives. One scenario walks every operation in an order that gives each one something real to
 * act on (a provider to register before tasks run on it, a running workflow to cancel, an alert that
 * fired to acknowledge); each step is an operation's example request, and must succeed with the
 * operation's documented status. The test client checks every answer against the document.
 *
 * Checked on every run:
 * - every operation has a published request and success example;
 * - the request each step sends is the published one (ids, tokens and times aside);
 * - the published success example validates against the operation's schema, and has the fields the
 *   real answer has.
 *
 * `UPDATE_EXAMPLES=1 npx vitest run test/integration/api/examples.test.ts` (alone, so the runtime
 * holds little else) writes the file again from what was sent and received.
 */

const UPDATE = process.env.UPDATE_EXAMPLES === '1';
const EXAMPLES_FILE = fileURLToPath(new URL('../../../shared/docs/examples.json', import.meta.url));
const PASSWORD = 'correct horse battery staple';

type Who = 'admin' | 'alice' | 'public';

interface Request {
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
  headers?: Record<string, string>;
}

interface Step {
  op: string;
  as?: Who;
  request?: () => Request | Promise<Request>;
  /** Runs after the answer: keeps what later steps need, waits for what they depend on. */
  then?: (data: any) => void | Promise<void>;
  /** Shortens a long answer for publication (the document, a file). */
  publish?: (body: unknown) => unknown;
}

const byOperation = new Map(ROUTES.map((r) => [r.operationId, r] as const));

const ctx: Record<string, any> = {};
let admin: Session;
let alice: Session;
let store: Store;
let deps: Deps;
let hook: http.Server;
const recorded: Record<string, OperationExample> = {};

/** A task written straight into the table (not queued, so no worker runs it), for the resource ledger's examples. */
async function storedTask(overrides: Partial<TaskRecord>): Promise<TaskRecord> {
  const record = taskRecord({ title: 'example allocation', created_by: admin.userId, ...overrides });
  await new TaskRepository(store).create(record);
  return record;
}

async function api(method: string, path: string, body?: unknown, token = admin.token) {
  const res = await call(method, path, { token, body });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body?.data;
}

const task = (id: string) => api('GET', `/api/v1/tasks/${id}`);
const execution = (workflowId: string, id: string) => api('GET', `/api/v1/workflows/${workflowId}/executions/${id}`);

const workflowBody = {
  name: 'example-review-then-summarise',
  description: 'Finds the risky modules of a repository, then summarises them for the team',
  variables: { repo: 'api' },
  steps: [
    { id: 'analyse', type: 'custom', provider_id: 'example-local', payload: { prompt: 'List the risky modules of {{variables.repo}}' } },
    { id: 'summary', type: 'custom', provider_id: 'example-local', depends_on: ['analyse'], payload: { prompt: 'Summarise for the team' } },
  ],
};

const alertRuleBody = {
  name: 'Slow deploys',
  description: 'A deploy of the api took longer than 30 s',
  metric: 'example.deploy_seconds',
  labels: { service: 'api' },
  aggregation: 'max',
  window_seconds: 900,
  condition: 'gt',
  threshold: 30,
  for_seconds: 0,
  keep_firing_for_seconds: 300,
  severity: 'warning',
  enabled: true,
};

const STEPS: Step[] = [
  // Auth, users and the audit log.
  { op: 'register', as: 'public', request: () => ({ body: { username: 'example-bob', password: PASSWORD, email: 'bob@example.com', full_name: 'Bob Example' } }) },
  {
    op: 'login',
    as: 'public',
    request: () => ({ body: { username: 'example-alice', password: PASSWORD } }),
    then: (d) => {
      alice = { token: d.access_token, refreshToken: d.refresh_token, userId: d.user.user_id, username: d.user.username };
    },
  },
  {
    op: 'refresh',
    as: 'public',
    request: () => ({ body: { refresh_token: alice.refreshToken } }),
    then: (d) => {
      alice = { ...alice, token: d.access_token, refreshToken: d.refresh_token };
    },
  },
  { op: 'me', as: 'alice' },
  { op: 'listUsers', request: () => ({ query: { limit: '2' } }) },
  {
    op: 'createUser',
    request: () => ({ body: { username: 'example-carol', password: PASSWORD, email: 'carol@example.com', full_name: 'Carol Example', roles: ['user'] } }),
    then: (d) => void (ctx.carol = d.user_id),
  },
  { op: 'updateUser', request: () => ({ params: { user_id: ctx.carol }, body: { full_name: 'Carol Q. Example', roles: ['viewer'] } }) },
  { op: 'deleteUser', request: () => ({ params: { user_id: ctx.carol } }) },
  { op: 'listAuditLogs', request: () => ({ query: { resource_type: 'user', action: 'deleteUser', limit: '2' } }) },
  { op: 'jwks', as: 'public' },

  // Health and the document itself.
  { op: 'health', as: 'public' },
  { op: 'healthDetailed' },
  { op: 'healthDependencies' },
  {
    op: 'openapi',
    as: 'public',
    publish: (doc: any) => ({ openapi: doc.openapi, info: doc.info, paths: { '/api/v1/health': doc.paths['/api/v1/health'] } }),
  },
  { op: 'swaggerUi', as: 'public', publish: (html) => String(html).slice(0, 200) },
  { op: 'swaggerAsset', as: 'public', request: () => ({ params: { proxy: 'swagger-ui.css' } }), publish: (css) => String(css).slice(0, 200) },

  // Providers.
  {
    op: 'registerProvider',
    request: () => ({
      params: { provider_id: 'example-local' },
      body: { type: 'local', name: 'Example local model', pricing: { input_per_million: 3, output_per_million: 15 }, capabilities: ['code_analysis', 'custom'], priority: 5 },
    }),
  },
  { op: 'listProviders', request: () => ({ query: { type: 'local', limit: '2' } }) },
  { op: 'getProvider', request: () => ({ params: { provider_id: 'example-local' } }) },
  { op: 'providerHealth', request: () => ({ params: { provider_id: 'example-local' } }) },
  {
    op: 'executeTask',
    request: () => ({ body: { type: 'custom', title: 'Explain a regular expression', payload: { prompt: 'Explain ^[a-z]+(-[a-z]+)*$ in one sentence' }, provider_id: 'example-local', wait_seconds: 20 } }),
  },
  {
    op: 'executeBatch',
    request: () => ({
      body: {
        items: [
          { type: 'custom', title: 'Name a variable', payload: { prompt: 'A name for a count of retries' }, provider_id: 'example-local' },
          { type: 'custom', title: 'Name a function', payload: { prompt: 'A name for a function that parses a duration' }, provider_id: 'example-local' },
        ],
      },
    }),
  },
  { op: 'providerUsage', request: () => ({ params: { provider_id: 'example-local' }, query: { days: '7' } }) },
  { op: 'providersStatus' },
  { op: 'providersAnalytics', request: () => ({ query: { days: '7' } }) },
  { op: 'recommendProviders', request: () => ({ body: { task_type: 'code_analysis', expected_tokens: { input: 2000, output: 500 }, limit: 3 } }) },

  // Agents: one review a day, so that a second task waits for the quota.
  {
    op: 'createAgent',
    request: () => ({
      body: { name: 'example-reviewer', description: 'Reviews pull requests', provider_id: 'example-local', quota: { window: 'daily', max_requests: 1 }, max_concurrency: 1 },
    }),
    then: (d) => void (ctx.agent = d.agent_id),
  },
  { op: 'listAgents', request: () => ({ query: { provider_id: 'example-local' } }) },
  { op: 'getAgent', request: () => ({ params: { agent_id: ctx.agent } }) },
  { op: 'updateAgent', request: () => ({ params: { agent_id: ctx.agent }, body: { description: 'Reviews pull requests, one a day', priority: 7 } }) },

  // Tasks.
  {
    op: 'createTask',
    request: () => ({
      body: {
        type: 'code_analysis',
        title: 'Find unused exports',
        payload: { code: 'export const unused = 1;\nexport const used = 2;', language: 'typescript', focus: ['dead code'] },
        agent_id: ctx.agent,
        priority: 5,
        tags: ['lint'],
      },
    }),
    then: async (d) => {
      ctx.task = d.task_id;
      await eventually(() => task(d.task_id), (t) => t.status === 'completed', 120_000);
      // The agent's quota is spent: this one waits, so that it can be edited and cancelled.
      const waiting = await api('POST', '/api/v1/tasks', { type: 'custom', title: 'Second review', payload: { prompt: 'Review again' }, agent_id: ctx.agent });
      ctx.waiting = waiting.task_id;
      await eventually(() => task(ctx.waiting), (t) => t.waiting_reason === 'quota', 60_000);
    },
  },
  { op: 'getAgentQuotaStatus' },
  { op: 'listTasks', request: () => ({ query: { status: 'completed', limit: '2' } }) },
  { op: 'getTask', request: () => ({ params: { task_id: ctx.task } }) },
  { op: 'listTaskSessions', request: () => ({ params: { task_id: ctx.task } }) },
  { op: 'getTaskStats' },
  { op: 'updateTask', request: () => ({ params: { task_id: ctx.waiting }, body: { title: 'Second review (urgent)', priority: 9, tags: ['urgent'] } }) },
  { op: 'cancelTask', request: () => ({ params: { task_id: ctx.waiting }, body: { reason: 'Superseded by a newer change' } }) },
  {
    op: 'retryTask',
    request: () => ({ params: { task_id: ctx.waiting } }),
    then: async () => {
      await api('POST', `/api/v1/tasks/${ctx.waiting}/cancel`, { reason: 'Not needed after all' });
    },
  },
  { op: 'deleteTask', request: () => ({ params: { task_id: ctx.waiting } }) },
  // Gone before the workflows: tasks on its provider would otherwise wait for its spent quota.
  { op: 'deleteAgent', request: () => ({ params: { agent_id: ctx.agent } }) },

  // Workflows and their runs.
  { op: 'validateWorkflow', request: () => ({ body: workflowBody }) },
  { op: 'createWorkflow', request: () => ({ body: workflowBody }), then: (d) => void (ctx.workflow = d.workflow_id) },
  { op: 'listWorkflows', request: () => ({ query: { search: 'example-review', limit: '2' } }) },
  { op: 'getWorkflow', request: () => ({ params: { workflow_id: ctx.workflow } }) },
  {
    op: 'updateWorkflow',
    request: () => ({ params: { workflow_id: ctx.workflow }, body: { ...workflowBody, max_parallel: 2, timeout_seconds: 1800 } }),
  },
  {
    op: 'executeWorkflow',
    request: () => ({ params: { workflow_id: ctx.workflow }, body: { variables: { repo: 'web' }, triggered_by: 'release-checklist' } }),
    then: async (d) => {
      ctx.execution = d.execution_id;
      await eventually(() => execution(ctx.workflow, ctx.execution), (e) => ['completed', 'failed', 'cancelled'].includes(e.status), 120_000);
      // A second run on a slow model, to be cancelled while it runs.
      const slow = await api('POST', '/api/v1/workflows', {
        name: 'example-slow',
        steps: [{ id: 'long', type: 'custom', provider_id: 'example-slow', payload: { prompt: 'A long answer, please' } }],
      });
      ctx.slowWorkflow = slow.workflow_id;
      ctx.slowRun = (await api('POST', `/api/v1/workflows/${slow.workflow_id}/execute`, {})).execution_id;
      await eventually(() => execution(ctx.slowWorkflow, ctx.slowRun), (e) => e.steps?.some((s: any) => s.status === 'running'), 60_000);
    },
  },
  { op: 'listExecutions', request: () => ({ params: { workflow_id: ctx.workflow }, query: { status: 'completed' } }) },
  { op: 'getExecution', request: () => ({ params: { workflow_id: ctx.workflow, execution_id: ctx.execution } }) },
  {
    op: 'cancelExecution',
    request: () => ({ params: { workflow_id: ctx.slowWorkflow, execution_id: ctx.slowRun }, body: { reason: 'Wrong branch' } }),
  },
  { op: 'workflowHealth' },

  // Schedules.
  {
    op: 'createSchedule',
    request: () => ({
      body: { workflow_id: ctx.workflow, name: 'Nightly review', cron_expression: '0 3 * * *', timezone: 'Europe/Berlin', variables: { repo: 'api' }, overlap: 'skip' },
    }),
    then: (d) => void (ctx.schedule = d.schedule_id),
  },
  { op: 'listSchedules', request: () => ({ query: { workflow_id: ctx.workflow } }) },
  { op: 'getSchedule', request: () => ({ params: { schedule_id: ctx.schedule } }) },
  { op: 'updateSchedule', request: () => ({ params: { schedule_id: ctx.schedule }, body: { cron_expression: '30 2 * * 1-5' } }) },
  { op: 'pauseSchedule', request: () => ({ params: { schedule_id: ctx.schedule } }) },
  { op: 'resumeSchedule', request: () => ({ params: { schedule_id: ctx.schedule } }) },
  { op: 'triggerSchedule', request: () => ({ params: { schedule_id: ctx.schedule } }) },
  { op: 'deleteSchedule', request: () => ({ params: { schedule_id: ctx.schedule } }) },

  // The resource ledger: two allocations in a pool of 2, scaled down by force, is a conflict.
  {
    op: 'allocateResources',
    request: async () => {
      ctx.lowTask = (
        await storedTask({ priority: 2, status: 'running', attempts: 1, lease_owner: 'example-worker', lease_until: new Date(Date.now() + 600_000).toISOString(), started_at: new Date().toISOString(), next_attempt_at: null } as Partial<TaskRecord>)
      ).task_id;
      ctx.highTask = (await storedTask({ priority: 8 })).task_id;
      await api('POST', '/api/v1/resources/allocate', { task_id: ctx.lowTask, resources: { cli_runner: 'example', cpu: 1 } });
      return { body: { task_id: ctx.highTask, resources: { cli_runner: 'example', cpu: 1 }, priority: 8 } };
    },
  },
  { op: 'getResourceAllocationStatus' },
  { op: 'scaleResources', request: () => ({ body: { pool: 'cli_runner:example:cpu', action: 'scale_down', magnitude: 1, force: true } }) },
  {
    op: 'listResourceConflicts',
    then: async () => {
      const conflicts = (await api('GET', '/api/v1/resources/conflicts')).items as any[];
      ctx.conflict = conflicts.find((c) => c.kind === 'over_commitment' && c.pool === 'cli_runner:example:cpu').conflict_id;
    },
  },
  { op: 'resolveResourceConflict', request: () => ({ params: { conflict_id: ctx.conflict }, body: { strategy: 'preempt_lower_priority' } }) },
  { op: 'releaseResources', request: () => ({ body: { task_id: ctx.highTask } }) },
  { op: 'getResourceMonitoring', request: () => ({ query: { time_range: '1h' } }) },
  { op: 'getResourceRecommendations' },
  { op: 'getResourceHealth' },

  // Plugins: a webhook to a receiver of this file's own.
  { op: 'discoverPlugins' },
  { op: 'listPlugins', request: () => ({ query: { type: 'notification' } }) },
  { op: 'listPluginsByType', request: () => ({ params: { plugin_type: 'integration' } }) },
  { op: 'getPlugin', request: () => ({ params: { plugin_name: 'webhook' } }) },
  {
    op: 'updatePluginConfiguration',
    request: () => ({
      params: { plugin_name: 'webhook' },
      body: { configuration: { url: ctx.hookUrl, signing_secret: 'whsec_ZXhhbXBsZS1zaWduaW5nLXNlY3JldC0zMmJ5dGVzIQ==', events: ['deploy.*'] } },
    }),
  },
  { op: 'getPluginConfiguration', request: () => ({ params: { plugin_name: 'webhook' } }) },
  { op: 'activatePlugin', request: () => ({ params: { plugin_name: 'webhook' } }) },
  {
    op: 'publishPluginEvent',
    request: () => ({ body: { event_type: 'deploy.finished', data: { service: 'api', version: '1.2.3' } } }),
    then: async (d) => {
      ctx.event = d.event_id;
      await eventually(
        () => api('GET', `/api/v1/plugins/events/history?plugin_name=webhook&event_type=deploy.finished`),
        (h) => h.items.some((x: any) => x.event_id === ctx.event && x.status === 'succeeded'),
        30_000,
      );
    },
  },
  { op: 'getPluginEventHistory', request: () => ({ query: { plugin_name: 'webhook', event_type: 'deploy.finished', limit: '2' } }) },
  { op: 'redeliverPluginEvent', request: () => ({ params: { event_id: ctx.event }, body: { plugin_name: 'webhook' } }) },
  {
    op: 'sendPluginNotification',
    request: () => ({ body: { plugin_name: 'email', recipient: 'oncall@example.com', subject: 'Deploy finished', message: 'api 1.2.3 is live.', priority: 'normal' } }),
  },
  { op: 'getPluginHealth', request: () => ({ params: { plugin_name: 'webhook' } }) },
  { op: 'getAllPluginsHealth' },
  { op: 'getPluginMetrics' },
  { op: 'deactivatePlugin', request: () => ({ params: { plugin_name: 'webhook' } }) },
  { op: 'unloadPlugin', request: () => ({ params: { plugin_name: 'github' } }), then: async () => void (await api('POST', '/api/v1/plugins/discover')) },

  // Analytics: a deploy's duration collected, then every reading of what is stored.
  {
    op: 'collectMetric',
    request: () => ({ body: { event_id: `example-deploy-${ctx.run}`, metric_type: 'example.deploy_seconds', value: 42.5, labels: { service: 'api' } } }),
  },
  {
    op: 'queryMetrics',
    request: () => ({ body: { metric_type: 'task.duration_ms', time_range: '24h', aggregation: 'p95', group_by: { bucket: 'hour', labels: ['provider'] } } }),
  },
  { op: 'listMetricPoints', request: () => ({ query: { metric_type: 'example.deploy_seconds', limit: '2' } }) },
  { op: 'getAnalyticsSummary', request: () => ({ query: { window: '24h' } }) },
  { op: 'getProviderDashboard', request: () => ({ query: { time_range: '24h' } }) },
  { op: 'getProviderCostOptimization', request: () => ({ query: { time_range: '7d' } }) },
  { op: 'getProviderPerformanceComparison', request: () => ({ query: { time_range: '7d' } }) },
  { op: 'getProviderMetrics', request: () => ({ params: { provider_id: 'example-local' }, query: { time_range: '24h', bucket: 'hour' } }) },
  { op: 'getAnalyticsInsights', request: () => ({ query: { window: '24h' } }) },
  { op: 'getMetricTrend', request: () => ({ params: { metric_type: 'task.duration_ms' }, query: { history: '24h', bucket: 'hour', prediction_hours: '6' } }) },
  { op: 'getRealTimeMetrics', request: () => ({ query: { metric_types: 'task.duration_ms,task.cost_usd', window_minutes: '60' } }) },
  { op: 'getDashboardData', request: () => ({ query: { time_range: '24h' } }) },
  { op: 'getAdvancedInsights', request: () => ({ query: { time_range: '24h' } }) },
  { op: 'exportAnalytics', request: () => ({ query: { format: 'json', time_range: '1h', metric_types: 'example.deploy_seconds' } }) },

  // Monitoring: a rule on the collected deploy time fires, and is acknowledged.
  { op: 'getMonitoringHealth' },
  { op: 'getMonitoringConfig' },
  { op: 'createAlertRule', request: () => ({ body: alertRuleBody }), then: (d) => void (ctx.rule = d.rule_id) },
  {
    op: 'replaceAlertRule',
    request: () => ({ params: { rule_id: ctx.rule }, body: { ...alertRuleBody, threshold: 40 } }),
    then: async () => {
      await new MetricsStore(store).record({ metric: 'example.deploy_seconds', value: 42.5, at: new Date(), labels: { service: 'api' }, sourceId: `example:${ctx.run}` });
      await evaluateRules(deps, { ruleIds: [ctx.rule], notifier: { notify: async () => ({ status: 'published', detail: null }) } });
    },
  },
  { op: 'listAlertRules' },
  {
    op: 'listAlerts',
    request: () => ({ query: { rule_id: ctx.rule, status: 'firing' } }),
    then: (d) => void (ctx.alert = d.items[0].alert_id),
  },
  { op: 'acknowledgeAlert', request: () => ({ params: { alert_id: ctx.alert } }) },
  { op: 'deleteAlertRule', request: () => ({ params: { rule_id: ctx.rule } }) },
  { op: 'stopMonitoring' },
  { op: 'startMonitoring' },
  // The defaults (other files may have left another configuration).
  { op: 'updateMonitoringConfig', request: () => ({ body: { evaluation_interval_seconds: 60, retention_days: 30, default_channels: [], enabled: true } }) },

  // Clean-up operations last: what they remove was used above.
  { op: 'deleteWorkflow', request: () => ({ params: { workflow_id: ctx.slowWorkflow } }) },
  { op: 'unregisterProvider', request: () => ({ params: { provider_id: 'example-slow' } }) },
  { op: 'logout', as: 'alice', request: () => ({ body: { refresh_token: alice.refreshToken } }) },
];

function pathOf(route: RouteSpec, params: Record<string, string> = {}): string {
  return route.path.replace(/\{([^}+]+)\+?\}/g, (_m, name: string) => encodeURIComponent(params[name] ?? `{${name}}`));
}

const ULID = /(?<![0-9A-Za-z])[0-9A-HJKMNP-TV-Z]{26}(?![0-9A-Za-z])/g;
const TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g;

/** The request without what differs from run to run: ids, times, tokens, hosts and ports of this run. */
function comparable(request: Request): unknown {
  const { params: _ignored, headers: _h, ...rest } = request;
  const mask = (v: unknown, key = ''): unknown => {
    if (typeof v === 'string') {
      if (/(token|_id|url)$/.test(key)) return '…';
      return v.replace(ULID, 'ULID').replace(TIME, 'TIME');
    }
    if (Array.isArray(v)) return v.map((x) => mask(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mask(x, k)]));
    return v;
  };
  return mask(rest);
}

/** Where the published examples say this file's receiver is (it listens on loopback, which the SSRF guard refuses in production). */
const PUBLISHED_HOOK_URL = 'https://hooks.example.com/supervisor/deploys';

/**
 * For publication: arrays cut to two items, long strings cut, ids renumbered in order of appearance,
 * the receiver's loopback address replaced.
 */
function published(examples: Record<string, OperationExample>): Record<string, OperationExample> {
  const ids = new Map<string, string>();
  const text = JSON.stringify(examples, (_k, v: unknown) => {
    if (Array.isArray(v)) return v.slice(0, 2);
    if (typeof v === 'string' && v.length > 1200) return `${v.slice(0, 1200)}…`;
    return v;
  })
    .split(ctx.hookUrl)
    .join(PUBLISHED_HOOK_URL)
    .replace(ULID, (id) => {
      if (!ids.has(id)) ids.set(id, `01JD${String(ids.size + 1).padStart(22, '0')}`);
      return ids.get(id)!;
    });
  return JSON.parse(text) as Record<string, OperationExample>;
}

beforeAll(async () => {
  admin = await adminSession();
  store = new Store({ tableName: 'supervisor', endpoint: inject('dynamodbEndpoint') });
  deps = { config: getConfig(), store, clock: systemClock } as unknown as Deps;
  ctx.run = ulid().toLowerCase();
  await authService(testStore()).createUser({ username: 'example-alice', password: PASSWORD, roles: ['operator'] });
  hook = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200).end('ok'));
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  ctx.hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hooks/deploys`;
  // Preconditions that are not examples: a slow model to cancel a run on, e-mail set up for a notification.
  await api('POST', '/api/v1/providers/example-slow/register', { type: 'local', name: 'Example slow model', pricing: { input_per_million: 0, output_per_million: 0 }, settings: { chunk_delay_ms: 1000 } });
  await api('POST', '/api/v1/plugins/discover');
  await api('PUT', '/api/v1/plugins/email/configuration', { configuration: { from: 'supervisor@example.com', to: ['oncall@example.com'] } });
  // 409 when another file left it active.
  expect([200, 409]).toContain((await call('POST', '/api/v1/plugins/email/activate', { token: admin.token })).status);
});

afterAll(async () => {
  await new Promise<void>((resolve) => hook?.close(() => resolve()));
  store?.raw.destroy();
  if (UPDATE) writeFileSync(EXAMPLES_FILE, `${JSON.stringify(published(recorded), null, 2)}\n`);
});

describe('published examples', () => {
  it('the scenario covers every operation once', () => {
    const covered = STEPS.map((s) => s.op);
    expect(covered.filter((op, i) => covered.indexOf(op) !== i)).toEqual([]);
    expect(ROUTES.map((r) => r.operationId).filter((op) => !covered.includes(op))).toEqual([]);
    expect(covered.filter((op) => !byOperation.has(op))).toEqual([]);
  });

  it.skipIf(UPDATE)('every operation publishes a request and a success example that validates against its schema', async () => {
    const problems: string[] = [];
    for (const route of ROUTES) {
      const example = EXAMPLES[route.operationId];
      if (!example) {
        problems.push(`${route.operationId}: no published example`);
        continue;
      }
      if (example.status !== (route.status ?? 200)) problems.push(`${route.operationId}: published status ${example.status}, documented ${route.status ?? 200}`);
      const json = !route.rawResponse || route.rawResponse.contentTypes.some((t) => t.endsWith('json'));
      if (!json) continue;
      const body = route.rawResponse ? example.response : { data: example.response, message: example.message, timestamp: '2025-01-01T00:00:00.000Z' };
      await checkResponse(route.method, pathOf(route, example.params), example.status, 'application/json', JSON.stringify(body)).catch((err: Error) => problems.push(`${route.operationId}: ${err.message}`));
    }
    expect(problems).toEqual([]);
  });

  it.each(STEPS.map((s) => [s.op, s] as const))('%s: the published example request succeeds', async (op, step) => {
    const route = byOperation.get(op)!;
    const request = (await step.request?.()) ?? {};
    const token = step.as === 'public' ? undefined : step.as === 'alice' ? alice.token : admin.token;
    const query = request.query ? `?${new URLSearchParams(request.query).toString()}` : '';
    const res = await call(route.method, `${pathOf(route, request.params)}${query}`, { token, body: request.body, headers: request.headers });
    expect(res.status, JSON.stringify(res.body).slice(0, 600)).toBe(route.status ?? 200);
    const received = route.rawResponse ? res.body : res.body.data;
    if (UPDATE) {
      recorded[op] = {
        ...request,
        status: res.status,
        response: step.publish ? step.publish(received) : received,
        ...(route.rawResponse ? {} : { message: res.body.message }),
      };
    } else {
      const example = EXAMPLES[op]!;
      const { status: _s, response: _r, message: _m, ...publishedRequest } = example;
      expect(comparable(request), `${op}: the request differs from the published one; run UPDATE_EXAMPLES=1`).toEqual(comparable(publishedRequest));
      if (received && typeof received === 'object' && !Array.isArray(received) && !route.rawResponse) {
        expect(Object.keys(example.response as object).sort(), `${op}: the published answer's fields`).toEqual(Object.keys(received).sort());
      }
    }
    await step.then?.(received);
  }, 180_000);
});
