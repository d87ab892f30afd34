import { createHttpHandler } from '../../shared/http.js';
import { workflowsOperations, workflowsRoutes } from '../../shared/workflows/routes.js';

export const handler = createHttpHandler('workflows', [workflowsRoutes], workflowsOperations);
