import { describe, it, expect, beforeAll } from 'vitest';
import { ROUTES } from '../../../shared/routes.js';
import { ROLES, ROLE_PERMISSIONS, type Role } from '../../../shared/platform/permissions.js';
import { call, userWithRole, adminSession, type Session } from '../../support/client.js';

const SAMPLE_ID = '01JD0000000000000000000000';

function concretePath(path: string): string {
  return path.replace(/\{[^}]+\+\}/g, 'x').replace(/\{[^}]+\}/g, SAMPLE_ID);
}

const protectedRoutes = ROUTES.filter((r) => r.permission !== null);

describe('permission matrix (every route in the route table)', () => {
  const sessions = {} as Record<Role, Session>;

  beforeAll(async () => {
    const admin = await adminSession();
    for (const role of ROLES) sessions[role] = await userWithRole(role, admin);
  });

  it.each(protectedRoutes.map((r) => [`${r.method} ${r.path}`, r] as const))('%s: 401 without a token', async (_name, route) => {
    const res = await call(route.method, concretePath(route.path), { body: route.body ? {} : undefined });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('unauthorized');
  });

  it.each(protectedRoutes.map((r) => [`${r.method} ${r.path}`, r] as const))('%s: 401 with a forged token', async (_name, route) => {
    const forged = sessions.admin.token.slice(0, -4) + (sessions.admin.token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const res = await call(route.method, concretePath(route.path), { token: forged, body: route.body ? {} : undefined });
    expect(res.status).toBe(401);
  });

  it.each(protectedRoutes.map((r) => [`${r.method} ${r.path}`, r] as const))('%s: 403 for roles without the permission, allowed for roles with it', async (_name, route) => {
    for (const role of ROLES) {
      const has = ROLE_PERMISSIONS[role].includes(route.permission!);
      let session = sessions[role];
      if (has && route.operationId === 'logout') session = await userWithRole(role);
      const res = await call(route.method, concretePath(route.path), { token: session.token, body: route.body ? {} : undefined });
      if (has) {
        // Allowed: a 2xx, or a 4xx the route documents for this input (an unknown id, an empty body),
        // never a 5xx; the test client has already checked the status and body against the document.
        const where = `${role} should be allowed on ${route.method} ${route.path}: ${res.status} ${JSON.stringify(res.body)}`;
        expect(res.status, where).toBeGreaterThanOrEqual(200);
        expect(res.status, where).toBeLessThan(500);
        expect([401, 403], where).not.toContain(res.status);
      } else {
        expect(res.status, `${role} should be refused on ${route.method} ${route.path}`).toBe(403);
        expect(res.body.error).toBe('forbidden');
      }
    }
  });
});
