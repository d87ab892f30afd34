import { buildHttpHandler } from './platform/api/http-handler.js';
import type { FunctionGroup, RouteSpec } from './platform/api/route.js';
import type { Operation } from './platform/api/types.js';
import { identify, identifyByToken } from './auth/identity.js';
import { recordAudit } from './audit/service.js';

/**
 * The Lambda handler of one endpoint group: the platform's HTTP stack, with identity and audit taken
 * from their areas. `functions/<group>/handler.ts` is one call of this.
 */
export function createHttpHandler(group: FunctionGroup, routeLists: readonly (readonly RouteSpec[])[], operations: Record<string, Operation<never>>) {
  return buildHttpHandler(group, routeLists, operations, { identify, verifyToken: identifyByToken, audit: recordAudit });
}
