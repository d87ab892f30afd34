import path from 'node:path';
import * as z from 'zod';
import { defineRoutes } from '../platform/api/route.js';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Operations } from '../platform/api/types.js';
import { buildOpenApi } from '../platform/api/openapi.js';
import { notFound } from '../platform/errors.js';
import { getConfig } from '../platform/config.js';


const tags = ['Documentation'];

/** The outline of an OpenAPI 3.1 document (its content is checked by Redocly in CI, not here). */
const openApiShape = z.looseObject({ openapi: z.string().regex(/^3\.1\.\d+$/), info: z.looseObject({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.unknown()) });

export const docsRoutes = defineRoutes([
  {
    operationId: 'openapi',
    method: 'GET',
    path: '/openapi.json',
    group: 'docs',
    permission: null,
    summary: 'This OpenAPI 3.1 document',
    tags,
    rawResponse: { contentTypes: ['application/json'], schema: openApiShape, description: 'The OpenAPI 3.1 document itself, not the envelope' },
  },
  {
    operationId: 'swaggerUi',
    method: 'GET',
    path: '/docs',
    group: 'docs',
    permission: null,
    summary: 'Swagger UI',
    tags,
    rawResponse: { contentTypes: ['text/html'], description: 'The Swagger UI page (HTML)' },
  },
  {
    operationId: 'swaggerAsset',
    method: 'GET',
    path: '/docs/{proxy+}',
    group: 'docs',
    permission: null,
    summary: 'Swagger UI assets',
    description: 'The scripts, style sheet and icons of the Swagger UI page, served from the swagger-ui-dist package.',
    tags,
    params: z.object({ proxy: z.string().describe('File name of the asset, e.g. `swagger-ui.css`') }),
    rawResponse: { contentTypes: ['application/javascript', 'text/css', 'image/png'], description: 'The asset' },
  },
]);

/** Swagger UI served from the swagger-ui-dist package (copied into the bundle on AWS): no CDN. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'application/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'application/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

function assetsDir(): string {
  const configured = getConfig().docsAssetsDir;
  if (configured) return configured;
  return path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <title>Supervisor API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css" />
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32" />
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>`;

const INIT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  // The token stays in the page's memory, not in localStorage (where any script on the origin reads it).
  persistAuthorization: false,
  // No third-party validator: the spec is not sent to validator.swagger.io.
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: 'StandaloneLayout',
});`;

const cache = new Map<string, Buffer>();

/** The document of the whole route table (imported late: the route table imports this file). */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  const { ROUTES, TAG_DESCRIPTIONS } = await import('../routes.js');
  const { EXAMPLES } = await import('./examples.js');
  return buildOpenApi(ROUTES, { tags: TAG_DESCRIPTIONS, examples: EXAMPLES });
}

export const docsOperations: Operations<typeof docsRoutes> = {
  async openapi() {
    return { raw: { contentType: 'application/json', body: JSON.stringify(await openApiDocument()) } };
  },
  async swaggerUi() {
    return {
      raw: { contentType: 'text/html; charset=utf-8', body: PAGE },
      headers: { 'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'" },
    };
  },
  async swaggerAsset(req) {
    const name = req.params.proxy ?? '';
    if (name === 'init.js') return { raw: { contentType: 'application/javascript; charset=utf-8', body: INIT } };
    // Own keys only: `constructor`, `toString`… are not assets.
    const type = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!type) throw notFound('Asset');
    let content = cache.get(name);
    if (!content) {
      content = await readFile(path.join(assetsDir(), name));
      cache.set(name, content);
    }
    const binary = type.startsWith('image/');
    return {
      raw: { contentType: type, body: binary ? content.toString('base64') : content.toString('utf8'), isBase64Encoded: binary },
      headers: { 'Cache-Control': 'public, max-age=86400' },
    };
  },
};
