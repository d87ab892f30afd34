import { defineRoutes } from '../platform/api/route.js';

const tags = ['Documentation'];

export const docsRoutes = defineRoutes([
  { operationId: 'openapi', method: 'GET', path: '/openapi.json', group: 'docs', permission: null, summary: 'This OpenAPI 3.1 document', tags },
  { operationId: 'swaggerUi', method: 'GET', path: '/docs', group: 'docs', permission: null, summary: 'Swagger UI', tags },
  { operationId: 'swaggerAsset', method: 'GET', path: '/docs/{proxy+}', group: 'docs', permission: null, summary: 'Swagger UI assets', tags },
]);
