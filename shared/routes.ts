import type { RouteSpec } from './platform/api/route.js';
import { authRoutes } from './auth/routes.js';
import { auditRoutes } from './audit/routes.js';
import { docsRoutes } from './docs/routes.js';
import { healthRoutes } from './health/routes.js';
import { providersRoutes } from './providers/routes.js';
import { taskRoutes } from './tasks/routes.js';
import { agentRoutes } from './agents/routes.js';
import { workflowsRoutes } from './workflows/routes.js';
import { analyticsRoutes } from './analytics/routes.js';
import { monitoringRoutes } from './monitoring/routes.js';

/** The route table: every HTTP route the API serves, in one list. */
export const ROUTES: readonly RouteSpec[] = [...healthRoutes, ...authRoutes, ...auditRoutes, ...docsRoutes, ...providersRoutes, ...taskRoutes, ...agentRoutes, ...workflowsRoutes, ...analyticsRoutes, ...monitoringRoutes];
