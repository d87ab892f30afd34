import { createHttpHandler } from '../../shared/http.js';
import { analyticsOperations, analyticsRoutes } from '../../shared/analytics/routes.js';
import { providerAnalyticsOperations, providerAnalyticsRoutes } from '../../shared/analytics/providers-routes.js';
import { insightOperations, insightRoutes } from '../../shared/analytics/insights-routes.js';

export const handler = createHttpHandler('analytics', [analyticsRoutes, providerAnalyticsRoutes, insightRoutes], {
  ...analyticsOperations,
  ...providerAnalyticsOperations,
  ...insightOperations,
});
