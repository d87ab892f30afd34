import { describe, expect, it } from 'vitest';
import { hasPermission, PERMISSIONS, permissionsOf, ROLE_PERMISSIONS, ROLES, rolesWith } from '../../../shared/platform/permissions.js';
import { canManage, canRead } from '../../../shared/platform/principal.js';

describe('roles and permissions', () => {
  it('gives the admin every permission', () => {
    expect(permissionsOf(['admin'])).toEqual([...PERMISSIONS].sort());
  });

  it('nests user ⊂ operator ⊂ admin and viewer ⊂ operator; the viewer has what the user has but creation, plus reading everything', () => {
    for (const chain of [['user', 'operator', 'admin'], ['viewer', 'operator']] as const) {
      for (let i = 1; i < chain.length; i++) {
        for (const p of ROLE_PERMISSIONS[chain[i - 1]]) expect(ROLE_PERMISSIONS[chain[i]], `${chain[i]} lacks ${p}`).toContain(p);
      }
    }
    for (const p of ROLE_PERMISSIONS.viewer) if (!p.endsWith(':read_all')) expect(ROLE_PERMISSIONS.user, `user lacks ${p}`).toContain(p);
  });

  it('lets viewer, operator and admin read every task and workflow; a user reads their own', () => {
    expect(rolesWith('tasks:read_all')).toEqual(['admin', 'operator', 'viewer']);
    expect(rolesWith('workflows:read_all')).toEqual(['admin', 'operator', 'viewer']);
    const user = { userId: 'U1', permissions: permissionsOf(['user']) };
    expect(canRead(user, 'U1', 'tasks:read_all')).toBe(true);
    expect(canRead(user, 'U2', 'tasks:read_all')).toBe(false);
    expect(canRead(user, undefined, 'workflows:read_all')).toBe(false);
    expect(canRead({ userId: 'V1', permissions: permissionsOf(['viewer']) }, 'U2', 'workflows:read_all')).toBe(true);
  });

  it('keeps users:manage with the admin alone, and audit:read with operator and admin', () => {
    expect(rolesWith('users:manage')).toEqual(['admin']);
    expect(rolesWith('audit:read')).toEqual(['admin', 'operator']);
  });

  it('lets the viewer read and nothing else', () => {
    expect(ROLE_PERMISSIONS.viewer.every((p) => p.endsWith(':read') || p.endsWith(':read_all'))).toBe(true);
  });

  it('unions the permissions of several roles and ignores unknown roles', () => {
    expect(permissionsOf(['viewer', 'user'])).toEqual([...permissionsOf(['user']), 'tasks:read_all', 'workflows:read_all'].sort());
    expect(permissionsOf(['root', 'superuser'])).toEqual([]);
    expect(hasPermission(['root'], 'tasks:read')).toBe(false);
    expect(hasPermission([], 'profile:read')).toBe(false);
    for (const role of ROLES) expect(hasPermission([role], 'profile:read')).toBe(true);
  });

  it('lets owners manage their own items and *:manage_all holders anything', () => {
    const user = { userId: 'U1', username: 'u', roles: ['user' as const], permissions: permissionsOf(['user']), sessionId: 'S' };
    const operator = { ...user, userId: 'O1', roles: ['operator' as const], permissions: permissionsOf(['operator']) };
    expect(canManage(user, 'U1', 'tasks:manage_all')).toBe(true);
    expect(canManage(user, 'U2', 'tasks:manage_all')).toBe(false);
    expect(canManage(user, undefined, 'tasks:manage_all')).toBe(false);
    expect(canManage(operator, 'U2', 'tasks:manage_all')).toBe(true);
  });
});
