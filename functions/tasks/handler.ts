import { createHttpHandler } from '../../shared/http.js';
import { taskOperations, taskRoutes } from '../../shared/tasks/routes.js';
import { agentOperations, agentRoutes } from '../../shared/agents/routes.js';

export const handler = createHttpHandler('tasks', [taskRoutes, agentRoutes], { ...taskOperations, ...agentOperations });
