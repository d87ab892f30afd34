import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { createHttpHandler } from '../../shared/platform/api/http-handler.js';
import type { ApiRequest, Operations } from '../../shared/platform/api/types.js';
import { healthRoutes } from '../../shared/health/routes.js';
import { overallStatus, runCheck } from '../../shared/health/checks.js';
import { ApiError } from '../../shared/platform/api/errors.js';
import { VERSION } from '../../shared/platform/version.js';

const startedAt = Date.now();

async function checkAll(req: ApiRequest) {
  const { store, queue, workflows, scheduler, events } = req.deps;
  const results = await Promise.all([
    runCheck('table', true, async () => {
      await store.doc.send(new GetCommand({ TableName: store.table, Key: { pk: 'HEALTH', sk: 'PROBE' } }));
    }),
    runCheck('task_queue', true, () => queue.check()),
    runCheck('state_machine', false, () => workflows.check()),
    runCheck('scheduler', false, () => scheduler.check()),
    runCheck('event_bus', false, () => events.check()),
  ]);
  const status = overallStatus(results);
  if (status === 'unhealthy') {
    const down = results.filter((r) => r.status === 'unhealthy');
    throw new ApiError(
      503,
      'dependency_unavailable',
      `Required dependencies are down: ${down.filter((r) => r.required).map((r) => r.name).join(', ')}`,
      down.map((r) => ({ path: r.name, message: `${r.required ? 'required' : 'optional'} dependency unhealthy: ${r.error}` })),
    );
  }
  return { status, results };
}

const operations: Operations<typeof healthRoutes> = {
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

export const handler = createHttpHandler('health', [healthRoutes], operations);
