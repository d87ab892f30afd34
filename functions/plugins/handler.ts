import { createHttpHandler } from '../../shared/http.js';
import { pluginOperations, pluginRoutes } from '../../shared/plugins/routes.js';

export const handler = createHttpHandler('plugins', [pluginRoutes], pluginOperations);
