import * as z from 'zod';
import { isoDate, pageQuery, ulidSchema } from '../platform/api/schemas.js';

export const auditQuery = z.object({
  ...pageQuery,
  actor_id: ulidSchema.optional().describe('Only entries by this user'),
  action: z.string().max(100).optional().describe('Only this action (e.g. `create_task`, `login`)'),
  resource_type: z.string().max(100).optional().describe('Only entries about this kind of resource (e.g. `task`, `user`)'),
  resource_id: z.string().max(200).optional().describe('Only entries about this resource'),
  outcome: z.enum(['success', 'failure', 'denied']).optional().describe('Only entries with this outcome'),
  from: isoDate.optional().describe('Only entries at or after this time (ISO 8601)'),
  to: isoDate.optional().describe('Only entries at or before this time (ISO 8601)'),
});

export const auditView = z.object({
  audit_id: z.string(),
  timestamp: isoDate,
  actor_id: z.string().nullable(),
  actor_username: z.string().nullable(),
  action: z.string(),
  resource_type: z.string(),
  resource_id: z.string().nullable(),
  outcome: z.enum(['success', 'failure', 'denied']),
  status_code: z.number().int(),
  request_id: z.string(),
  ip: z.string(),
  user_agent: z.string(),
  method: z.string(),
  path: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
