import * as z from 'zod';
import { isoDate, pageQuery, ulidSchema, cleanText } from '../platform/api/schemas.js';
import { providerIdSchema } from '../tasks/model.js';
import { QUOTA_WINDOWS } from './quota.js';

/**
 * An agent is an execution identity on a provider: a model with its own key or account, a quota per
 * fixed window (requests and tokens) and a concurrency limit. Tasks are routed to agents.
 */
export const quotaSchema = z.strictObject({
  window: z.enum(QUOTA_WINDOWS),
  max_requests: z.number().int().min(1).max(10_000_000).nullable().default(null),
  max_tokens: z.number().int().min(1).max(10_000_000_000).nullable().default(null),
});

const agentFields = {
  name: cleanText(z.string().trim().min(1).max(100)),
  description: cleanText(z.string().max(1000), { multiline: true }).optional(),
  provider_id: providerIdSchema,
  /** Overrides the provider's model. */
  model: cleanText(z.string().trim().min(1).max(200)).optional(),
  /** The agent's own key (stored in the SecretStore; never returned). */
  api_key: cleanText(z.string().min(1).max(4096)).optional(),
  quota: quotaSchema,
  max_concurrency: z.number().int().min(1).max(1000),
  /** Higher is tried first. */
  priority: z.number().int().min(1).max(100).default(50),
  enabled: z.boolean().default(true),
};

export const createAgentBody = z.strictObject(agentFields);
export type CreateAgentInput = z.infer<typeof createAgentBody>;

export const updateAgentBody = z
  .strictObject({
    name: agentFields.name.optional(),
    description: agentFields.description.nullable(),
    model: agentFields.model.nullable(),
    api_key: agentFields.api_key.nullable(),
    quota: quotaSchema.optional(),
    max_concurrency: agentFields.max_concurrency.optional(),
    priority: z.number().int().min(1).max(100).optional(),
    enabled: z.boolean().optional(),
  })
  .refine((b) => Object.values(b).some((v) => v !== undefined), 'give at least one field to change');
export type UpdateAgentInput = z.infer<typeof updateAgentBody>;

export const agentIdParams = z.strictObject({ agent_id: ulidSchema });

export const listAgentsQuery = z.strictObject({
  ...pageQuery,
  provider_id: providerIdSchema.optional().describe('Only agents on this provider'),
  enabled: z.enum(['true', 'false']).transform((v) => v === 'true').optional().describe('Only enabled (`true`) or disabled (`false`) agents'),
});

export const agentView = z.object({
  agent_id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  provider_id: z.string(),
  model: z.string().nullable(),
  api_key: z.string().nullable().describe('Masked (last four characters) when the agent has its own key'),
  quota: z.object({ window: z.enum(QUOTA_WINDOWS), max_requests: z.number().nullable(), max_tokens: z.number().nullable() }),
  max_concurrency: z.number().int(),
  priority: z.number().int(),
  enabled: z.boolean(),
  created_by: z.string(),
  created_at: isoDate,
  updated_at: isoDate,
  last_used_at: isoDate.nullable(),
});
export type AgentView = z.infer<typeof agentView>;

const quotaNumbers = z.object({ requests: z.number().nullable(), tokens: z.number().nullable() });

export const agentQuotaView = z.object({
  agent_id: z.string(),
  name: z.string(),
  provider_id: z.string(),
  enabled: z.boolean(),
  window: z.enum(QUOTA_WINDOWS),
  window_start: isoDate,
  resets_at: isoDate,
  used: z.object({ requests: z.number(), tokens: z.number() }),
  limit: quotaNumbers,
  remaining: quotaNumbers,
  running: z.number().int().describe('Tasks holding one of its concurrency slots now'),
  max_concurrency: z.number().int(),
  available: z.boolean().describe('Enabled, with quota left and a free concurrency slot'),
  last_used_at: isoDate.nullable(),
});

export const quotaStatusView = z.object({
  agents: z.array(agentQuotaView),
  totals: z.object({
    agents: z.number().int(),
    available: z.number().int(),
    used: z.object({ requests: z.number(), tokens: z.number() }),
    limit: quotaNumbers.describe('null when any agent is unlimited'),
    remaining: quotaNumbers,
    running: z.number().int(),
    max_concurrency: z.number().int(),
  }),
});
