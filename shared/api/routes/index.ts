import type { RouteSpec } from '../route.js';
import { authRoutes } from './auth.js';
import { docsRoutes } from './docs.js';
import { healthRoutes } from './health.js';

/** The route table: every HTTP route the API serves, in one list. */
export const ROUTES: readonly RouteSpec[] = [...healthRoutes, ...authRoutes, ...docsRoutes];
