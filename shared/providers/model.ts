import * as z from 'zod';
import { isoDate, jsonObject, pageQuery, cleanText } from '../platform/api/schemas.js';
import { PROVIDER_TYPES } from './types.js';
import { CIRCUIT_STATES } from './circuit-breaker.js';

/** Static segments under `/api/v1/providers/` that an id must never shadow. */
export const RESERVED_PROVIDER_IDS = ['status', 'analytics', 'recommendations', 'execute'] as const;

export const providerIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be a slug: 1-64 lowercase letters, digits, dash or underscore, starting with a letter or digit')
  .refine((id) => !(RESERVED_PROVIDER_IDS as readonly string[]).includes(id), 'is a reserved path segment');

export const providerIdParams = z.object({ provider_id: providerIdSchema });

export const capabilitySchema = z.string().regex(/^[a-z0-9][a-z0-9_.:-]{0,63}$/, 'must be 1-64 lowercase letters, digits or _ . : -');

const usdPerMillion = z.number().min(0).max(100_000);
export const pricingSchema = z.strictObject({
  input_per_million: usdPerMillion.describe('USD per million input tokens'),
  output_per_million: usdPerMillion.describe('USD per million output tokens'),
});

const rateLimitsSchema = z.strictObject({
  requests_per_minute: z.number().int().min(1).max(1_000_000).optional(),
  tokens_per_minute: z.number().int().min(1).max(1_000_000_000).optional(),
});

const httpUrl = z
  .url({ protocol: /^https?$/, hostname: z.regexes.hostname })
  .max(2048)
  .refine((u) => !/[?#]/.test(u), 'must not carry a query string or fragment');

const maxTokens = z.number().int().min(1).max(200_000).describe('max_tokens sent with each request');
const timeoutSeconds = z.number().int().min(1).max(900).describe('Upper bound of one call; the task timeout applies as well');

const apiKey = cleanText(z.string().min(1).max(4096));
const model = z.string().trim().min(1).max(200);
const httpSettings = z.strictObject({ max_tokens: maxTokens.optional(), timeout_seconds: timeoutSeconds.optional() });

export const envNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name');

export const cliSettingsSchema = z.strictObject({
  command: z.string().min(1).max(1024).describe('Executable (no shell): a name on PATH or an absolute path'),
  args: z.array(z.string().max(4096)).max(64).default([]),
  cwd: z.string().min(1).max(1024).regex(/^\//, 'must be an absolute path').optional(),
  env_allow: z.array(envNameSchema).max(64).default(['PATH', 'HOME', 'LANG']).describe('Environment variables passed through; nothing else is'),
  max_output_bytes: z.number().int().min(1024).max(50 * 1024 * 1024).default(1024 * 1024),
  timeout_seconds: timeoutSeconds.default(600),
  check_args: z.array(z.string().max(4096)).max(16).default(['--version']).describe('Arguments of the health check run'),
});
export type CliSettings = z.infer<typeof cliSettingsSchema>;

/** Settings by provider type; `settings` is validated against the one of the body's `type`. */
export const SETTINGS_BY_TYPE = {
  anthropic: httpSettings,
  openai: httpSettings,
  bedrock: z.strictObject({
    region: z.string().regex(/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/, 'must be an AWS region'),
    max_tokens: maxTokens.optional(),
    timeout_seconds: timeoutSeconds.optional(),
  }),
  cli: cliSettingsSchema,
  local: z.strictObject({ chunk_delay_ms: z.number().int().min(0).max(5000).optional() }),
} as const;

interface TypeRules {
  apiKey: 'required' | 'optional' | 'forbidden';
  baseUrl: boolean;
  pricingRequired: boolean;
  settingsRequired: boolean;
}
const RULES: Record<(typeof PROVIDER_TYPES)[number], TypeRules> = {
  anthropic: { apiKey: 'required', baseUrl: true, pricingRequired: true, settingsRequired: false },
  openai: { apiKey: 'optional', baseUrl: true, pricingRequired: true, settingsRequired: false },
  bedrock: { apiKey: 'forbidden', baseUrl: true, pricingRequired: true, settingsRequired: true },
  cli: { apiKey: 'forbidden', baseUrl: false, pricingRequired: false, settingsRequired: true },
  local: { apiKey: 'forbidden', baseUrl: false, pricingRequired: false, settingsRequired: false },
};

/**
 * One strict body for every type (so unknown fields are named as such), with the type's own rules
 * checked after: which fields it needs or refuses, and its settings.
 */
export const registerBody = z
  .strictObject({
    type: z.enum(PROVIDER_TYPES),
    name: cleanText(z.string().trim().min(1).max(100)),
    base_url: httpUrl
      .optional()
      .describe('anthropic: defaults to https://api.anthropic.com; openai: including /v1 (e.g. http://localhost:11434/v1), defaults to https://api.openai.com/v1; bedrock: endpoint override'),
    model: model.optional().describe('Model id (bedrock: model id or inference profile; cli: a label recorded with each result; local: local-deterministic)'),
    api_key: apiKey.optional().describe('anthropic: required; openai: optional Bearer token; stored in the secret store, never returned (shown masked)'),
    pricing: pricingSchema.optional().describe('Required except for cli and local (which default to 0)'),
    capabilities: z.array(capabilitySchema).max(32).default([]).describe('Task types or skills it serves; none means general purpose'),
    rate_limits: rateLimitsSchema.optional(),
    priority: z.number().int().min(0).max(1000).default(100).describe('Lower is tried first when routing'),
    enabled: z.boolean().default(true),
    settings: jsonObject().optional().describe('By type: anthropic/openai {max_tokens, timeout_seconds}; bedrock {region, max_tokens, timeout_seconds}; cli {command, args, cwd, env_allow, max_output_bytes, timeout_seconds, check_args}; local {chunk_delay_ms}'),
  })
  .superRefine((b, ctx) => {
    const rules = RULES[b.type];
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (b.type === 'local') {
      if (b.model !== undefined && b.model !== 'local-deterministic') issue('model', 'must be local-deterministic');
    } else if (b.model === undefined) issue('model', 'is required');
    if (rules.apiKey === 'required' && b.api_key === undefined) issue('api_key', `is required for ${b.type}`);
    if (rules.apiKey === 'forbidden' && b.api_key !== undefined) issue('api_key', `is not used by ${b.type}`);
    if (!rules.baseUrl && b.base_url !== undefined) issue('base_url', `is not used by ${b.type}`);
    if (rules.pricingRequired && b.pricing === undefined) issue('pricing', `is required for ${b.type}`);
    if (rules.settingsRequired && b.settings === undefined) issue('settings', `is required for ${b.type}`);
    if (b.settings !== undefined) {
      const parsed = SETTINGS_BY_TYPE[b.type].safeParse(b.settings);
      if (!parsed.success) {
        for (const i of parsed.error.issues) {
          if (i.code === 'unrecognized_keys') for (const key of i.keys) ctx.addIssue({ code: 'custom', path: ['settings', key], message: 'Unknown field' });
          else ctx.addIssue({ code: 'custom', path: ['settings', ...i.path.map(String)], message: i.message });
        }
      }
    }
  })
  .transform((b) => ({
    type: b.type,
    name: b.name,
    base_url: b.base_url,
    model: b.type === 'local' ? 'local-deterministic' : b.model!,
    api_key: b.api_key,
    pricing: b.pricing ?? { input_per_million: 0, output_per_million: 0 },
    capabilities: [...new Set(b.capabilities)],
    rate_limits: b.rate_limits,
    priority: b.priority,
    enabled: b.enabled,
    settings: SETTINGS_BY_TYPE[b.type].parse(b.settings ?? {}) as Record<string, unknown>,
  }));
export type RegisterBody = z.output<typeof registerBody>;

export const providerView = z.object({
  provider_id: z.string(),
  type: z.enum(PROVIDER_TYPES),
  name: z.string(),
  base_url: z.string().nullable(),
  model: z.string(),
  api_key: z.string().nullable().describe('Masked: `****` and the last four characters'),
  pricing: pricingSchema,
  capabilities: z.array(z.string()),
  rate_limits: rateLimitsSchema.nullable(),
  priority: z.number().int(),
  enabled: z.boolean(),
  settings: z.record(z.string(), z.unknown()),
  created_by: z.string(),
  created_at: isoDate,
  updated_at: isoDate,
});

export const listProvidersQuery = z.object({
  ...pageQuery,
  type: z.enum(PROVIDER_TYPES).optional().describe('Only providers of this type'),
});

export const daysQuery = (fallback: number, max: number) =>
  z.object({ days: z.coerce.number().int().min(1).max(max).default(fallback).describe(`Number of UTC days back from today (1..${max}, default ${fallback})`) });

export const circuitView = z.object({
  state: z.enum(CIRCUIT_STATES),
  consecutive_failures: z.number().int(),
  opened_at: isoDate.nullable(),
  retry_at: isoDate.nullable().describe('When an open circuit lets a trial call through'),
  reason: z.string().nullable(),
  changed_at: isoDate.nullable(),
  last_error_code: z.string().nullable(),
});

export const usageSummaryView = z.object({
  requests: z.number().int(),
  successes: z.number().int(),
  failures: z.number().int(),
  success_rate: z.number().nullable(),
  tokens_in: z.number().int(),
  tokens_out: z.number().int(),
  cost_usd: z.number(),
  avg_latency_ms: z.number().nullable(),
  p50_latency_ms: z.number().nullable().describe('Upper bound of the latency histogram bucket holding the median'),
  p95_latency_ms: z.number().nullable(),
  errors_by_code: z.record(z.string(), z.number()),
});

export const HEALTH_STATES = ['healthy', 'degraded', 'unhealthy', 'unknown', 'disabled'] as const;

export const lastCheckView = z.object({
  ok: z.boolean(),
  latency_ms: z.number(),
  checked_at: isoDate,
  error_code: z.string().nullable(),
  error_message: z.string().nullable(),
});

export const providerStatusView = z.object({
  provider_id: z.string(),
  name: z.string(),
  type: z.enum(PROVIDER_TYPES),
  model: z.string(),
  enabled: z.boolean(),
  priority: z.number().int(),
  health: z.enum(HEALTH_STATES),
  circuit: circuitView,
  recent: usageSummaryView.extend({ window_hours: z.number().int() }),
  last_check: lastCheckView.nullable(),
});

export const statusView = z.object({
  providers: z.array(providerStatusView),
  /** How many providers are in each health state, and how many there are. */
  summary: z.object({
    healthy: z.number().int(),
    degraded: z.number().int(),
    unhealthy: z.number().int(),
    unknown: z.number().int(),
    disabled: z.number().int(),
    total: z.number().int(),
  } satisfies Record<(typeof HEALTH_STATES)[number] | 'total', z.ZodNumber>),
  checked_at: isoDate,
});

export const healthView = z.object({
  provider_id: z.string(),
  type: z.enum(PROVIDER_TYPES),
  healthy: z.boolean(),
  latency_ms: z.number(),
  checked_at: isoDate,
  cached: z.boolean().describe('The last check, answered instead of a live one (one live check per provider every 10 s)'),
  error: z
    .object({
      code: z.string(),
      message: z.string().nullable().describe("The target's own message: provider managers only"),
      status: z.number().int().nullable(),
      retryable: z.boolean(),
    })
    .nullable(),
  circuit: circuitView,
});

export const usageView = z.object({
  provider_id: z.string(),
  days: z.number().int(),
  from: z.string(),
  to: z.string(),
  totals: usageSummaryView,
  by_day: z.array(usageSummaryView.extend({ date: z.string() })),
});

const rankingView = z.array(z.object({ provider_id: z.string(), value: z.number() }));

export const analyticsView = z.object({
  days: z.number().int(),
  from: z.string(),
  to: z.string(),
  totals: usageSummaryView.extend({ providers_with_usage: z.number().int() }),
  providers: z.array(
    usageSummaryView.extend({
      provider_id: z.string(),
      name: z.string().nullable(),
      type: z.enum(PROVIDER_TYPES).nullable(),
      registered: z.boolean(),
      share_of_requests: z.number().nullable(),
      share_of_cost: z.number().nullable(),
    }),
  ),
  rankings: z.object({
    by_requests: rankingView,
    by_success_rate: rankingView,
    by_avg_latency_ms: rankingView,
    by_cost_usd: rankingView,
    by_cost_per_success_usd: rankingView,
  }),
  by_day: z.array(z.object({ date: z.string(), requests: z.number().int(), failures: z.number().int(), tokens_in: z.number().int(), tokens_out: z.number().int(), cost_usd: z.number() })),
});

export const recommendationBody = z.strictObject({
  task_type: z
    .enum(['pr_review', 'issue_summary', 'code_analysis', 'refactor', 'bug_fix', 'feature', 'documentation', 'testing', 'security_audit', 'custom'])
    .optional()
    .describe('Used as a capability filter when `capability` is not given and some provider declares it'),
  capability: capabilitySchema.optional().describe('Only providers declaring this capability'),
  constraints: z
    .strictObject({
      max_cost_usd: z.number().positive().max(10_000).optional().describe('Estimated cost of one call at the expected tokens'),
      max_latency_ms: z.number().int().positive().max(3_600_000).optional(),
      min_success_rate: z.number().min(0).max(1).optional(),
    })
    .default({}),
  expected_tokens: z
    .strictObject({ input: z.number().int().min(0).max(10_000_000), output: z.number().int().min(0).max(10_000_000) })
    .optional()
    .describe('Defaults to 2000 input / 1000 output'),
  window_days: z.number().int().min(1).max(90).default(7).describe('Days of usage the observations come from'),
  limit: z.number().int().min(1).max(50).default(10),
});
export type RecommendationBody = z.infer<typeof recommendationBody>;

const componentView = z.object({
  value: z.number().nullable(),
  source: z.enum(['observed', 'prior', 'pricing']),
  samples: z.number().int(),
  score: z.number(),
  weight: z.number(),
  contribution: z.number(),
});

export const recommendationsView = z.object({
  recommendations: z.array(
    z.object({
      rank: z.number().int(),
      provider_id: z.string(),
      name: z.string(),
      type: z.enum(PROVIDER_TYPES),
      model: z.string(),
      score: z.number(),
      meets_constraints: z.boolean(),
      violations: z.array(z.string()),
      circuit_state: z.enum(CIRCUIT_STATES),
      estimated_cost_usd: z.number(),
      breakdown: z.object({ success_rate: componentView, latency: componentView, cost: componentView }),
    }),
  ),
  basis: z.object({
    window_days: z.number().int(),
    expected_tokens: z.object({ input: z.number().int(), output: z.number().int() }),
    weights: z.object({ success_rate: z.number(), latency: z.number(), cost: z.number() }),
    priors: z.object({ success_rate: z.number(), prior_weight_calls: z.number(), latency_ms: z.number() }),
    capability: z.string().nullable(),
    considered: z.number().int(),
  }),
});
