import * as z from 'zod';
import { isoDate, jsonObject, pageQuery, ulidSchema, cleanText, documentAs } from '../platform/api/schemas.js';
import { PAYLOAD_SCHEMAS } from './payloads.js';
import { providerIdSchema } from '../providers/model.js';
import { TASK_STATUSES, TASK_TYPES } from './status.js';
import { resourceRequest } from '../resources/model.js';

export { TASK_STATUSES, TASK_TYPES } from './status.js';
export type { TaskStatus, TaskType } from './status.js';

export { providerIdSchema };

export const MAX_TIMEOUT_SECONDS = 900;
export const DEFAULT_TIMEOUT_SECONDS = 300;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_PRIORITY = 5;
/** Task bodies are capped so that the task item (payload + result) stays well inside DynamoDB's 400 KB. */
export const TASK_BODY_MAX_BYTES = 200 * 1024;
const METADATA_MAX_BYTES = 8 * 1024;

const tagSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$/, 'tags are 1-64 letters, digits, `_ . : / -`');

const metadataSchema = jsonObject({ maxKeyLength: 64 })
  .refine((m) => Buffer.byteLength(JSON.stringify(m)) <= METADATA_MAX_BYTES, `metadata must be at most ${METADATA_MAX_BYTES} bytes as JSON`);

/** Fields of a task as a client submits it; `payload` is checked against the type's schema. */
export const taskInputFields = {
  type: z.enum(TASK_TYPES),
  title: cleanText(z.string().trim().min(1).max(200)).optional(),
  payload: jsonObject(),
  priority: z.number().int().min(1).max(10).default(DEFAULT_PRIORITY),
  provider_id: providerIdSchema.optional(),
  agent_id: ulidSchema.optional(),
  max_attempts: z.number().int().min(1).max(10).default(DEFAULT_MAX_ATTEMPTS),
  timeout_seconds: z.number().int().min(1).max(MAX_TIMEOUT_SECONDS).default(DEFAULT_TIMEOUT_SECONDS),
  max_cost_usd: z.number().positive().max(10_000).optional(),
  tags: z
    .array(tagSchema)
    .max(20)
    .refine((t) => new Set(t).size === t.length, 'tags must be unique')
    .default([]),
  metadata: metadataSchema.default({}),
  resources: resourceRequest.optional().describe('What the task holds while it runs (default: its type\'s); the worker runs it only when the pools have room'),
};

/** Checks the payload against the schema of its type and reports each field under `payload.`. */
function checkPayload(value: { type: (typeof TASK_TYPES)[number]; payload: Record<string, unknown> }, ctx: z.RefinementCtx) {
  const result = PAYLOAD_SCHEMAS[value.type].safeParse(value.payload);
  if (result.success) {
    value.payload = result.data as Record<string, unknown>;
    return;
  }
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) ctx.addIssue({ code: 'custom', path: ['payload', ...issue.path, key], message: 'Unknown field' });
    } else {
      ctx.addIssue({ code: 'custom', path: ['payload', ...issue.path], message: issue.message });
    }
  }
}

/** The task fields as one member per type, each with that type's payload schema (published in the document). */
const taskUnion = (extra: z.ZodRawShape = {}) => () =>
  z.discriminatedUnion(
    'type',
    TASK_TYPES.map((type) => z.strictObject({ ...taskInputFields, ...extra, type: z.literal(type), payload: PAYLOAD_SCHEMAS[type] })) as unknown as [
      z.ZodObject,
      ...z.ZodObject[],
    ],
  );

export const createTaskBody = documentAs(z.strictObject(taskInputFields).superRefine(checkPayload), taskUnion(), 'TaskInput');
/** A task as a caller submits it (defaults may be left out). */
export type CreateTaskInput = z.input<typeof createTaskBody>;
/** A task as validated: defaults applied, payload checked against its type. */
export type CreateTaskBody = z.output<typeof createTaskBody>;

export const updateTaskBody = z
  .strictObject({
    title: cleanText(z.string().trim().min(1).max(200)).optional(),
    priority: z.number().int().min(1).max(10).optional(),
    tags: taskInputFields.tags.removeDefault().optional(),
  })
  .refine((b) => b.title !== undefined || b.priority !== undefined || b.tags !== undefined, 'give at least one of title, priority, tags');
export type UpdateTaskInput = z.infer<typeof updateTaskBody>;

export const cancelTaskBody = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() }).optional();

export const taskIdParams = z.strictObject({ task_id: ulidSchema });

export const listTasksQuery = z.strictObject({
  ...pageQuery,
  status: z.enum(TASK_STATUSES).optional().describe('Only tasks in this status'),
  type: z.enum(TASK_TYPES).optional().describe('Only tasks of this type'),
  priority: z.coerce.number().int().min(1).max(10).optional().describe('Only tasks of this priority (1..10)'),
  agent_id: ulidSchema.optional().describe('Only tasks assigned to this agent'),
  provider_id: providerIdSchema.optional().describe('Only tasks routed to this provider'),
  tag: tagSchema.optional().describe('Only tasks carrying this tag'),
  created_by: ulidSchema.optional().describe('Only tasks created by this user'),
  created_after: isoDate.optional().describe('Only tasks created at or after this time (ISO 8601)'),
  created_before: isoDate.optional().describe('Only tasks created at or before this time (ISO 8601)'),
}).refine((q) => !q.created_after || !q.created_before || Date.parse(q.created_after) <= Date.parse(q.created_before), {
  message: 'created_after must not be later than created_before',
  path: ['created_before'],
});
export type ListTasksQuery = z.infer<typeof listTasksQuery>;

export const sessionsQuery = z.strictObject({ ...pageQuery });

// ---------------------------------------------------------------- execute (served by the tasks function)

export const MAX_WAIT_SECONDS = 25;
const waitSeconds = z.number().int().min(0).max(MAX_WAIT_SECONDS).default(MAX_WAIT_SECONDS);

export const executeBody = documentAs(z.strictObject({ ...taskInputFields, wait_seconds: waitSeconds }).superRefine(checkPayload), taskUnion({ wait_seconds: waitSeconds }), 'ExecuteTaskInput');
export type ExecuteInput = z.infer<typeof executeBody>;

export const MAX_BATCH_ITEMS = 50;
export const executeBatchBody = z.strictObject({
  items: z.array(createTaskBody).min(1).max(MAX_BATCH_ITEMS),
  max_concurrency: z.number().int().min(1).max(20).default(5),
  wait_seconds: waitSeconds,
});
export type ExecuteBatchInput = z.infer<typeof executeBatchBody>;

// ---------------------------------------------------------------- views

export const taskErrorView = z.object({ code: z.string(), message: z.string(), retryable: z.boolean() });
export type TaskError = z.infer<typeof taskErrorView>;

export const taskResultView = z
  .object({ output: z.string(), output_truncated: z.boolean().optional() })
  .catchall(z.unknown());
export type TaskResult = z.infer<typeof taskResultView>;

export const taskView = z.object({
  task_id: z.string(),
  type: z.enum(TASK_TYPES),
  title: z.string(),
  status: z.enum(TASK_STATUSES),
  priority: z.number().int(),
  payload: z.record(z.string(), z.unknown()),
  result: taskResultView.nullable(),
  error: taskErrorView.nullable(),
  attempts: z.number().int(),
  max_attempts: z.number().int(),
  timeout_seconds: z.number().int(),
  max_cost_usd: z.number().nullable(),
  agent_id: z.string().nullable(),
  provider_id: z.string().nullable(),
  model: z.string().nullable(),
  tokens_in: z.number().int(),
  tokens_out: z.number().int(),
  cost_usd: z.number(),
  created_by: z.string(),
  created_at: isoDate,
  updated_at: isoDate,
  queued_at: isoDate.nullable(),
  started_at: isoDate.nullable(),
  completed_at: isoDate.nullable(),
  duration_ms: z.number().int().nullable(),
  next_attempt_at: isoDate.nullable().describe('When a queued task may run next (retry backoff, quota or concurrency wait)'),
  waiting_reason: z.enum(['retry_backoff', 'quota', 'concurrency', 'provider_unavailable', 'resources']).nullable(),
  resources: resourceRequest.nullable().optional().describe('Resources the task declared (null: its type\'s defaults)'),
  tags: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  workflow_execution_id: z.string().nullable(),
  workflow_step_id: z.string().nullable(),
  batch_id: z.string().nullable(),
  version: z.number().int().describe('Increases with every change; order live updates by it'),
});
export type TaskView = z.infer<typeof taskView>;

export const sessionView = z.object({
  session_id: z.string(),
  task_id: z.string(),
  attempt: z.number().int(),
  agent_id: z.string().nullable(),
  provider_id: z.string().nullable(),
  model: z.string().nullable(),
  system: z.string().nullable(),
  prompt: z.string(),
  prompt_truncated: z.boolean(),
  response: z.string().nullable(),
  response_truncated: z.boolean(),
  tokens_in: z.number().int(),
  tokens_out: z.number().int(),
  cost_usd: z.number(),
  latency_ms: z.number().int(),
  started_at: isoDate,
  finished_at: isoDate,
  outcome: z.enum(['completed', 'failed', 'retrying', 'cancelled', 'lost', 'interrupted']),
  error: taskErrorView.nullable(),
});
export type SessionView = z.infer<typeof sessionView>;

export const statsView = z.object({
  total: z.number().int(),
  by_status: z.record(z.string(), z.number().int()),
  by_type: z.record(z.string(), z.number().int()),
  by_priority: z.record(z.string(), z.number().int()),
  success_rate: z.number().nullable().describe('completed / (completed + failed); null before any task finished'),
  duration_ms: z.object({
    count: z.number().int(),
    mean: z.number().nullable(),
    p50: z.number().nullable(),
    p95: z.number().nullable(),
    buckets: z.array(z.object({ le_ms: z.number().nullable(), count: z.number().int() })),
  }),
  tokens: z.object({ input: z.number().int(), output: z.number().int(), total: z.number().int() }),
  cost_usd: z.number(),
  attempts: z.object({ total: z.number().int(), retried: z.number().int() }),
  scope: z.enum(['all', 'own']).describe('all: every task (tasks:read_all); own: the caller\'s own tasks'),
  truncated: z.boolean().describe('own scope only: the caller has more tasks than were counted (the newest 5,000 are)'),
});
export type StatsView = z.infer<typeof statsView>;

export const executeView = z.object({ task: taskView });
export const batchView = z.object({
  batch_id: z.string(),
  items: z.array(
    z.object({
      index: z.number().int(),
      task_id: z.string(),
      status: z.enum(TASK_STATUSES),
      result: taskResultView.nullable(),
      error: taskErrorView.nullable(),
    }),
  ),
  completed: z.number().int(),
  failed: z.number().int(),
  unfinished: z.number().int(),
});
