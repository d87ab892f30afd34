import { defineRoutes } from '../platform/api/route.js';
import { requirePrincipal, type Operations } from '../platform/api/types.js';
import * as s from './model.js';
import {
  allocateForTask,
  allocationStatus,
  allocationView,
  listConflicts,
  monitoring,
  recommendations,
  releaseForTask,
  resolveConflict,
  resourceHealth,
  scalePool,
} from './service.js';
import * as z from 'zod';

const tags = ['Resource Management'];

/** The capacity ledger (`resources` function): pools, allocations, conflicts, history, scaling. */
export const resourcesRoutes = defineRoutes([
  {
    operationId: 'getResourceAllocationStatus',
    method: 'GET',
    path: '/api/v1/resources/allocation/status',
    group: 'resources',
    permission: 'resources:read',
    summary: 'Every pool: capacity, allocated, free, utilisation, waiting demand by priority and the allocations',
    description: 'Allocations list only tasks the caller may read; the pool totals count every allocation.',
    tags,
    response: s.allocationStatusView,
  },
  {
    operationId: 'allocateResources',
    method: 'POST',
    path: '/api/v1/resources/allocate',
    group: 'resources',
    permission: 'resources:manage',
    summary: 'Allocate resources to a task (201), or queue the request by priority with wait: true (202)',
    description:
      'Atomic against every pool touched: 409 `insufficient_capacity` names what is missing (also when a higher-priority request waits for it). Idempotent per task: a task that holds an allocation gets it back (200). Held until released, until the task ends or until its lease (the task timeout plus 60 s) expires.',
    tags,
    body: s.allocateBody,
    response: s.allocateView,
    status: 201,
    maxBodyBytes: 8 * 1024,
    resourceType: 'resource_allocation',
  },
  {
    operationId: 'releaseResources',
    method: 'POST',
    path: '/api/v1/resources/release',
    group: 'resources',
    permission: 'resources:manage',
    summary: "Release a task's allocation (or withdraw its waiting request); waiting requests are granted with what freed",
    tags,
    body: s.releaseBody,
    response: s.releaseView,
    maxBodyBytes: 8 * 1024,
    resourceType: 'resource_allocation',
  },
  {
    operationId: 'listResourceConflicts',
    method: 'GET',
    path: '/api/v1/resources/conflicts',
    group: 'resources',
    permission: 'resources:read',
    summary: 'Conflicts the ledger shows now: over-commitment, starvation, zombie allocations, contention',
    tags,
    response: z.object({ items: z.array(s.conflictView) }),
  },
  {
    operationId: 'resolveResourceConflict',
    method: 'POST',
    path: '/api/v1/resources/conflicts/{conflict_id}/resolve',
    group: 'resources',
    permission: 'resources:manage',
    summary: 'Carry out a strategy on a conflict and say what changed (404 unknown, 409 already resolved)',
    tags,
    params: s.conflictParams,
    body: s.resolveBody,
    response: s.resolutionView,
    maxBodyBytes: 4 * 1024,
    resourceType: 'resource_conflict',
    resourceIdParam: 'conflict_id',
  },
  {
    operationId: 'getResourceMonitoring',
    method: 'GET',
    path: '/api/v1/resources/monitoring',
    group: 'resources',
    permission: 'resources:read',
    summary: "Utilisation series of every pool from the ledger's history, with a short forecast or insufficient_data",
    tags,
    query: s.monitoringQuery,
    response: s.monitoringView,
  },
  {
    operationId: 'getResourceRecommendations',
    method: 'GET',
    path: '/api/v1/resources/optimization/recommendations',
    group: 'resources',
    permission: 'resources:read',
    summary: 'Scaling recommendations from 7 days of utilisation and waiting times, with their evidence',
    tags,
    response: s.recommendationsView,
  },
  {
    operationId: 'scaleResources',
    method: 'POST',
    path: '/api/v1/resources/scale',
    group: 'resources',
    permission: 'resources:manage',
    summary: "Change a pool's capacity (the worker obeys it); below what is held only with force",
    description: 'worker_concurrency also sets how many tasks the local worker runs at once. A scale-down below the allocations is a 409 unless force, which leaves an over-commitment conflict that drains.',
    tags,
    body: s.scaleBody,
    response: s.scaleView,
    maxBodyBytes: 4 * 1024,
    resourceType: 'resource_pool',
  },
  {
    operationId: 'getResourceHealth',
    method: 'GET',
    path: '/api/v1/resources/health',
    group: 'resources',
    permission: 'resources:read',
    summary: "The ledger's consistency (allocated equals the sum of live allocations), zombies and waiting demand",
    tags,
    response: s.resourceHealthView,
  },
]);

export const resourcesOperations: Operations<typeof resourcesRoutes> = {
  async getResourceAllocationStatus(req) {
    return { data: await allocationStatus(req.deps, requirePrincipal(req)) };
  },

  async allocateResources(req) {
    req.audit.resourceId = req.body.task_id;
    const out = await allocateForTask(req.deps, requirePrincipal(req), req.body);
    if (out.status === 'queued') {
      const w = out.waiter;
      return { data: { status: 'queued' as const, allocation: null, waiting: { task_id: w.task_id, amounts: w.amounts, priority: w.priority, since: w.since, position: out.position } }, message: 'Queued for capacity', status: 202 };
    }
    return { data: { status: 'allocated' as const, allocation: allocationView(out.allocation), waiting: null }, message: out.replayed ? 'Already allocated' : 'Allocated', status: out.replayed ? 200 : 201 };
  },

  async releaseResources(req) {
    req.audit.resourceId = req.body.task_id;
    return { data: await releaseForTask(req.deps, requirePrincipal(req), req.body.task_id), message: 'Released' };
  },

  async listResourceConflicts(req) {
    return { data: { items: await listConflicts(req.deps, requirePrincipal(req)) } };
  },

  async resolveResourceConflict(req) {
    return { data: await resolveConflict(req.deps, req.params.conflict_id, req.body.strategy), message: 'Conflict resolved' };
  },

  async getResourceMonitoring(req) {
    return { data: await monitoring(req.deps, req.query.time_range) };
  },

  async getResourceRecommendations(req) {
    return { data: await recommendations(req.deps) };
  },

  async scaleResources(req) {
    req.audit.resourceId = req.body.pool;
    return { data: await scalePool(req.deps, req.body), message: 'Scaled' };
  },

  async getResourceHealth(req) {
    return { data: await resourceHealth(req.deps) };
  },
};
