import { createHttpHandler } from '../../shared/http.js';
import { monitoringOperations, monitoringRoutes } from '../../shared/monitoring/routes.js';

export const handler = createHttpHandler('monitoring', [monitoringRoutes], monitoringOperations);
