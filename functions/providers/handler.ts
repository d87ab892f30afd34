import { createHttpHandler } from '../../shared/platform/api/http-handler.js';
import type { Operations } from '../../shared/platform/api/types.js';
import { requirePrincipal } from '../../shared/platform/api/types.js';
import { providersRoutes } from '../../shared/providers/routes.js';
import { decodeCursor, encodeCursor } from '../../shared/platform/api/pagination.js';
import { listProviders, providerView, registerProvider, requireProvider, unregisterProvider } from '../../shared/providers/service.js';
import { checkProviderHealth, providerUsage, providersAnalytics, providersStatus, recommendProviders } from '../../shared/providers/status.js';

const operations: Operations<typeof providersRoutes> = {
  async listProviders(req) {
    const secret = await req.deps.appSecret();
    const scope = `providers:${req.query.type ?? ''}`;
    const page = await listProviders(req.deps, req.query.limit, decodeCursor(req.query.cursor, scope, secret), req.query.type);
    return { data: { items: page.items.map(providerView), next_cursor: encodeCursor(page.lastKey, scope, secret) } };
  },

  async providersStatus(req) {
    return { data: await providersStatus(req.deps) };
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
    return { data: providerView(record), message: 'Provider registered', status: 201 };
  },

  async getProvider(req) {
    return { data: providerView(await requireProvider(req.deps, req.params.provider_id)) };
  },

  async unregisterProvider(req) {
    await unregisterProvider(req.deps, req.params.provider_id);
    return { data: { provider_id: req.params.provider_id, deleted: true as const }, message: 'Provider unregistered' };
  },

  async providerHealth(req) {
    return { data: await checkProviderHealth(req.deps, req.params.provider_id) };
  },

  async providerUsage(req) {
    return { data: await providerUsage(req.deps, req.params.provider_id, req.query.days) };
  },
};

export const handler = createHttpHandler('providers', [providersRoutes], operations);
