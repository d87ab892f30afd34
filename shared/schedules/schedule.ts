/**
 * Workflow schedules (pure): request schemas, the Scheduler-side name and payload of a schedule, and
 * the decisions a firing takes. The cron semantics themselves (DST included) are in cron.ts.
 */
import * as z from 'zod';
import { isoDate, pageQuery, ulidSchema, cleanText } from '../platform/api/schemas.js';
import { variablesSchema, variableValue } from '../workflows/definition.js';
import { CronError, isValidTimezone, nextRuns, toScheduleExpression } from '../platform/cron.js';

export const SCHEDULE_STATUSES = ['active', 'paused'] as const;
export type ScheduleStatus = (typeof SCHEDULE_STATUSES)[number];
export const OVERLAP_POLICIES = ['skip', 'allow'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

/** Refuses what EventBridge Scheduler would refuse, naming the problem (the 422 names the field). */
const cronExpression = z
  .string()
  .max(200)
  .superRefine((value, ctx) => {
    try {
      toScheduleExpression(value);
    } catch (err) {
      if (!(err instanceof CronError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
    }
  });

const timezone = z
  .string()
  .min(1)
  .max(64)
  .refine(isValidTimezone, { message: 'unknown time zone: use an IANA name such as Europe/Paris or America/New_York' });

export const createScheduleBody = z.strictObject({
  workflow_id: ulidSchema,
  name: cleanText(z.string().trim().min(1).max(200)),
  cron_expression: cronExpression,
  timezone: timezone.default('UTC'),
  variables: variablesSchema.optional(),
  overlap: z.enum(OVERLAP_POLICIES).default('skip'),
  enabled: z.boolean().default(true),
});
export type CreateScheduleInput = z.infer<typeof createScheduleBody>;

export const updateScheduleBody = z
  .strictObject({
    name: cleanText(z.string().trim().min(1).max(200)).optional(),
    cron_expression: cronExpression.optional(),
    timezone: timezone.optional(),
    variables: variablesSchema.optional(),
    overlap: z.enum(OVERLAP_POLICIES).optional(),
    enabled: z.boolean().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'at least one field is required' });
export type UpdateScheduleInput = z.infer<typeof updateScheduleBody>;

export const scheduleIdParams = z.object({ schedule_id: ulidSchema });
export const listSchedulesQuery = z.strictObject({ ...pageQuery, workflow_id: ulidSchema.optional().describe('Only schedules of this workflow') });

export const scheduleView = z.object({
  schedule_id: z.string(),
  workflow_id: z.string(),
  name: z.string(),
  cron_expression: z.string(),
  timezone: z.string(),
  /** The same schedule as EventBridge Scheduler runs it. */
  schedule_expression: z.string(),
  variables: z.record(z.string(), variableValue),
  overlap: z.enum(OVERLAP_POLICIES),
  status: z.enum(SCHEDULE_STATUSES),
  /** Why the system paused the schedule (e.g. its owner was deleted or lost workflows:execute); null otherwise. */
  paused_reason: z.string().nullable(),
  next_run_at: isoDate.nullable(),
  upcoming_runs: z.array(isoDate),
  last_run_at: isoDate.nullable(),
  last_execution_id: z.string().nullable(),
  last_outcome: z.enum(['started', 'skipped', 'failed']).nullable(),
  /** Why the last firing failed (e.g. it could not start the run, or it was dead-lettered after Lambda's retries); null unless `last_outcome` is `failed`. */
  last_error: z.string().nullable(),
  runs: z.number().int(),
  skipped_runs: z.number().int(),
  last_skipped_at: isoDate.nullable(),
  created_by: z.string(),
  created_at: isoDate,
  updated_at: isoDate,
});

/** EventBridge Scheduler schedule name of a schedule (1-64 of [0-9a-zA-Z-_.]). */
export function schedulerNameOf(scheduleId: string): string {
  return `wf-${scheduleId}`;
}

/**
 * What the Scheduler delivers to the schedule-fire function. `scheduled_time` is filled in by the
 * Scheduler (context attribute), so a redelivered firing can be recognised.
 */
export function firePayloadOf(scheduleId: string): Record<string, unknown> {
  return { schedule_id: scheduleId, scheduled_time: '<aws.scheduler.scheduled-time>' };
}

export const firePayloadSchema = z.object({
  schedule_id: ulidSchema,
  scheduled_time: z.string().optional(),
});
export type FirePayload = z.infer<typeof firePayloadSchema>;

/** The next firing strictly after `after` (EventBridge's DST rule), or null when there is none. */
export function nextRunAt(cron: string, tz: string, after: Date): Date | null {
  return nextRuns(cron, tz, after, 1)[0] ?? null;
}

export function upcomingRuns(cron: string, tz: string, after: Date, count: number): Date[] {
  return nextRuns(cron, tz, after, count);
}

/**
 * Whether a firing starts a run: with `overlap: "skip"` a firing while the schedule's previous run is
 * still going is skipped (and recorded as such).
 */
export function overlapDecision(overlap: OverlapPolicy, previousRunStatus: string | undefined): 'start' | 'skip' {
  if (overlap === 'allow' || previousRunStatus === undefined) return 'start';
  return previousRunStatus === 'pending' || previousRunStatus === 'running' ? 'skip' : 'start';
}

/** A firing without a scheduled time (a manual test delivery) is identified by the minute it arrived. */
export function firingKeyOf(payload: FirePayload, now: Date): string {
  const scheduled = payload.scheduled_time ? Date.parse(payload.scheduled_time) : NaN;
  const at = Number.isNaN(scheduled) ? new Date(Math.floor(now.getTime() / 60_000) * 60_000) : new Date(scheduled);
  return at.toISOString();
}

/**
 * Codes of the errors by which starting a firing's run says it cannot start as the schedule asks: the
 * workflow (or its version) is gone, the schedule's variables do not satisfy it, its owner may no
 * longer run it. Retrying cannot help, so the firing is recorded as failed.
 */
export const PERMANENT_FIRING_ERROR_CODES: readonly string[] = ['bad_request', 'forbidden', 'not_found', 'conflict', 'invalid_state', 'validation_error'];

/**
 * Whether a firing's failure to start its run is permanent (recorded as failed) rather than transient
 * (thrown, so that EventBridge Scheduler retries the firing, then dead-letters it): an outage, a
 * concurrent change or a firing still in progress is transient.
 */
export function isPermanentFiringError(err: unknown): err is Error & { code: string } {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && PERMANENT_FIRING_ERROR_CODES.includes(code);
}
