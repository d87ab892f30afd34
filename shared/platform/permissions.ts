/** Permissions are `area:action` strings. Roles are fixed sets of them; only an admin assigns roles. */
export const PERMISSIONS = [
  'tasks:read',
  'tasks:read_all',
  'tasks:create',
  'tasks:manage_all',
  'agents:read',
  'agents:manage',
  'audit:read',
  'analytics:read',
  'analytics:write',
  'analytics:export',
  'workflows:read',
  'workflows:read_all',
  'workflows:create',
  'workflows:execute',
  'workflows:manage_all',
  'schedules:manage',
  'resources:read',
  'resources:manage',
  'providers:read',
  'providers:execute',
  'providers:manage',
  'plugins:read',
  'plugins:manage',
  'plugins:publish',
  'monitoring:read',
  'monitoring:manage',
  'alerts:manage',
  'users:manage',
  'health:read',
  'profile:read',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLES = ['admin', 'operator', 'user', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

const READ: Permission[] = [
  'profile:read',
  'health:read',
  'tasks:read',
  'agents:read',
  'analytics:read',
  'workflows:read',
  'resources:read',
  'providers:read',
  'plugins:read',
  'monitoring:read',
];

/**
 * Object-level reads: `tasks:read` and `workflows:read` open the routes; what a caller sees through them
 * is what they created, unless they hold `*:read_all` (viewer, operator, admin). A `user` reads and
 * changes only their own tasks, workflows and the runs of their workflows.
 */
const READ_ALL: Permission[] = ['tasks:read_all', 'workflows:read_all'];

const USER: Permission[] = [...READ, 'tasks:create', 'workflows:create', 'workflows:execute', 'providers:execute'];

const VIEWER: Permission[] = [...READ, ...READ_ALL];

const OPERATOR: Permission[] = [
  ...USER,
  ...READ_ALL,
  'tasks:manage_all',
  'workflows:manage_all',
  'schedules:manage',
  'resources:manage',
  'monitoring:manage',
  'alerts:manage',
  'plugins:manage',
  'plugins:publish',
  'analytics:write',
  'analytics:export',
  'audit:read',
];

export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  admin: PERMISSIONS,
  operator: OPERATOR,
  user: USER,
  viewer: VIEWER,
};

export function permissionsOf(roles: readonly string[]): Permission[] {
  const out = new Set<Permission>();
  for (const role of roles) {
    const perms = ROLE_PERMISSIONS[role as Role];
    if (perms) for (const p of perms) out.add(p);
  }
  return [...out].sort();
}

export function hasPermission(roles: readonly string[], permission: Permission): boolean {
  return roles.some((role) => ROLE_PERMISSIONS[role as Role]?.includes(permission));
}

/** Roles that hold a permission: used by the permission-matrix test and the OpenAPI document. */
export function rolesWith(permission: Permission): Role[] {
  return ROLES.filter((r) => ROLE_PERMISSIONS[r].includes(permission));
}
