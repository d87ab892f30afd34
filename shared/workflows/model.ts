/** Request and response schemas of the workflow routes (section 4 of the API reference). */
import * as z from 'zod';
import { booleanQuery, isoDate, pageQuery, ulidSchema, cleanText } from '../platform/api/schemas.js';
import { definitionSchema, variablesSchema, variableValue } from './definition.js';
import { EXECUTION_STATUSES, STEP_STATUSES } from './engine.js';

export const workflowIdParams = z.object({ workflow_id: ulidSchema });
export const executionParams = z.object({ workflow_id: ulidSchema, execution_id: ulidSchema });

export const createWorkflowBody = definitionSchema;
export const updateWorkflowBody = definitionSchema;
export const validateWorkflowBody = definitionSchema;

export const listWorkflowsQuery = z.strictObject({
  ...pageQuery,
  created_by: ulidSchema.optional().describe('Only workflows created by this user'),
  /** Case-insensitive substring of the name. */
  search: z.string().min(1).max(200).optional().describe('Case-insensitive substring of the name'),
});

export const getWorkflowQuery = z.strictObject({
  version: z.coerce.number().int().min(1).optional().describe('A stored version of the workflow (default: the current one)'),
});

export const deleteWorkflowQuery = z.strictObject({ force: booleanQuery.optional().describe('`true` cancels unfinished runs and deletes anyway (otherwise 409 while runs are unfinished)') });

export const executeBody = z.strictObject({
  variables: variablesSchema.optional(),
  /** A label for who or what started the run (a CI job, a person); defaults to the caller's username. */
  triggered_by: cleanText(z.string().min(1).max(200)).optional(),
});

export const cancelExecutionBody = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() });

export const listExecutionsQuery = z.strictObject({
  ...pageQuery,
  status: z.enum(EXECUTION_STATUSES).optional().describe('Only runs in this status'),
});

const issue = z.object({ code: z.string(), message: z.string(), path: z.string() });

export const validationView = z.object({
  valid: z.boolean(),
  errors: z.array(issue),
  warnings: z.array(issue),
  levels: z.array(z.array(z.string())),
  critical_path: z.array(z.string()),
  truncated: z.boolean().describe('More than 100 errors or 100 warnings were found; the first 100 of each are listed'),
});

export const workflowView = z.object({
  workflow_id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  version: z.number().int(),
  definition: definitionSchema,
  step_count: z.number().int(),
  levels: z.array(z.array(z.string())),
  critical_path: z.array(z.string()),
  warnings: z.array(issue),
  created_by: z.string(),
  created_by_username: z.string(),
  created_at: isoDate,
  updated_at: isoDate,
});

export const workflowSummaryView = workflowView.omit({ definition: true, levels: true, critical_path: true, warnings: true });

const stepError = z.object({ code: z.string(), message: z.string() });

export const stepView = z.object({
  step_id: z.string(),
  name: z.string().nullable(),
  type: z.string(),
  depends_on: z.array(z.string()),
  status: z.enum(STEP_STATUSES),
  task_id: z.string().nullable(),
  /** Every task this step ran, one per attempt, oldest first. */
  task_ids: z.array(z.string()),
  attempts: z.number().int(),
  started_at: isoDate.nullable(),
  completed_at: isoDate.nullable(),
  duration_ms: z.number().int().nullable(),
  retry_at: isoDate.nullable(),
  output: z.string().nullable(),
  output_truncated: z.boolean(),
  error: stepError.nullable(),
  skip_reason: z.string().nullable(),
});

export const executionSummaryView = z.object({
  execution_id: z.string(),
  workflow_id: z.string(),
  workflow_name: z.string(),
  workflow_version: z.number().int(),
  status: z.enum(EXECUTION_STATUSES),
  trigger: z.enum(['api', 'schedule', 'manual']),
  triggered_by: z.string(),
  schedule_id: z.string().nullable(),
  variables: z.record(z.string(), variableValue),
  created_by: z.string(),
  created_at: isoDate,
  started_at: isoDate.nullable(),
  completed_at: isoDate.nullable(),
  duration_ms: z.number().int().nullable(),
  timeout_at: isoDate.nullable(),
  error: stepError.nullable(),
});

export const executionView = executionSummaryView.extend({
  output: z.record(z.string(), z.string()).nullable(),
  progress: z.object({
    total: z.number().int(),
    pending: z.number().int(),
    running: z.number().int(),
    completed: z.number().int(),
    failed: z.number().int(),
    cancelled: z.number().int(),
    skipped: z.number().int(),
  }),
  steps: z.array(stepView),
});

const checkView = z.object({ status: z.enum(['healthy', 'unhealthy']), latency_ms: z.number(), error: z.string().nullable() });

export const workflowHealthView = z.object({
  status: z.enum(['healthy', 'degraded', 'unhealthy']),
  state_machine: checkView,
  scheduler: checkView,
  running_executions: z.number().int(),
  failed_last_24h: z.number().int(),
  schedules: z.object({ active: z.number().int(), overdue: z.number().int() }),
  checked_at: isoDate,
});
