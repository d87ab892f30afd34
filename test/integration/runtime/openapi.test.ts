import { describe, expect, it } from 'vitest';
import { ROUTES } from '../../../shared/routes.js';
import { documentPath } from '../../../shared/platform/api/openapi.js';
import { Client } from '../auth/fixtures.js';

/**
 * `/openapi.json` as served: an OpenAPI 3.1 document with every route of the route table (aliases
 * included), each operation with responses and a security entry; `/docs` serves Swagger UI from the
 * runtime itself, no CDN.
 */

const client = new Client();
type Json = Record<string, any>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];

function resolveRef(doc: Json, ref: string): unknown {
  expect(ref.startsWith('#/'), ref).toBe(true);
  return ref
    .slice(2)
    .split('/')
    .reduce<any>((node, part) => node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
}

function collectRefs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => collectRefs(n, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else collectRefs(v, out);
    }
  }
  return out;
}

describe('/openapi.json', () => {
  let doc: Json;

  it('is an OpenAPI 3.1 document with info, servers and the bearer scheme', async () => {
    const res = await client.call('GET', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    doc = res.body;
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(doc.components.securitySchemes.bearerAuth).toEqual({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(Object.keys(doc).every((k) => ['openapi', 'info', 'jsonSchemaDialect', 'servers', 'paths', 'webhooks', 'components', 'security', 'tags', 'externalDocs'].includes(k) || k.startsWith('x-'))).toBe(true);
  });

  it('has every route of the route table, aliases included, with a unique operationId', () => {
    const ids = new Set<string>();
    for (const route of ROUTES) {
      for (const path of [route.path, ...(route.aliases ?? [])]) {
        const op = doc.paths[documentPath(path)]?.[route.method.toLowerCase()];
        expect(op, `${route.method} ${path}`).toBeDefined();
        expect(ids.has(op.operationId), op.operationId).toBe(false);
        ids.add(op.operationId);
      }
    }
    const documented = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item as Json).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`));
    const table = ROUTES.flatMap((r) => [r.path, ...(r.aliases ?? [])].map((p) => `${r.method} ${documentPath(p)}`));
    expect(documented.sort()).toEqual(table.sort());
  });

  it('gives every operation responses, a security entry and its path parameters', () => {
    for (const route of ROUTES) {
      for (const path of [route.path, ...(route.aliases ?? [])]) {
        const op = doc.paths[documentPath(path)][route.method.toLowerCase()];
        const where = `${route.method} ${path}`;
        expect(Object.keys(op.responses).length, where).toBeGreaterThan(0);
        expect(Object.keys(op.responses).every((code) => /^[1-5]\d\d$/.test(code)), where).toBe(true);
        for (const response of Object.values(op.responses) as Json[]) expect(typeof response.description, where).toBe('string');
        expect(op.responses[String(route.status ?? 200)], where).toBeDefined();
        expect(op.security, where).toEqual(route.permission ? [{ bearerAuth: [] }] : []);
        if (route.permission) expect(Object.keys(op.responses), where).toEqual(expect.arrayContaining(['401', '403']));
        const templated = [...path.matchAll(/\{([^}+]+)\+?\}/g)].map((m) => m[1]).sort();
        const declared = (op.parameters ?? []).filter((p: Json) => p.in === 'path');
        expect(declared.map((p: Json) => p.name).sort(), where).toEqual(templated);
        expect(declared.every((p: Json) => p.required === true), where).toBe(true);
        for (const p of op.parameters ?? []) expect(['path', 'query', 'header', 'cookie'], where).toContain(p.in);
        if (route.body) expect(op.requestBody?.content?.['application/json']?.schema, where).toBeDefined();
        if (route.acceptsForm) expect(op.requestBody.content['application/x-www-form-urlencoded'], where).toBeDefined();
      }
    }
  });

  it('describes every parameter and every tag, and names its license', () => {
    expect(doc.info.license).toMatchObject({ name: expect.any(String) });
    const tags = new Map((doc.tags as Json[]).map((t) => [t.name, t.description]));
    for (const [path, item] of Object.entries(doc.paths) as [string, Json][]) {
      expect(path, 'an OpenAPI template, not API Gateway syntax').not.toMatch(/\+\}/);
      for (const [method, op] of Object.entries(item)) {
        for (const p of op.parameters ?? []) expect(p.description, `${method} ${path} ${p.in} ${p.name}`).toEqual(expect.any(String));
        for (const tag of op.tags) expect(tags.get(tag), `tag ${tag}`).toEqual(expect.any(String));
      }
    }
  });

  it('publishes the task body as a union on `type`, each member with its payload schema', () => {
    for (const path of ['/api/v1/tasks', '/api/v1/providers/execute']) {
      const body = doc.paths[path].post.requestBody.content['application/json'].schema;
      expect(body.discriminator.propertyName, path).toBe('type');
      const members = (body.oneOf as Json[]).map((m) => resolveRef(doc, m.$ref) as Json);
      const types = members.map((m) => m.properties.type.const);
      expect(new Set(types).size, path).toBe(types.length);
      expect(types).toEqual(expect.arrayContaining(['pr_review', 'bug_fix', 'code_analysis']));
      const prReview = members.find((m) => m.properties.type.const === 'pr_review')!;
      expect(prReview.properties.payload.required).toEqual(expect.arrayContaining(['repository', 'title', 'diff']));
      expect(prReview.properties.payload.additionalProperties).toBe(false);
    }
  });

  it('declares raw answers as what they are', () => {
    expect(Object.keys(doc.paths['/.well-known/jwks.json'].get.responses['200'].content)).toEqual(['application/json']);
    expect(doc.paths['/.well-known/jwks.json'].get.responses['200'].content['application/json'].schema.required).toEqual(['keys']);
    expect(Object.keys(doc.paths['/docs'].get.responses['200'].content)).toEqual(['text/html']);
    expect(doc.paths['/docs/{proxy}'].get.responses['200'].content).toHaveProperty(['text/css']);
    expect(doc.paths['/openapi.json'].get.responses['200'].content['application/json'].schema.required).toEqual(expect.arrayContaining(['openapi', 'info', 'paths']));
  });

  it('has only references that resolve', () => {
    const refs = collectRefs(doc);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(resolveRef(doc, ref), ref).toBeDefined();
  });

  it('documents the error format and strict request bodies', () => {
    expect(doc.components.schemas.Error.required).toEqual(['detail', 'error', 'request_id', 'timestamp']);
    const login = doc.paths['/auth/login'].post.requestBody.content['application/json'].schema;
    expect(login.additionalProperties).toBe(false);
    expect(login.required).toEqual(['username', 'password']);
  });
});

describe('/docs', () => {
  it('serves Swagger UI whose scripts and styles all come from this server', async () => {
    const res = await client.call('GET', '/docs');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const html = res.text;
    expect(html).toContain('id="swagger-ui"');
    expect(html).not.toMatch(/(src|href)=["'](https?:)?\/\//);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(assets).toEqual(expect.arrayContaining(['/docs/swagger-ui.css', '/docs/swagger-ui-bundle.js', '/docs/init.js']));
    for (const asset of assets) {
      const a = await client.call('GET', asset);
      expect(a.status, asset).toBe(200);
      expect(a.text.length, asset).toBeGreaterThan(0);
      if (asset.endsWith('.js')) expect(a.headers['content-type'], asset).toMatch(/javascript/);
      if (asset.endsWith('.css')) expect(a.headers['content-type'], asset).toMatch(/text\/css/);
    }
    const init = await client.call('GET', '/docs/init.js');
    expect(init.text).toContain("url: '/openapi.json'");
    expect((await client.call('GET', '/docs/swagger-ui-bundle.js')).text.length).toBeGreaterThan(500_000);
  });

  it('answers 404 for files that are not Swagger UI assets', async () => {
    const inherited = ['/docs/constructor', '/docs/toString', '/docs/__proto__', '/docs/hasOwnProperty'];
    for (const path of ['/docs/package.json', '/docs/../package.json', '/docs/%2e%2e%2fpackage.json', '/docs/nope.js', ...inherited]) {
      const res = await client.call('GET', path);
      expect(res.status, path).toBe(404);
    }
  });
});
