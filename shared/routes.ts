import type { RouteSpec } from './platform/api/route.js';
import { authRoutes } from './auth/routes.js';
import { auditRoutes } from './audit/routes.js';
import { docsRoutes } from './docs/routes.js';
import { healthRoutes } from './health/routes.js';
import { providersRoutes } from './providers/routes.js';
import { taskRoutes } from './tasks/routes.js';
import { agentRoutes } from './agents/routes.js';
import { workflowsRoutes } from './workflows/routes.js';
import { pluginRoutes } from './plugins/routes.js';
import { resourcesRoutes } from './resources/routes.js';
import { analyticsRoutes } from './analytics/routes.js';
import { providerAnalyticsRoutes } from './analytics/providers-routes.js';
import { insightRoutes } from './analytics/insights-routes.js';
import { advancedAnalyticsRoutes } from './analytics/advanced-routes.js';
import { monitoringRoutes } from './monitoring/routes.js';

/** The route table: every HTTP route the API serves, in one list. */
export const ROUTES: readonly RouteSpec[] = [...healthRoutes, ...authRoutes, ...auditRoutes, ...docsRoutes, ...providersRoutes, ...taskRoutes, ...agentRoutes, ...workflowsRoutes, ...resourcesRoutes, ...pluginRoutes, ...analyticsRoutes, ...providerAnalyticsRoutes, ...insightRoutes, ...advancedAnalyticsRoutes, ...monitoringRoutes];

/** What each tag of the route table covers (the OpenAPI document's top-level `tags`). */
export const TAG_DESCRIPTIONS: Record<string, string> = {
  'Health & System': 'Liveness, readiness and the state of each dependency',
  Authentication: 'Login, refresh and logout, the current user, accounts and roles, and the keys that verify tokens',
  'Audit & Compliance': 'The audit log of every mutating request, denials and failures included',
  Documentation: 'This document and the Swagger UI that renders it',
  'Provider Management': 'LLM providers: registration, routing priority, health, circuit breakers and usage',
  'Task Management': 'Tasks for agents: create, follow, cancel, retry, and their results',
  'Task Analytics': 'Figures over the stored tasks',
  'Agent Management': 'Agents that take tasks: registration, capabilities and status',
  'Workflow Management': 'Workflows of steps, their runs on the state machine and their cancellation',
  'Workflow Schedules': 'Cron schedules that start workflow runs',
  'Resource Management': 'The capacity ledger the worker obeys: pools, allocations, conflicts, scaling and utilisation',
  'Analytics & Metrics': 'The metrics store fed by the change feed: collect, query, raw points, summary, provider analytics, insights and trends',
  'Advanced Analytics': 'Real-time values with anomaly flags, dashboard data, change points and correlations, and exports',
  'Real-time Monitoring': 'Alert rules evaluated against the metrics store (Prometheus states), alerts, acknowledgements and the evaluator configuration',
  'Plugin Management': 'Built-in integrations (webhook, Slack, GitHub, e-mail): their lifecycle, configuration, events and deliveries',
};
