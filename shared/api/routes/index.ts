import type { RouteSpec } from '../route.js';
import { authRoutes } from './auth.js';
import { docsRoutes } from './docs.js';
import { healthRoutes } from './health.js';
import { providersRoutes } from './providers.js';
import { taskRoutes } from './tasks.js';
import { agentRoutes } from './agents.js';
import { workflowsRoutes } from './workflows.js';

/** The route table: every HTTP route the API serves, in one list. */
export const ROUTES: readonly RouteSpec[] = [...healthRoutes, ...authRoutes, ...docsRoutes, ...providersRoutes, ...taskRoutes, ...agentRoutes, ...workflowsRoutes];
