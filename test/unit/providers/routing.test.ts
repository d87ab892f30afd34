import { describe, expect, it } from 'vitest';
import { routingOrder } from '../../../shared/providers/routing.js';
import type { ProviderRecord } from '../../../shared/providers/types.js';
import { Router } from '../../../local/router.js';
import { ROUTES } from '../../../shared/routes.js';

function p(provider_id: string, priority: number, over: Partial<ProviderRecord> = {}): ProviderRecord {
  return {
    provider_id,
    type: 'openai',
    name: provider_id,
    model: 'm',
    pricing: { input_per_million: 0, output_per_million: 0 },
    capabilities: [],
    priority,
    enabled: true,
    created_by: 'u',
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
    ...over,
  };
}

describe('routing order', () => {
  it('orders enabled providers by priority then id, filtering by capability (none declared = general)', () => {
    const list = [p('b', 10), p('a', 10), p('c', 5, { capabilities: ['bug_fix'] }), p('off', 1, { enabled: false })];
    expect(routingOrder(list).map((x) => x.provider_id)).toEqual(['c', 'a', 'b']);
    expect(routingOrder(list, 'testing').map((x) => x.provider_id)).toEqual(['a', 'b']);
  });

  it('keeps the local provider only while no real provider ranks before it', () => {
    const local = p('local', 500, { type: 'local' });
    expect(routingOrder([local]).map((x) => x.provider_id)).toEqual(['local']);
    expect(routingOrder([local, p('real', 100)]).map((x) => x.provider_id)).toEqual(['real']);
    expect(routingOrder([local, p('later', 900)]).map((x) => x.provider_id)).toEqual(['local', 'later']);
    expect(routingOrder([local, p('real', 100, { enabled: false })]).map((x) => x.provider_id)).toEqual(['local']);
  });
});

describe('provider routes: static segments win over {provider_id}', () => {
  const router = new Router(ROUTES);
  it.each([
    ['GET', '/api/v1/providers/status', 'providersStatus'],
    ['GET', '/api/v1/providers/analytics', 'providersAnalytics'],
    ['POST', '/api/v1/providers/recommendations', 'recommendProviders'],
    ['GET', '/api/v1/providers/some-id', 'getProvider'],
    ['DELETE', '/api/v1/providers/some-id', 'unregisterProvider'],
    ['GET', '/api/v1/providers/some-id/health', 'providerHealth'],
    ['GET', '/api/v1/providers/some-id/usage', 'providerUsage'],
    ['POST', '/api/v1/providers/some-id/register', 'registerProvider'],
  ])('%s %s → %s', (method, path, operationId) => {
    expect(router.match(method, path)?.route.operationId).toBe(operationId);
  });

  it('POST /providers/execute(/batch) never reaches a providers-group route', () => {
    for (const path of ['/api/v1/providers/execute', '/api/v1/providers/execute/batch']) {
      const match = router.match('POST', path);
      expect(match?.route.group ?? 'unrouted', path).not.toBe('providers');
      if (match) expect(match.route.path).toBe(path);
    }
  });
});
