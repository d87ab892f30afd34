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

/**
 * Owners read what they created; `*:read_all` reads anything in its area. An item the caller may not
 * read is answered exactly like an unknown one (404), so that its existence does not leak.
 */
export function canRead(principal: Pick<Principal, 'userId' | 'permissions'>, ownerId: string | undefined, readAll: Permission): boolean {
  return principal.userId === ownerId || principal.permissions.includes(readAll);
}
