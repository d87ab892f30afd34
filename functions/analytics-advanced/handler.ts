import { createHttpHandler } from '../../shared/http.js';
import { advancedAnalyticsOperations, advancedAnalyticsRoutes } from '../../shared/analytics/advanced-routes.js';

export const handler = createHttpHandler('analytics-advanced', [advancedAnalyticsRoutes], advancedAnalyticsOperations);
