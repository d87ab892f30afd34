import type { Permission, Role } from './permissions.js';

/** Who is calling: resolved from a verified access token and the user's current record. */
export interface Principal {
  userId: string;
  username: string;
  roles: Role[];
  permissions: Permission[];
  /** The refresh-token family the access token belongs to; logout revokes it. */
  sessionId: string;
}

export function can(principal: Principal, permission: Permission): boolean {
  return principal.permissions.includes(permission);
}

/** Owners change what they created; `*:manage_all` changes anything in its area. */
export function canManage(principal: Principal, ownerId: string | undefined, manageAll: Permission): boolean {
  return principal.userId === ownerId || can(principal, manageAll);
}
