import * as z from 'zod';
import { isoDate, pageQuery, ulidSchema } from '../platform/api/schemas.js';

export const auditQuery = z.object({
  ...pageQuery,
  actor_id: ulidSchema.optional(),
  action: z.string().max(100).optional(),
  resource_type: z.string().max(100).optional(),
  resource_id: z.string().max(200).optional(),
  outcome: z.enum(['success', 'failure', 'denied']).optional(),
  from: isoDate.optional(),
  to: isoDate.optional(),
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
