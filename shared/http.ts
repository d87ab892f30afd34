import { buildHttpHandler } from './platform/api/http-handler.js';
import type { HttpServices } from './platform/api/http-services.js';
import type { FunctionGroup, RouteSpec } from './platform/api/route.js';
import type { Operation } from './platform/api/types.js';
import { identify, identifyByToken } from './auth/identity.js';
import { deferAudit, recordAudit } from './audit/service.js';

/**
 * The Lambda handler of one endpoint group: the platform's HTTP stack, with identity and audit taken
 * from their areas. `functions/<group>/handler.ts` is one call of this.
 */
export function createHttpHandler(group: FunctionGroup, routeLists: readonly (readonly RouteSpec[])[], operations: Record<string, Operation<never>>) {
  return buildHttpHandler(group, routeLists, operations, { identify, verifyToken: identifyByToken, audit: recordAudit, deferAudit });
}

/**
 * The handler of a group whose routes are all public reads (docs): it needs no identity and no audit,
 * so its function bundles neither (nor the signing key and table they read). A route that would need
 * them is refused when the handler is built.
 */
export function createPublicHttpHandler(group: FunctionGroup, routeLists: readonly (readonly RouteSpec[])[], operations: Record<string, Operation<never>>) {
  const guarded = routeLists.flat().filter((r) => r.permission !== null || r.method !== 'GET' || r.audit || r.rateLimits?.length || r.idempotent);
  if (guarded.length > 0) {
    throw new Error(`group ${group}: ${guarded.map((r) => r.operationId).join(', ')} need identity, audit or the table; use createHttpHandler`);
  }
  const services: HttpServices = {
    identify: async () => {
      throw new Error(`group ${group} serves public routes only`);
    },
    audit: async () => undefined,
  };
  return buildHttpHandler(group, routeLists, operations, services);
}
