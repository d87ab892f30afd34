import { createHttpHandler } from '../../shared/http.js';
import { providersOperations, providersRoutes } from '../../shared/providers/routes.js';

export const handler = createHttpHandler('providers', [providersRoutes], providersOperations);
