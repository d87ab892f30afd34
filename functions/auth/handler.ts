import { createHttpHandler } from '../../shared/http.js';
import { authOperations, authRoutes } from '../../shared/auth/routes.js';

export const handler = createHttpHandler('auth', [authRoutes], authOperations);
