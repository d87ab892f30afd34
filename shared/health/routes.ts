import * as z from 'zod';
import { defineRoutes } from '../platform/api/route.js';
import { isoDate } from '../platform/api/schemas.js';

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
    tags,
    response: z.object({ status: z.literal('ok'), version: z.string(), stage: z.string(), timestamp: isoDate }),
  },
  {
    operationId: 'healthDetailed',
    method: 'GET',
    path: '/api/v1/health/detailed',
    group: 'health',
    permission: 'health:read',
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
    summary: 'The dependency checks alone; 503 when a required one is down',
    tags,
    response: z.object({ status: z.enum(['healthy', 'degraded', 'unhealthy']), dependencies: z.array(dependency) }),
  },
]);
