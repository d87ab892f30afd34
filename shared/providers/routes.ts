import * as z from 'zod';
import * as s from './model.js';
import { defineRoutes } from '../platform/api/route.js';
import { pageOf } from '../platform/api/schemas.js';
import type { Operations } from '../platform/api/types.js';
import { requirePrincipal } from '../platform/api/types.js';
import { pageRequest } from '../platform/api/pagination.js';
import { listProviders, providerView, registerProvider, requireProvider, unregisterProvider } from './service.js';
import { checkProviderHealth, providerUsage, providersAnalytics, providersStatus, recommendProviders } from './status.js';


const tags = ['Provider Management'];

export const providersRoutes = defineRoutes([
  {
    operationId: 'listProviders',
    method: 'GET',
    path: '/api/v1/providers',
    group: 'providers',
    permission: 'providers:read',
    summary: 'List providers by routing priority (API keys masked)',
    description: "A cli provider's `settings` (command, arguments, inherited variables) are shown to provider managers only (`{}` for others).",
    tags,
    query: s.listProvidersQuery,
    response: pageOf(s.providerView),
  },
  {
    operationId: 'providersStatus',
    method: 'GET',
    path: '/api/v1/providers/status',
    group: 'providers',
    permission: 'providers:read',
    summary: 'Health of every provider: circuit-breaker state, last live check, success rate and latency over the last 24 hours',
    description: "The last check's `error_message` is shown to provider managers only (null for others).",
    tags,
    response: s.statusView,
  },
  {
    operationId: 'providersAnalytics',
    method: 'GET',
    path: '/api/v1/providers/analytics',
    group: 'providers',
    permission: 'providers:read',
    summary: 'Cross-provider totals, per-provider figures and rankings from the stored usage counters',
    tags,
    query: s.daysQuery(30, 90),
    response: s.analyticsView,
  },
  {
    operationId: 'recommendProviders',
    method: 'POST',
    path: '/api/v1/providers/recommendations',
    group: 'providers',
    permission: 'providers:read',
    summary: 'Rank providers for a piece of work against cost, latency and success-rate constraints',
    description:
      'Each score is broken down into observed success rate, observed latency and the cost at the expected tokens. ' +
      'Providers with no history get the stated priors (see `basis.priors`).',
    tags,
    body: s.recommendationBody,
    response: s.recommendationsView,
    maxBodyBytes: 8 * 1024,
    resourceType: 'provider',
  },
  {
    operationId: 'registerProvider',
    method: 'POST',
    path: '/api/v1/providers/{provider_id}/register',
    group: 'providers',
    permission: 'providers:manage',
    summary: 'Register a provider (anthropic, openai-compatible, bedrock, cli, local)',
    description:
      'The API key goes to the secret store and is never returned. `cli` providers need CLI_PROVIDER_ENABLED=true on the deployment. ' +
      '409 when the id is taken.',
    tags,
    params: s.providerIdParams,
    body: s.registerBody,
    response: s.providerView,
    status: 201,
    maxBodyBytes: 32 * 1024,
    resourceType: 'provider',
    resourceIdParam: 'provider_id',
  },
  {
    operationId: 'getProvider',
    method: 'GET',
    path: '/api/v1/providers/{provider_id}',
    group: 'providers',
    permission: 'providers:read',
    summary: 'One provider (API key masked)',
    tags,
    params: s.providerIdParams,
    response: s.providerView,
  },
  {
    operationId: 'unregisterProvider',
    method: 'DELETE',
    path: '/api/v1/providers/{provider_id}',
    group: 'providers',
    permission: 'providers:manage',
    summary: 'Unregister a provider and delete its API key (its usage history stays)',
    tags,
    params: s.providerIdParams,
    response: z.object({ provider_id: z.string(), deleted: z.literal(true) }),
    resourceType: 'provider',
    resourceIdParam: 'provider_id',
  },
  {
    operationId: 'providerHealth',
    method: 'GET',
    path: '/api/v1/providers/{provider_id}/health',
    group: 'providers',
    permission: 'providers:read',
    summary: 'A live check of the provider with its latency, and its circuit-breaker state',
    description:
      'At most one live check per provider every 10 s: within that interval the last check is answered (`cached: true`), or 429 when there is none. ' +
      "The target's error message is shown to provider managers only (others get `message: null`). A cli provider's check (it starts a process) is for provider managers only (403).",
    tags,
    errors: [429],
    params: s.providerIdParams,
    response: s.healthView,
  },
  {
    operationId: 'providerUsage',
    method: 'GET',
    path: '/api/v1/providers/{provider_id}/usage',
    group: 'providers',
    permission: 'providers:read',
    summary: 'Requests, tokens, cost, latency and errors per UTC day (`?days=`, default 7)',
    tags,
    params: s.providerIdParams,
    query: s.daysQuery(7, 90),
    response: s.usageView,
  },
]);

export const providersOperations: Operations<typeof providersRoutes> = {
  async listProviders(req) {
    const { startKey, respond } = await pageRequest(req, 'providers', req.query.type ?? '');
    const page = await listProviders(req.deps, req.query.limit, startKey, req.query.type);
    return { data: respond({ items: page.items.map((p) => providerView(p, requirePrincipal(req))), lastKey: page.lastKey }) };
  },

  async providersStatus(req) {
    return { data: await providersStatus(req.deps, requirePrincipal(req)) };
  },

  async providersAnalytics(req) {
    return { data: await providersAnalytics(req.deps, req.query.days) };
  },

  async recommendProviders(req) {
    return { data: await recommendProviders(req.deps, req.body), message: 'Providers ranked', status: 200 };
  },

  async registerProvider(req) {
    req.audit.details = { type: req.body.type };
    const record = await registerProvider(req.deps, requirePrincipal(req), req.params.provider_id, req.body);
    return { data: providerView(record, requirePrincipal(req)), message: 'Provider registered', status: 201 };
  },

  async getProvider(req) {
    return { data: providerView(await requireProvider(req.deps, req.params.provider_id), requirePrincipal(req)) };
  },

  async unregisterProvider(req) {
    await unregisterProvider(req.deps, req.params.provider_id);
    return { data: { provider_id: req.params.provider_id, deleted: true as const }, message: 'Provider unregistered' };
  },

  async providerHealth(req) {
    return { data: await checkProviderHealth(req.deps, requirePrincipal(req), req.params.provider_id) };
  },

  async providerUsage(req) {
    return { data: await providerUsage(req.deps, req.params.provider_id, req.query.days) };
  },
};
