import type { Deps } from '../platform/runtime.js';
import { permissionsOf, type Permission } from '../platform/permissions.js';
import { UserRepository } from './repo.js';

/**
 * Whether an account may still act with a permission, for work done on its behalf later (a schedule
 * firing under its owner's id): the user exists, is active and its roles grant the permission.
 */
export type AccountStanding = { allowed: true; username: string } | { allowed: false; reason: string };

export async function accountStanding(deps: Deps, userId: string, permission: Permission): Promise<AccountStanding> {
  const user = await new UserRepository(deps.store).get(userId);
  if (!user) return { allowed: false, reason: 'the owner account was deleted' };
  if (!user.is_active) return { allowed: false, reason: 'the owner account is deactivated' };
  if (!permissionsOf(user.roles).includes(permission)) return { allowed: false, reason: `the owner no longer holds ${permission}` };
  return { allowed: true, username: user.username };
}
