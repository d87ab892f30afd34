import * as z from 'zod';
import type { Permission } from '../platform/permissions.js';

/** Channels a client may subscribe to, and the permission each needs. `task:<id>` and `execution:<id>` follow one item. */
const CHANNEL_PERMISSIONS: Record<string, Permission> = {
  tasks: 'tasks:read',
  task: 'tasks:read',
  workflows: 'workflows:read',
  execution: 'workflows:read',
  metrics: 'analytics:read',
  alerts: 'monitoring:read',
  analytics: 'analytics:read',
  monitoring: 'monitoring:read',
  providers: 'providers:read',
  plugins: 'plugins:read',
};

const ITEM_CHANNELS = new Set(['task', 'execution']);

export function channelPermission(channel: string): Permission | undefined {
  const [base, id, extra] = channel.split(':');
  // Own keys only: `constructor`, `__proto__`… are not channels.
  if (extra !== undefined || !Object.hasOwn(CHANNEL_PERMISSIONS, base)) return undefined;
  if (ITEM_CHANNELS.has(base)) return id && /^[0-9A-Za-z_-]{1,64}$/.test(id) ? CHANNEL_PERMISSIONS[base] : undefined;
  return id === undefined ? CHANNEL_PERMISSIONS[base] : undefined;
}

export const STREAM_CHANNELS: Record<string, string[]> = {
  analytics: ['analytics'],
  monitoring: ['monitoring'],
};

export const clientMessage = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('subscribe'), channels: z.array(z.string().max(100)).min(1).max(50) }),
  z.strictObject({ action: z.literal('unsubscribe'), channels: z.array(z.string().max(100)).min(1).max(50) }),
  z.strictObject({ action: z.literal('ping') }),
  z.strictObject({
    action: z.literal('update_preferences'),
    preferences: z.strictObject({
      metric_types: z.array(z.string().max(64)).max(50).optional(),
      refresh_interval_seconds: z.number().int().min(1).max(3600).optional(),
      alert_severities: z.array(z.enum(['info', 'warning', 'critical', 'emergency'])).optional(),
      anomaly_detection: z.boolean().optional(),
    }),
  }),
]);
export type ClientMessage = z.infer<typeof clientMessage>;

export interface ServerMessage {
  type: string;
  channel?: string;
  data: unknown;
  timestamp: string;
}

export function serverMessage(type: string, data: unknown, channel?: string): ServerMessage {
  return { type, ...(channel ? { channel } : {}), data, timestamp: new Date().toISOString() };
}
