import { afterAll, describe, expect, it } from 'vitest';
import { Template } from 'aws-cdk-lib/assertions';
import { ROUTES } from '../../shared/routes.js';
import { routeKeyOf } from '../../shared/platform/api/route.js';
import { apiRoutes, DOCS_ROUTES, routedGroups } from '../../lib/routes.js';
import { buildStack, FAKE_ROUTES, removeOutdirs } from './helpers.js';

afterAll(removeOutdirs);

describe('route table → API Gateway routes', () => {
  it('creates one route per (method, path) and per alias, plus the docs routes, deduplicated', () => {
    const keys = apiRoutes(FAKE_ROUTES).map((r) => r.routeKey);
    expect(keys).toContain('POST /auth/login');
    expect(keys).toContain('POST /api/v1/auth/login');
    expect(keys).toContain('GET /docs/{proxy+}');
    expect(keys.filter((k) => k === 'GET /openapi.json')).toHaveLength(1);
    expect(new Set(keys).size).toBe(keys.length);
    const expected = FAKE_ROUTES.reduce((n, r) => n + 1 + (r.aliases?.length ?? 0), 0) + DOCS_ROUTES.length - 1;
    expect(keys).toHaveLength(expected);
  });

  it('rejects a route key claimed by two groups', () => {
    expect(() =>
      apiRoutes([...FAKE_ROUTES, { ...FAKE_ROUTES[0], operationId: 'dup', group: 'tasks' }]),
    ).toThrow(/claimed by groups/);
  });

  it('gives a function only to groups that own a route', () => {
    const groups = routedGroups(apiRoutes(FAKE_ROUTES));
    expect(groups).toEqual(['tasks', 'workflows', 'providers', 'plugins', 'monitoring', 'auth', 'health', 'docs']);
  });
});

describe('stack built from the real ROUTES', () => {
  const { stack } = buildStack({ routes: ROUTES });
  const template = Template.fromStack(stack);
  const httpApiId = stack.resolve(stack.httpApi.api.apiId);
  const routeKeys = Object.values(template.findResources('AWS::ApiGatewayV2::Route'))
    .filter((r) => JSON.stringify(r.Properties.ApiId) === JSON.stringify(httpApiId))
    .map((r) => r.Properties.RouteKey as string);

  it('has a route for every entry of ROUTES and each of its aliases', () => {
    expect(ROUTES.length).toBeGreaterThan(0);
    for (const route of ROUTES) {
      for (const path of [route.path, ...(route.aliases ?? [])]) {
        expect(routeKeys, `${route.operationId}: ${path}`).toContain(routeKeyOf(route.method, path));
      }
    }
    for (const { method, path } of DOCS_ROUTES) expect(routeKeys).toContain(routeKeyOf(method, path));
    expect(new Set(routeKeys).size).toBe(routeKeys.length);
  });

  it('has a HEAD route for each path of a GET route marked `head`, and for no other', () => {
    const expected = ROUTES.filter((r) => r.head && r.method === 'GET').flatMap((r) => [r.path, ...(r.aliases ?? [])].map((p) => `HEAD ${p}`));
    expect(expected).toContain('HEAD /api/v1/health');
    expect(routeKeys.filter((k) => k.startsWith('HEAD ')).sort()).toEqual(expected.sort());
  });

  it('integrates every route with the Lambda of its group', () => {
    const integrations = template.findResources('AWS::ApiGatewayV2::Integration');
    const functions = template.findResources('AWS::Lambda::Function');
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).filter(
      (r) => JSON.stringify(r.Properties.ApiId) === JSON.stringify(httpApiId),
    );
    const byKey = new Map(apiRoutes(ROUTES).map((r) => [r.routeKey, r.group]));
    for (const route of routes) {
      const integrationId = (route.Properties.Target['Fn::Join'][1][1] as { Ref: string }).Ref;
      const fnId = integrations[integrationId].Properties.IntegrationUri['Fn::GetAtt'][0] as string;
      const group = byKey.get(route.Properties.RouteKey);
      expect(functions[fnId].Properties.Description).toBe(`Supervisor dev: ${group} API`);
    }
  });
});
