import * as z from 'zod';
import type { Permission } from '../platform/permissions.js';
import { AGGREGATIONS, METRIC_NAME } from '../platform/metrics/store.js';

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
      metric_types: z
        .array(
          z
            .string()
            .max(64)
            .refine((s) => {
              const [m, a, ...rest] = s.split(':');
              return METRIC_NAME.test(m) && (a === undefined || (AGGREGATIONS as readonly string[]).includes(a)) && !rest.length;
            }, `a metric name, optionally with :aggregation (${AGGREGATIONS.join(', ')}), e.g. task.duration_ms:p95`),
        )
        .min(1)
        .max(10)
        .optional(),
      refresh_interval_seconds: z.number().int().min(1).max(3600).optional(),
      alert_severities: z.array(z.enum(['info', 'warning', 'critical', 'emergency'])).optional(),
      anomaly_detection: z.boolean().optional(),
      /** The robust z-score above which the analytics stream reports an anomaly (default 3.5). */
      anomaly_z_threshold: z.number().min(2).max(10).optional(),
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

/**
 * Close codes (application range 4000-4999) with which the server ends a connection. On AWS,
 * API Gateway's DeleteConnection sends no code: a final `{type: "closing", code, reason}` message
 * carries it, then the connection is deleted. Locally the socket is closed with the code too.
 */
export interface CloseReason {
  code: number;
  reason: string;
}
/** The session ended: logout, password change. Log in again, then reconnect. */
export const SESSION_ENDED: CloseReason = { code: 4001, reason: 'session ended' };
/** The user's rights changed: role change, deactivation, deletion. Reconnect with a fresh token. */
export const RIGHTS_CHANGED: CloseReason = { code: 4003, reason: 'rights changed' };
/** Too many messages on this connection. */
export const RATE_LIMITED: CloseReason = { code: 4008, reason: 'rate limited' };

/** How many messages a connection may send per window, and the window. */
export const MESSAGE_LIMIT = { messages: 30, windowSeconds: 10 } as const;
/** Beyond this many messages in one window the connection is closed (4008), not only answered `rate_limited`. */
export const MESSAGE_CLOSE_AFTER = 2 * MESSAGE_LIMIT.messages;
/** Channels one connection may hold at once. */
export const MAX_CHANNELS_PER_CONNECTION = 50;
