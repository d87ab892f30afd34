/**
 * The workflow definition format: what `POST /api/v1/workflows` takes and what every version stores.
 * The schema checks shapes; `validateDefinition` (validation.ts) checks everything that needs the whole
 * graph (dependencies, cycles, templates, conditions, types).
 */
import * as z from 'zod';
import { jsonObject, cleanText } from '../platform/api/schemas.js';

/** A step runs as a task: its type is one of the task types. */
export { TASK_TYPES as STEP_TYPES } from '../tasks/status.js';
export type { TaskType as StepType } from '../tasks/status.js';

export const MAX_STEPS = 200;
/** Shape limit, above MAX_STEPS so that validation can name the "too many steps" problem itself. */
const MAX_STEPS_ACCEPTED = 1000;
export const MAX_PARALLEL_LIMIT = 50;
export const DEFAULT_MAX_PARALLEL = 5;
/**
 * Every run ends within this (also the timeout of a run whose definition sets none): the engine's
 * polling loop must stay within a Step Functions execution's 25 000-event history.
 */
export const MAX_WORKFLOW_TIMEOUT_SECONDS = 24 * 3600;
export const MAX_STEP_TIMEOUT_SECONDS = 24 * 3600;

/**
 * Step ids are what templates and conditions name (`steps.<id>.output`), so they are restricted to
 * characters a condition can write without quoting.
 */
export const STEP_ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
export const VARIABLE_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export const variableValue = z.union([z.string().max(10_000), z.number(), z.boolean()]);
export type VariableValue = z.infer<typeof variableValue>;

export const variablesSchema = z
  .record(z.string().regex(VARIABLE_NAME_PATTERN, 'variable names are letters, digits and _ (not starting with a digit)'), variableValue)
  .refine((v) => Object.keys(v).length <= 100, { message: 'at most 100 variables' });

export const retrySchema = z.strictObject({
  max_attempts: z.number().int().min(1).max(10),
  backoff_seconds: z.number().int().min(0).max(3600).default(0),
});

export const stepSchema = z.strictObject({
  id: z.string().regex(STEP_ID_PATTERN, 'step ids are 1-64 letters, digits and _ (not starting with a digit)'),
  name: cleanText(z.string().min(1).max(200)).optional(),
  // Checked by validation (error code `unknown_type`) rather than here, so validate can report it.
  type: z.string().min(1).max(64),
  payload: jsonObject().default({}),
  depends_on: z.array(z.string().max(64)).max(MAX_STEPS_ACCEPTED).default([]),
  condition: z.string().min(1).max(2000).optional(),
  provider_id: cleanText(z.string().min(1).max(128)).optional(),
  agent_id: cleanText(z.string().min(1).max(128)).optional(),
  retry: retrySchema.optional(),
  timeout_seconds: z.number().int().min(1).max(MAX_STEP_TIMEOUT_SECONDS).optional(),
});

export const definitionSchema = z.strictObject({
  name: cleanText(z.string().trim().min(1).max(200)),
  description: cleanText(z.string().max(2000), { multiline: true }).optional(),
  variables: variablesSchema.optional(),
  max_parallel: z.number().int().min(1).max(MAX_PARALLEL_LIMIT).default(DEFAULT_MAX_PARALLEL),
  on_failure: z.enum(['fail_fast', 'continue']).default('fail_fast'),
  timeout_seconds: z.number().int().min(1).max(MAX_WORKFLOW_TIMEOUT_SECONDS).optional(),
  steps: z.array(stepSchema).min(1).max(MAX_STEPS_ACCEPTED),
});

export type WorkflowDefinition = z.infer<typeof definitionSchema>;
export type StepDefinition = z.infer<typeof stepSchema>;
export type OnFailure = WorkflowDefinition['on_failure'];
