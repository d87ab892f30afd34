import * as z from 'zod';
import { defineRoutes } from '../platform/api/route.js';
import { pageOf } from '../platform/api/schemas.js';
import * as s from './model.js';
import { requirePrincipal, type Operations } from '../platform/api/types.js';
import { pageRequest } from '../platform/api/pagination.js';
import { agentView, createAgent, deleteAgent, getAgent, listAgents, quotaStatus, updateAgent } from './service.js';

const tags = ['Agent Management'];

/** Agents (execution identities with quotas) are served by the `tasks` function. */
export const agentRoutes = defineRoutes([
  {
    operationId: 'listAgents',
    method: 'GET',
    path: '/api/v1/agents',
    group: 'tasks',
    permission: 'agents:read',
    summary: 'List agents',
    tags,
    query: s.listAgentsQuery,
    response: pageOf(s.agentView),
  },
  {
    operationId: 'getAgentQuotaStatus',
    method: 'GET',
    path: '/api/v1/agents/quota/status',
    group: 'tasks',
    permission: 'agents:read',
    summary: 'Quota of every agent in its current window: used, limit, remaining, resets_at, available, last_used_at; and totals',
    tags,
    response: s.quotaStatusView,
  },
  {
    operationId: 'getAgent',
    method: 'GET',
    path: '/api/v1/agents/{agent_id}',
    group: 'tasks',
    permission: 'agents:read',
    summary: 'Get an agent',
    tags,
    params: s.agentIdParams,
    response: s.agentView,
  },
  {
    operationId: 'createAgent',
    method: 'POST',
    path: '/api/v1/agents',
    group: 'tasks',
    permission: 'agents:manage',
    summary: 'Create an agent on a provider, with its quota and concurrency limit (admin)',
    tags,
    body: s.createAgentBody,
    response: s.agentView,
    status: 201,
    maxBodyBytes: 16 * 1024,
    resourceType: 'agent',
  },
  {
    operationId: 'updateAgent',
    method: 'PUT',
    path: '/api/v1/agents/{agent_id}',
    group: 'tasks',
    permission: 'agents:manage',
    summary: 'Change an agent (admin); null clears description, model or api_key',
    tags,
    params: s.agentIdParams,
    body: s.updateAgentBody,
    response: s.agentView,
    maxBodyBytes: 16 * 1024,
    resourceType: 'agent',
    resourceIdParam: 'agent_id',
  },
  {
    operationId: 'deleteAgent',
    method: 'DELETE',
    path: '/api/v1/agents/{agent_id}',
    group: 'tasks',
    permission: 'agents:manage',
    summary: 'Delete an agent (admin); tasks that named it fail with `no_agent` when they next run',
    tags,
    params: s.agentIdParams,
    response: z.object({ agent_id: z.string(), deleted: z.literal(true) }),
    resourceType: 'agent',
    resourceIdParam: 'agent_id',
  },
]);

export const agentOperations: Operations<typeof agentRoutes> = {
  async listAgents(req) {
    const { limit, cursor: _cursor, ...filter } = req.query;
    const { startKey, respond } = await pageRequest(req, 'agents', filter);
    return { data: respond(await listAgents(req.deps, filter, limit, startKey)) };
  },

  async getAgentQuotaStatus(req) {
    return { data: await quotaStatus(req.deps) };
  },

  async getAgent(req) {
    return { data: agentView(await getAgent(req.deps, req.params.agent_id)) };
  },

  async createAgent(req) {
    const agent = await createAgent(req.deps, requirePrincipal(req), req.body);
    req.audit.resourceId = agent.agent_id;
    return { data: agentView(agent), message: 'Agent created', status: 201 };
  },

  async updateAgent(req) {
    return { data: agentView(await updateAgent(req.deps, req.params.agent_id, req.body)), message: 'Agent updated' };
  },

  async deleteAgent(req) {
    await deleteAgent(req.deps, req.params.agent_id);
    return { data: { agent_id: req.params.agent_id, deleted: true as const }, message: 'Agent deleted' };
  },
};
