import { createHttpHandler } from '../../shared/http.js';
import { authOperations, authRoutes } from '../../shared/auth/routes.js';
import { auditOperations, auditRoutes } from '../../shared/audit/routes.js';

export const handler = createHttpHandler('auth', [authRoutes, auditRoutes], { ...authOperations, ...auditOperations });
