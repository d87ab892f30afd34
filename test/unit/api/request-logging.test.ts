import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { defineRoutes } from '../../../shared/platform/api/route.js';
import type { Operations } from '../../../shared/platform/api/types.js';
import { createHttpHandler } from '../../../shared/http.js';
import { getConfig } from '../../../shared/platform/config.js';
import { logger } from '../../../shared/platform/logger.js';
import { installDeps, resetDeps } from '../../../shared/platform/runtime.js';
import { systemClock } from '../../../shared/platform/ports.js';
import { lambdaContext } from '../../../local/lambda-context.js';

/** Service code logs through the one global logger: during an HTTP request its lines carry the request's ids. */

const routes = defineRoutes([
  { operationId: 'logSomething', method: 'GET', path: '/api/v1/test/log', group: 'health', permission: null, summary: 'Logs (test route)' },
]);
const operations: Operations<typeof routes> = {
  async logSomething() {
    logger.error('inside the request');
    return { data: { ok: true } };
  },
};
const handler = createHttpHandler('health', [routes], operations);

const event = (requestId: string) =>
  ({
    version: '2.0',
    routeKey: 'GET /api/v1/test/log',
    rawPath: '/api/v1/test/log',
    rawQueryString: '',
    headers: {},
    isBase64Encoded: false,
    requestContext: { requestId, http: { method: 'GET', path: '/api/v1/test/log', sourceIp: '127.0.0.1' } },
  }) as unknown as APIGatewayProxyEventV2;

/** The logger's JSON lines, read off stdout and stderr (errors: the suite runs with LOG_LEVEL=ERROR). */
let lines: Record<string, unknown>[] = [];
beforeAll(() => {
  installDeps({ config: getConfig(), clock: systemClock } as never);
  const read = (chunk: string | Uint8Array) => {
    for (const line of String(chunk).split('\n')) {
      if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(read);
  vi.spyOn(process.stderr, 'write').mockImplementation(read);
});
afterAll(() => {
  vi.restoreAllMocks();
  resetDeps();
});
beforeEach(() => {
  lines = [];
});

describe('request logging', () => {
  it('puts the API request id and the Lambda request id on the global logger lines, and takes them off after', async () => {
    const context = lambdaContext('supervisor-health', 5_000);
    const res = await handler(event('api-req-1'), context);
    expect(res.statusCode).toBe(200);
    logger.error('between requests');
    const inside = lines.find((l) => l.message === 'inside the request');
    expect(inside).toMatchObject({ request_id: 'api-req-1', function_request_id: context.awsRequestId, function_name: 'supervisor-health' });
    const after = lines.find((l) => l.message === 'between requests');
    expect(after).toBeDefined();
    expect(after).not.toHaveProperty('request_id');
  });

  it('each request carries its own id', async () => {
    const res = await handler(event('api-req-2'), lambdaContext('supervisor-health', 5_000));
    expect(res.statusCode).toBe(200);
    expect(lines.find((l) => l.message === 'inside the request')).toMatchObject({ request_id: 'api-req-2' });
  });
});
