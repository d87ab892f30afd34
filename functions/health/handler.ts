import { createHttpHandler } from '../../shared/http.js';
import { healthOperations, healthRoutes } from '../../shared/health/routes.js';

export const handler = createHttpHandler('health', [healthRoutes], healthOperations);
