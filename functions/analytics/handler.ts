import { createHttpHandler } from '../../shared/http.js';
import { analyticsOperations, analyticsRoutes } from '../../shared/analytics/routes.js';

export const handler = createHttpHandler('analytics', [analyticsRoutes], analyticsOperations);
