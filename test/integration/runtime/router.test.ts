import { describe, expect, it } from 'vitest';
import { Router } from '../../../local/router.js';
import type { RouteSpec } from '../../../shared/platform/api/route.js';
import { ROUTES } from '../../../shared/routes.js';

/** The local router matches as API Gateway's HTTP API does: static segments beat parameters, which beat greedy ones. */

const route = (method: RouteSpec['method'], path: string, aliases?: string[]): RouteSpec => ({
  operationId: `${method} ${path}`,
  method,
  path,
  aliases,
  group: 'tasks',
  permission: null,
  summary: path,
});

const TABLE: RouteSpec[] = [
  route('GET', '/api/v1/workflows/{workflow_id}'),
  route('GET', '/api/v1/workflows/health'),
  route('POST', '/api/v1/workflows/validate'),
  route('POST', '/api/v1/workflows/{workflow_id}/execute'),
  route('GET', '/api/v1/workflows/schedules/{schedule_id}'),
  route('GET', '/api/v1/workflows/{workflow_id}/executions/{execution_id}'),
  route('GET', '/plugins/{plugin_name}/health'),
  route('GET', '/plugins/health/all'),
  route('GET', '/plugins/metrics'),
  route('GET', '/plugins/{plugin_name}'),
  route('GET', '/api/v1/tasks/{task_id}'),
  route('GET', '/api/v1/tasks/stats/summary'),
  route('GET', '/api/v1/tasks/{task_id}/sessions'),
  route('GET', '/docs/{proxy+}'),
  route('GET', '/docs'),
  route('GET', '/docs/special'),
  route('POST', '/auth/login', ['/api/v1/auth/login']),
];

/** Every order of the table must give the same answers: specificity, not declaration order, decides. */
const orders = [TABLE, [...TABLE].reverse(), [...TABLE].sort((a, b) => a.path.localeCompare(b.path)), [...TABLE].sort((a, b) => b.path.length - a.path.length)];

describe.each(orders.map((o, i) => [i, o] as const))('Router (table order %i)', (_i, table) => {
  const router = new Router(table);
  const cases: [string, string, string | undefined, Record<string, string>][] = [
    ['GET', '/api/v1/workflows/health', 'GET /api/v1/workflows/health', {}],
    ['GET', '/api/v1/workflows/01JD0000000000000000000000', 'GET /api/v1/workflows/{workflow_id}', { workflow_id: '01JD0000000000000000000000' }],
    ['POST', '/api/v1/workflows/validate', 'POST /api/v1/workflows/validate', {}],
    ['POST', '/api/v1/workflows/validate/execute', 'POST /api/v1/workflows/{workflow_id}/execute', { workflow_id: 'validate' }],
    ['GET', '/api/v1/workflows/schedules/S1', 'GET /api/v1/workflows/schedules/{schedule_id}', { schedule_id: 'S1' }],
    ['GET', '/api/v1/workflows/W1/executions/E1', 'GET /api/v1/workflows/{workflow_id}/executions/{execution_id}', { workflow_id: 'W1', execution_id: 'E1' }],
    ['GET', '/plugins/health/all', 'GET /plugins/health/all', {}],
    ['GET', '/plugins/health/health', 'GET /plugins/{plugin_name}/health', { plugin_name: 'health' }],
    ['GET', '/plugins/linter/health', 'GET /plugins/{plugin_name}/health', { plugin_name: 'linter' }],
    ['GET', '/plugins/metrics', 'GET /plugins/metrics', {}],
    ['GET', '/plugins/health', 'GET /plugins/{plugin_name}', { plugin_name: 'health' }],
    ['GET', '/api/v1/tasks/stats/summary', 'GET /api/v1/tasks/stats/summary', {}],
    ['GET', '/api/v1/tasks/stats', 'GET /api/v1/tasks/{task_id}', { task_id: 'stats' }],
    ['GET', '/api/v1/tasks/T1/sessions', 'GET /api/v1/tasks/{task_id}/sessions', { task_id: 'T1' }],
    ['GET', '/docs', 'GET /docs', {}],
    ['GET', '/docs/special', 'GET /docs/special', {}],
    ['GET', '/docs/swagger-ui.css', 'GET /docs/{proxy+}', { proxy: 'swagger-ui.css' }],
    ['GET', '/docs/a/b/c.js', 'GET /docs/{proxy+}', { proxy: 'a/b/c.js' }],
    ['POST', '/api/v1/auth/login', 'POST /api/v1/auth/login', {}],
    ['GET', '/plugins/my%20plugin/health', 'GET /plugins/{plugin_name}/health', { plugin_name: 'my plugin' }],
  ];

  it.each(cases)('%s %s → %s', (method, path, routeKey, params) => {
    const match = router.match(method, path);
    expect(match?.routeKey).toBe(routeKey);
    expect(match?.pathParameters).toEqual(params);
  });

  it('finds nothing for unknown paths, wrong methods or a greedy route without a tail', () => {
    expect(router.match('GET', '/api/v1/nothing')).toBeUndefined();
    expect(router.match('DELETE', '/api/v1/workflows/health')).toBeUndefined();
    expect(router.match('GET', '/api/v1/tasks/T1/sessions/extra')).toBeUndefined();
    expect(router.match('GET', '/auth/login')).toBeUndefined();
  });

  it('lists the methods a path allows (CORS preflight)', () => {
    expect(router.allowedMethods('/api/v1/workflows/validate').sort()).toEqual(['GET', 'POST']);
    expect(router.allowedMethods('/nowhere')).toEqual([]);
  });
});

describe('the real route table in the router', () => {
  it('routes every path (and alias) of every route to that route', () => {
    const router = new Router(ROUTES);
    for (const r of ROUTES) {
      for (const path of [r.path, ...(r.aliases ?? [])]) {
        const concrete = path.replace(/\{[^}]+\+\}/g, 'x/y').replace(/\{[^}]+\}/g, '01JD0000000000000000000000');
        expect(router.match(r.method, concrete)?.route.operationId, `${r.method} ${path}`).toBe(r.operationId);
      }
    }
  });
});
