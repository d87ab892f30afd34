import { createHttpHandler } from '../../shared/http.js';
import { docsOperations, docsRoutes } from '../../shared/docs/routes.js';

export const handler = createHttpHandler('docs', [docsRoutes], docsOperations);
