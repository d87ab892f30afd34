import * as z from 'zod';
import { defineRoutes } from '../platform/api/route.js';
import { isoDate } from '../platform/api/schemas.js';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { ApiRequest, Operations } from '../platform/api/types.js';
import { overallStatus, runCheck, sweeperHealth } from './checks.js';
import { sweeperState } from './background.js';
import { SWEEPER_INTERVAL_MINUTES } from '../platform/infra.js';
import { DomainError } from '../platform/errors.js';
import { VERSION } from '../platform/version.js';
import { eventBus } from '../platform/use/events.js';
import { taskQueue } from '../platform/use/queue.js';
import { scheduleService } from '../platform/use/scheduler.js';
import { workflowRunner } from '../platform/use/workflows.js';


const tags = ['Health & System'];
const dependency = z.object({
  name: z.string(),
  required: z.boolean(),
  status: z.enum(['healthy', 'degraded', 'unhealthy']),
  latency_ms: z.number(),
  error: z.string().optional(),
});
const detailed = z.object({
  status: z.enum(['healthy', 'degraded', 'unhealthy']),
  version: z.string(),
  stage: z.string(),
  uptime_seconds: z.number(),
  checked_at: isoDate,
  dependencies: z.array(dependency),
});

export const healthRoutes = defineRoutes([
  {
    operationId: 'health',
    method: 'GET',
    path: '/api/v1/health',
    group: 'health',
    permission: null,
    summary: 'Liveness: the function answers (no dependency is called)',
    description: 'Liveness: the function answers (no dependency is called). HEAD answers the same without a body.',
    tags,
    head: true,
    response: z.object({ status: z.literal('ok'), version: z.string(), stage: z.string(), timestamp: isoDate }),
  },
  {
    operationId: 'healthDetailed',
    method: 'GET',
    path: '/api/v1/health/detailed',
    group: 'health',
    permission: 'health:read',
    // During a table outage the token is checked on its signature alone, so that the breakdown is seen.
    authWhenStoreDown: 'token-only',
    summary: 'Each dependency checked live with its latency; 503 when a required one is down',
    tags,
    response: detailed,
  },
  {
    operationId: 'healthDependencies',
    method: 'GET',
    path: '/api/v1/health/dependencies',
    group: 'health',
    permission: 'health:read',
    authWhenStoreDown: 'token-only',
    summary: 'The dependency checks alone; 503 when a required one is down',
    tags,
    response: z.object({ status: z.enum(['healthy', 'degraded', 'unhealthy']), dependencies: z.array(dependency) }),
  },
]);

const startedAt = Date.now();

/** The sweeper counts as stopped after 5 of its intervals on AWS without a finished sweep. */
const SWEEPER_STALE_SECONDS = 5 * SWEEPER_INTERVAL_MINUTES * 60;

/** The sweeper's recorded runs and failures (written by the sweeper and the failure-queue consumer). */
async function checkSweeper(req: ApiRequest) {
  const started = performance.now();
  let facts: Awaited<ReturnType<typeof sweeperState>>;
  try {
    facts = await sweeperState(req.deps);
  } catch {
    // The table is down: the `table` check says so; the sweeper's state is then unknown.
    return sweeperHealth({ last_run_at: undefined }, new Date(), SWEEPER_STALE_SECONDS, performance.now() - started);
  }
  return sweeperHealth(facts, req.deps.clock.now(), SWEEPER_STALE_SECONDS, performance.now() - started);
}

async function checkAll(req: ApiRequest) {
  const { store } = req.deps;
  const results = await Promise.all([
    runCheck('table', true, async () => {
      await store.doc.send(new GetCommand({ TableName: store.table, Key: { pk: 'HEALTH', sk: 'PROBE' } }));
    }),
    runCheck('task_queue', true, () => taskQueue(req.deps).check()),
    runCheck('state_machine', false, () => workflowRunner(req.deps).check()),
    runCheck('scheduler', false, () => scheduleService(req.deps).check()),
    runCheck('event_bus', false, () => eventBus(req.deps).check()),
    checkSweeper(req),
  ]);
  // A store process this runtime supervises (local DynamoDB Local) says whether it is restarting.
  const table = results[0];
  if (table.status === 'unhealthy' && req.deps.storeProcessState) table.error = `${table.error} (${req.deps.storeProcessState()})`;
  const status = overallStatus(results);
  if (status === 'unhealthy') {
    const down = results.filter((r) => r.status === 'unhealthy');
    throw new DomainError(
      'unavailable',
      'dependency_unavailable',
      `Required dependencies are down: ${down.filter((r) => r.required).map((r) => r.name).join(', ')}`,
      down.map((r) => ({ path: r.name, message: `${r.required ? 'required' : 'optional'} dependency unhealthy: ${r.error}` })),
    );
  }
  return { status, results };
}

export const healthOperations: Operations<typeof healthRoutes> = {
  async health(req) {
    return {
      data: { status: 'ok' as const, version: VERSION, stage: req.deps.config.stage, timestamp: new Date().toISOString() },
      message: 'Service is alive',
    };
  },

  async healthDetailed(req) {
    const { status, results } = await checkAll(req);
    return {
      message: `Service is ${status}`,
      data: {
        status,
        version: VERSION,
        stage: req.deps.config.stage,
        uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
        checked_at: new Date().toISOString(),
        dependencies: results,
      },
    };
  },

  async healthDependencies(req) {
    const { status, results } = await checkAll(req);
    return { message: `Dependencies are ${status}`, data: { status, dependencies: results } };
  },
};
