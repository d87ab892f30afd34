import type { FunctionGroup } from '../shared/platform/api/route.js';
import type { HttpFunction } from './http-server.js';
import * as analytics from '../functions/analytics/handler.js';
import * as analyticsAdvanced from '../functions/analytics-advanced/handler.js';
import * as auth from '../functions/auth/handler.js';
import * as docs from '../functions/docs/handler.js';
import * as health from '../functions/health/handler.js';
import * as plugins from '../functions/plugins/handler.js';
import * as monitoring from '../functions/monitoring/handler.js';
import * as providers from '../functions/providers/handler.js';
import * as resources from '../functions/resources/handler.js';
import * as tasks from '../functions/tasks/handler.js';
import * as workflows from '../functions/workflows/handler.js';
import * as ws from '../shared/realtime/socket.js';

/**
 * The same Lambda handlers the CDK stack deploys, bound in-process. One entry per function group
 * that has routes in the route table.
 */
export const HTTP_FUNCTIONS: Partial<Record<FunctionGroup, HttpFunction>> = {
  analytics: analytics.handler as unknown as HttpFunction,
  'analytics-advanced': analyticsAdvanced.handler as unknown as HttpFunction,
  auth: auth.handler as unknown as HttpFunction,
  docs: docs.handler as unknown as HttpFunction,
  health: health.handler as unknown as HttpFunction,
  plugins: plugins.handler as unknown as HttpFunction,
  monitoring: monitoring.handler as unknown as HttpFunction,
  providers: providers.handler as unknown as HttpFunction,
  resources: resources.handler as unknown as HttpFunction,
  tasks: tasks.handler as unknown as HttpFunction,
  workflows: workflows.handler as unknown as HttpFunction,
};

export const WS_FUNCTIONS = {
  authorizer: ws.authorizer,
  connect: ws.connect,
  disconnect: ws.disconnect,
  message: ws.message,
} as never;
