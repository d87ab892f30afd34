import { createHttpHandler } from '../../shared/http.js';
import { resourcesOperations, resourcesRoutes } from '../../shared/resources/routes.js';

export const handler = createHttpHandler('resources', [resourcesRoutes], resourcesOperations);
