/**
 * Workflow schedules: stored in the table and kept in step with the Scheduler (EventBridge Scheduler
 * on AWS, the LocalScheduler locally). Every change writes the table first and then the Scheduler; when
 * the Scheduler call fails the table write is undone, so that no half-made schedule remains.
 */
import { newUlid } from '../platform/ids.js';
import type { Deps } from '../platform/runtime.js';
import { scheduleService } from '../platform/use/scheduler.js';
import type { Principal } from '../platform/principal.js';
import { canManage } from '../platform/principal.js';
import { conflict, dependencyUnavailable, forbidden, notFound } from '../platform/errors.js';
import { logger } from '../platform/logger.js';
import { FUNCTIONS } from '../platform/infra.js';
import { retryOnConflict, VersionConflictError } from '../platform/store/conflicts.js';
import { toScheduleExpression } from '../platform/cron.js';
import {
  firePayloadOf,
  firingKeyOf,
  isPermanentFiringError,
  nextRunAt,
  overlapDecision,
  schedulerNameOf,
  upcomingRuns,
  type CreateScheduleInput,
  type FirePayload,
  type UpdateScheduleInput,
} from './schedule.js';
import { ScheduleRepository, type ScheduleRecord } from './repo.js';
import type { ExecutionRecord } from '../workflows/repo.js';
import { findExecution, findWorkflow } from '../workflows/reads.js';
import { accountStanding } from '../auth/accounts.js';
import { resumeExecution, settledExecution, startExecution, type ExecutionView } from '../workflows/service.js';

const schedules = (deps: Deps) => new ScheduleRepository(deps.store);
const UPCOMING_RUNS = 5;

export function scheduleView(s: ScheduleRecord, now: Date) {
  return {
    schedule_id: s.schedule_id,
    workflow_id: s.workflow_id,
    name: s.name,
    cron_expression: s.cron_expression,
    timezone: s.timezone,
    schedule_expression: toScheduleExpression(s.cron_expression),
    variables: s.variables,
    overlap: s.overlap,
    status: s.status,
    paused_reason: s.status === 'paused' ? (s.paused_reason ?? null) : null,
    next_run_at: s.next_run_at,
    upcoming_runs: s.status === 'active' ? upcomingRuns(s.cron_expression, s.timezone, now, UPCOMING_RUNS).map((d) => d.toISOString()) : [],
    last_run_at: s.last_run_at,
    last_execution_id: s.last_execution_id,
    last_outcome: s.last_outcome,
    last_error: s.last_outcome === 'failed' ? (s.last_error ?? null) : null,
    runs: s.runs,
    skipped_runs: s.skipped_runs,
    last_skipped_at: s.last_skipped_at,
    created_by: s.created_by,
    created_at: s.created_at,
    updated_at: s.updated_at,
  };
}
export type ScheduleView = ReturnType<typeof scheduleView>;

function definitionOf(s: ScheduleRecord) {
  return {
    name: schedulerNameOf(s.schedule_id),
    cron: s.cron_expression,
    timezone: s.timezone,
    enabled: s.status === 'active',
    payload: firePayloadOf(s.schedule_id),
  };
}

async function syncScheduler(deps: Deps, s: ScheduleRecord): Promise<void> {
  await scheduleService(deps).upsert(definitionOf(s));
}

const nextRunOf = (s: Pick<ScheduleRecord, 'cron_expression' | 'timezone' | 'status'>, after: Date) =>
  s.status === 'active' ? (nextRunAt(s.cron_expression, s.timezone, after)?.toISOString() ?? null) : null;

async function requireSchedule(deps: Deps, scheduleId: string): Promise<ScheduleRecord> {
  const schedule = await schedules(deps).get(scheduleId);
  if (!schedule) throw notFound('Schedule');
  return schedule;
}

function assertManages(principal: Principal, schedule: ScheduleRecord): void {
  if (!canManage(principal, schedule.created_by, 'workflows:manage_all')) throw forbidden('Only the owner (or workflows:manage_all) may change this schedule');
}

export async function createSchedule(deps: Deps, principal: Principal, input: CreateScheduleInput): Promise<ScheduleView> {
  const workflow = await findWorkflow(deps, input.workflow_id);
  if (!workflow) throw notFound('Workflow');
  const now = deps.clock.now();
  const nowIso = now.toISOString();
  const status = input.enabled ? 'active' : 'paused';
  const record: ScheduleRecord = {
    schedule_id: newUlid(now.getTime()),
    workflow_id: input.workflow_id,
    name: input.name,
    cron_expression: input.cron_expression.trim(),
    timezone: input.timezone,
    variables: input.variables ?? {},
    overlap: input.overlap,
    status,
    paused_reason: null,
    next_run_at: nextRunOf({ ...input, status }, now),
    last_run_at: null,
    last_execution_id: null,
    last_outcome: null,
    runs: 0,
    skipped_runs: 0,
    last_skipped_at: null,
    created_by: principal.userId,
    created_by_username: principal.username,
    created_at: nowIso,
    updated_at: nowIso,
    rev: 1,
  };
  await schedules(deps).create(record);
  try {
    await syncScheduler(deps, record);
  } catch (err) {
    logger.error('scheduler upsert failed; schedule not created', { schedule_id: record.schedule_id, error: (err as Error).message });
    await schedules(deps).delete(record);
    throw dependencyUnavailable('The scheduler');
  }
  return scheduleView(record, now);
}

export async function getSchedule(deps: Deps, scheduleId: string): Promise<ScheduleView> {
  return scheduleView(await requireSchedule(deps, scheduleId), deps.clock.now());
}

export async function listSchedules(deps: Deps, filter: { workflow_id?: string }, limit: number, startKey?: Record<string, unknown>) {
  const page = await schedules(deps).list(filter, limit, startKey);
  const now = deps.clock.now();
  return { items: page.items.map((s) => scheduleView(s, now)), lastKey: page.lastKey };
}

/**
 * Writes the changed schedule, then tells the Scheduler; if the Scheduler refuses, the previous
 * record is written back (on the condition that nobody changed it meanwhile) and the answer is a 503.
 */
async function change(deps: Deps, before: ScheduleRecord, changes: Partial<ScheduleRecord>, recomputeNext: boolean): Promise<ScheduleRecord> {
  const now = deps.clock.now();
  const merged: ScheduleRecord = { ...before, ...changes, updated_at: now.toISOString() };
  if (recomputeNext) merged.next_run_at = nextRunOf(merged, now);
  let after: ScheduleRecord;
  try {
    after = await schedules(deps).replace(before, merged);
  } catch (err) {
    if (err instanceof VersionConflictError) throw conflict('The schedule was changed meanwhile; read it again and retry');
    throw err;
  }
  try {
    await syncScheduler(deps, after);
  } catch (err) {
    logger.error('scheduler upsert failed; schedule change undone', { schedule_id: before.schedule_id, error: (err as Error).message });
    await schedules(deps)
      .replace(after, { ...before, rev: after.rev })
      .catch((undoErr) => logger.error('schedule change could not be undone', { schedule_id: before.schedule_id, error: (undoErr as Error).message }));
    throw dependencyUnavailable('The scheduler');
  }
  return after;
}

export async function updateSchedule(deps: Deps, principal: Principal, scheduleId: string, input: UpdateScheduleInput): Promise<ScheduleView> {
  const before = await requireSchedule(deps, scheduleId);
  assertManages(principal, before);
  const { enabled, ...fields } = input;
  const changes: Partial<ScheduleRecord> = { ...fields };
  if (fields.cron_expression !== undefined) changes.cron_expression = fields.cron_expression.trim();
  if (enabled !== undefined) {
    changes.status = enabled ? 'active' : 'paused';
    changes.paused_reason = null;
  }
  const timing = fields.cron_expression !== undefined || fields.timezone !== undefined || enabled !== undefined;
  const after = await change(deps, before, changes, timing);
  return scheduleView(after, deps.clock.now());
}

export async function deleteSchedule(deps: Deps, principal: Principal, scheduleId: string): Promise<void> {
  const schedule = await requireSchedule(deps, scheduleId);
  assertManages(principal, schedule);
  try {
    await removeSchedule(deps, schedule);
  } catch (err) {
    if (err instanceof VersionConflictError) throw conflict('The schedule was changed meanwhile; read it again and retry');
    throw err;
  }
}

export async function pauseSchedule(deps: Deps, principal: Principal, scheduleId: string): Promise<ScheduleView> {
  const before = await requireSchedule(deps, scheduleId);
  assertManages(principal, before);
  if (before.status === 'paused') return scheduleView(before, deps.clock.now());
  return scheduleView(await change(deps, before, { status: 'paused', paused_reason: null }, true), deps.clock.now());
}

/** Resumes from now: the next run is the next instant after now, missed runs are not made up. */
export async function resumeSchedule(deps: Deps, principal: Principal, scheduleId: string): Promise<ScheduleView> {
  const before = await requireSchedule(deps, scheduleId);
  assertManages(principal, before);
  if (before.status === 'active') return scheduleView(before, deps.clock.now());
  return scheduleView(await change(deps, before, { status: 'active', paused_reason: null }, true), deps.clock.now());
}

/** Runs the schedule's workflow now, recorded as a manual run of the schedule (paused or not, overlap or not). */
/** `executionId`: the id an idempotent request chose; a run already stored under it is answered, not started again. */
export async function triggerSchedule(deps: Deps, principal: Principal, scheduleId: string, executionId?: string): Promise<ExecutionView> {
  const schedule = await requireSchedule(deps, scheduleId);
  assertManages(principal, schedule);
  const execution = await startExecution(deps, schedule.workflow_id, {
    variables: schedule.variables,
    trigger: 'manual',
    triggered_by: principal.username,
    schedule_id: schedule.schedule_id,
    actor: { userId: principal.userId, username: principal.username },
    ...(executionId ? { execution_id: executionId, answerExisting: true } : {}),
  });
  await schedules(deps).recordManualRun(schedule.schedule_id, execution.execution_id, deps.clock.now());
  return execution;
}

export interface FireResult {
  outcome: 'started' | 'skipped' | 'failed' | 'duplicate' | 'ignored';
  execution_id?: string;
  reason?: string;
}

/** Allowance for clock skew between the hosts that wrote a claim and that read it. */
export const FIRING_CLOCK_SKEW_SECONDS = 30;

/**
 * A claim still `starting` after this long cannot belong to a live invocation: the schedule-fire
 * function's timeout (60 s, FUNCTIONS.background in shared/platform/infra.ts) plus clock skew. It must
 * also fit Lambda's retries of a failed firing (SCHEDULE_FIRE_ASYNC: retries about 1 and 2 minutes
 * after the failed attempt ended): a claimer that died at once leaves the last retry about 180 s after
 * the claim, so a 90 s window lets that retry (if not already the first) take over with 90 s to spare;
 * a claimer that ran into its timeout is taken over by the first retry (about 120 s after the claim).
 * `test/unit/schedules/takeover.test.ts` checks these relations.
 */
export const FIRING_TAKEOVER_SECONDS = FUNCTIONS.background.timeoutSeconds + FIRING_CLOCK_SKEW_SECONDS;

/** A firing another invocation claimed less than FIRING_TAKEOVER_SECONDS ago and has not recorded yet. */
export class FiringInProgressError extends Error {
  constructor(scheduleId: string, scheduledFor: string) {
    super(`firing ${scheduledFor} of schedule ${scheduleId} is being started by another invocation; retry later`);
    this.name = 'FiringInProgressError';
  }
}

/**
 * A firing delivered by the Scheduler (at least once). The firing is claimed first, with the id its run
 * will have, so a redelivery starts nothing; with `overlap: "skip"` a firing while the schedule's
 * previous run is still going is recorded as skipped. A failure to start the run gives the claim back
 * and throws: the Scheduler invokes the function asynchronously, so Lambda retries the firing (twice,
 * about 1 and 2 minutes later; SCHEDULE_FIRE_ASYNC) and then sends it to the function's dead-letter
 * queue (AsyncFailureQueue), whose consumer records it as the schedule's last error. A retry that finds
 * the claim still `starting` after FIRING_TAKEOVER_SECONDS (its claimer died) takes it over: it completes
 * the firing with the run the claimer left (looked up by the claim's run id), or starts that run.
 */
export async function fireSchedule(deps: Deps, payload: FirePayload): Promise<FireResult> {
  const repo = schedules(deps);
  const schedule = await repo.get(payload.schedule_id);
  if (!schedule) return { outcome: 'ignored', reason: 'no such schedule' };
  if (schedule.status !== 'active') return { outcome: 'ignored', reason: 'the schedule is paused' };
  const now = deps.clock.now();
  const scheduledFor = firingKeyOf(payload, now);
  const nextRun = nextRunOf(schedule, new Date(Math.max(now.getTime(), Date.parse(scheduledFor))));
  // The run would act under the owner's id: an owner deleted, deactivated or without
  // workflows:execute may no longer run it. The firing is recorded as skipped and the schedule paused.
  const owner = await accountStanding(deps, schedule.created_by, 'workflows:execute');
  if (!owner.allowed) {
    if (!(await repo.claimFiring(schedule.schedule_id, scheduledFor, now))) return { outcome: 'duplicate' };
    const reason = `${owner.reason}; the schedule was paused`;
    await repo.recordFiring(schedule, { scheduledFor, firedAt: now, outcome: 'skipped', executionId: null, reason, nextRunAt: nextRun });
    await pauseBySystem(deps, schedule.schedule_id, owner.reason);
    logger.warn('schedule firing skipped: its owner may no longer run it', { schedule_id: schedule.schedule_id, owner: schedule.created_by, reason: owner.reason });
    return { outcome: 'skipped', reason };
  }
  let executionId = newUlid(now.getTime());
  if (!(await repo.claimFiring(schedule.schedule_id, scheduledFor, now, executionId))) {
    const takeover = await takeOverFiring(deps, schedule, scheduledFor, now);
    if ('outcome' in takeover) return takeover;
    executionId = takeover.executionId;
    const left = await findExecution(deps, executionId);
    if (left) return completeWithRun(deps, schedule, { scheduledFor, now, nextRun }, left);
  }

  if (schedule.last_execution_id) {
    let previous = await findExecution(deps, schedule.last_execution_id);
    // A run whose runner execution is gone (its starter died, its state machine run failed) would
    // otherwise keep every later firing skipped.
    if (previous && overlapDecision(schedule.overlap, previous.status) === 'skip') previous = await settledExecution(deps, previous);
    if (overlapDecision(schedule.overlap, previous?.status) === 'skip') {
      const reason = `the previous run ${schedule.last_execution_id} is still ${previous!.status}`;
      await repo.recordFiring(schedule, { scheduledFor, firedAt: now, outcome: 'skipped', executionId: null, reason, nextRunAt: nextRun });
      logger.info('schedule firing skipped (overlap)', { schedule_id: schedule.schedule_id, scheduled_for: scheduledFor });
      return { outcome: 'skipped', reason };
    }
  }

  let execution: ExecutionView;
  try {
    execution = await startExecution(deps, schedule.workflow_id, {
      variables: schedule.variables,
      trigger: 'schedule',
      triggered_by: `schedule:${schedule.name}`.slice(0, 200),
      schedule_id: schedule.schedule_id,
      actor: { userId: schedule.created_by, username: schedule.created_by_username },
      execution_id: executionId,
    });
  } catch (err) {
    if (isPermanentFiringError(err)) {
      // The workflow cannot run as the schedule asks (deleted, variables missing): retrying will not help.
      const reason = err.message;
      await repo.recordFiring(schedule, { scheduledFor, firedAt: now, outcome: 'failed', executionId: null, reason, nextRunAt: nextRun });
      return { outcome: 'failed', reason };
    }
    if (err instanceof VersionConflictError) {
      // The firing's run exists already (a claimer thought dead got that far after all): it is the run.
      const existing = await findExecution(deps, executionId);
      if (existing) return completeWithRun(deps, schedule, { scheduledFor, now, nextRun }, existing);
    }
    await repo.releaseFiring(schedule.schedule_id, scheduledFor, now);
    throw err;
  }
  await repo.recordFiring(schedule, { scheduledFor, firedAt: now, outcome: 'started', executionId: execution.execution_id, reason: null, nextRunAt: nextRun });
  return { outcome: 'started', execution_id: execution.execution_id };
}

/**
 * A firing already claimed: a duplicate, unless the claim is still `starting` after
 * FIRING_TAKEOVER_SECONDS, in which case it is taken over (conditionally: of two retries one wins) and
 * the firing's run id is answered for the caller to complete or start.
 */
async function takeOverFiring(deps: Deps, schedule: ScheduleRecord, scheduledFor: string, now: Date): Promise<FireResult | { executionId: string }> {
  const repo = schedules(deps);
  const firing = await repo.getFiring(schedule.schedule_id, scheduledFor);
  if (!firing || firing.outcome !== 'starting') return { outcome: 'duplicate' };
  const ageSeconds = (now.getTime() - Date.parse(firing.fired_at)) / 1000;
  // Throw rather than answer: a retry that counted as done would end Lambda's retries, and a
  // claimer that died just now would then lose the firing. A later retry finds it recorded or takes it over.
  if (!(ageSeconds >= FIRING_TAKEOVER_SECONDS)) throw new FiringInProgressError(schedule.schedule_id, scheduledFor);
  if (!firing.planned_execution_id) {
    // Claimed by a version that did not note the run id: whether it left a run cannot be told.
    logger.warn('schedule firing left starting, without a run id: not taken over', { schedule_id: schedule.schedule_id, scheduled_for: scheduledFor });
    return { outcome: 'duplicate', reason: 'the firing was left starting by an earlier version' };
  }
  if (!(await repo.takeOverFiring(schedule.schedule_id, scheduledFor, firing.fired_at, now))) return { outcome: 'duplicate' };
  logger.warn('schedule firing taken over from a claimer that died', {
    schedule_id: schedule.schedule_id,
    scheduled_for: scheduledFor,
    claimed_at: firing.fired_at,
    execution_id: firing.planned_execution_id,
  });
  return { executionId: firing.planned_execution_id };
}

/** Records a taken-over firing with the run its claimer left, started on the runner if it was not yet. */
async function completeWithRun(
  deps: Deps,
  schedule: ScheduleRecord,
  firing: { scheduledFor: string; now: Date; nextRun: string | null },
  execution: ExecutionRecord,
): Promise<FireResult> {
  const repo = schedules(deps);
  try {
    await resumeExecution(deps, execution);
  } catch (err) {
    // The runner refused the left run (now failed): give the firing back for the Scheduler's retry.
    await repo.releaseFiring(schedule.schedule_id, firing.scheduledFor, firing.now);
    throw err;
  }
  await repo.recordFiring(schedule, {
    scheduledFor: firing.scheduledFor,
    firedAt: firing.now,
    outcome: 'started',
    executionId: execution.execution_id,
    reason: null,
    nextRunAt: firing.nextRun,
  });
  return { outcome: 'started', execution_id: execution.execution_id, reason: 'the run its first attempt left' };
}

/**
 * The local scheduler keeps schedules in memory: at start-up every stored active schedule is
 * registered again, with its next run recomputed from now (runs missed while stopped are not replayed).
 */
export async function restoreSchedules(deps: Deps): Promise<number> {
  const now = deps.clock.now();
  const active = await schedules(deps).allActive();
  for (const schedule of active) {
    await syncScheduler(deps, schedule);
    const next = nextRunOf(schedule, now);
    if (next !== schedule.next_run_at) {
      await schedules(deps)
        .replace(schedule, { ...schedule, next_run_at: next })
        .catch((err) => logger.warn('schedule next run not updated', { schedule_id: schedule.schedule_id, error: (err as Error).message }));
    }
  }
  return active.length;
}

/**
 * Removes a schedule from EventBridge Scheduler, then from the table: if the Scheduler call fails
 * nothing is removed (503), so the table never shows a schedule that still fires, nor loses one.
 * A change (or a firing) between the read and the delete moves the revision: read it again and remove
 * again (the change may have re-registered it with the Scheduler).
 */
export async function removeSchedule(deps: Deps, schedule: ScheduleRecord): Promise<void> {
  const repo = schedules(deps);
  try {
    await retryOnConflict(async (attempt) => {
      const current = attempt === 1 ? schedule : await repo.get(schedule.schedule_id);
      if (!current) return;
      try {
        await scheduleService(deps).remove(schedulerNameOf(current.schedule_id));
      } catch (err) {
        logger.error('scheduler remove failed', { schedule_id: current.schedule_id, error: (err as Error).message });
        throw dependencyUnavailable('The scheduler');
      }
      await repo.delete(current);
    });
  } catch (err) {
    if (err instanceof VersionConflictError) throw conflict('The schedule keeps changing meanwhile; read it again and retry');
    throw err;
  }
}

/**
 * Pauses a schedule on the system's behalf, saying why (`paused_reason`, shown in the API until a user
 * resumes it). The pause is kept in the table even if the Scheduler cannot be told: a firing of a paused
 * schedule is ignored, and a resume registers it again.
 */
async function pauseBySystem(deps: Deps, scheduleId: string, reason: string): Promise<boolean> {
  const repo = schedules(deps);
  return retryOnConflict(async () => {
    const current = await repo.get(scheduleId);
    if (!current || current.status === 'paused') return false;
    const now = deps.clock.now();
    const after = await repo.replace(current, { ...current, status: 'paused', paused_reason: reason, next_run_at: null, updated_at: now.toISOString() });
    await syncScheduler(deps, after).catch((err) =>
      logger.error('scheduler not told of a pause; its firings are ignored until resumed', { schedule_id: scheduleId, error: (err as Error).message }),
    );
    return true;
  });
}

/**
 * Pauses every active schedule a user created (the user is deleted): their firings would run under an
 * id that no longer exists. Answers the ids of the schedules paused.
 */
export async function pauseSchedulesOfOwner(deps: Deps, userId: string, reason: string): Promise<string[]> {
  const owned = await schedules(deps).allOfOwner(userId);
  const paused: string[] = [];
  for (const schedule of owned) {
    if (schedule.status !== 'active') continue;
    if (await pauseBySystem(deps, schedule.schedule_id, reason)) paused.push(schedule.schedule_id);
  }
  return paused;
}

/** Removes every schedule of a workflow (its deletion); answers their ids. */
export async function removeSchedulesOfWorkflow(deps: Deps, workflowId: string): Promise<string[]> {
  const all = await schedules(deps).allOfWorkflow(workflowId);
  for (const schedule of all) await removeSchedule(deps, schedule);
  return all.map((s) => s.schedule_id);
}

/** Active schedules, and those overdue by `graceSeconds` without a firing recorded. */
export async function scheduleCounts(deps: Deps, now: Date, graceSeconds: number): Promise<{ active: number; overdue: number }> {
  const [active, overdue] = await Promise.all([schedules(deps).activeCount(), schedules(deps).overdueCount(new Date(now.getTime() - graceSeconds * 1000))]);
  return { active, overdue };
}
