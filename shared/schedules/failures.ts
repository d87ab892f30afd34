import type { Deps } from '../platform/runtime.js';
import { ScheduleRepository } from './repo.js';
import { firingKeyOf, type FirePayload } from './schedule.js';

/** Longest error text kept on a schedule. */
const MAX_ERROR_CHARS = 500;

export type DeadLetteredFiringOutcome = 'recorded' | 'already_recorded' | 'no_schedule';

/**
 * A firing that reached a failure queue: Lambda's retries of schedule-fire ran out (AsyncFailureQueue)
 * or the Scheduler could not deliver it (ScheduleDeadLetterQueue). It is recorded as the schedule's
 * failed firing, with the error as `last_error`, so the API shows it. A firing recorded meanwhile (a
 * retry that got through after all) keeps its outcome: a firing is recorded once. A claim its claimer
 * left `starting` is recorded as failed; a claim given back is claimed first so that the firing's
 * record is whole (with its expiry) before it is recorded.
 */
export async function recordDeadLetteredFiring(deps: Deps, payload: FirePayload, error: string): Promise<DeadLetteredFiringOutcome> {
  const repo = new ScheduleRepository(deps.store);
  const schedule = await repo.get(payload.schedule_id);
  if (!schedule) return 'no_schedule';
  const now = deps.clock.now();
  const scheduledFor = firingKeyOf(payload, now);
  if (!(await repo.claimFiring(schedule.schedule_id, scheduledFor, now))) {
    const firing = await repo.getFiring(schedule.schedule_id, scheduledFor);
    if (firing && firing.outcome !== 'starting') return 'already_recorded';
  }
  const reason = `dead-lettered after retries: ${error}`.slice(0, MAX_ERROR_CHARS);
  await repo.recordFiring(schedule, { scheduledFor, firedAt: now, outcome: 'failed', executionId: null, reason, nextRunAt: schedule.next_run_at });
  return 'recorded';
}
