import { createPublicHttpHandler } from '../../shared/http.js';
import { docsOperations, docsRoutes } from '../../shared/docs/routes.js';

export const handler = createPublicHttpHandler('docs', [docsRoutes], docsOperations);
