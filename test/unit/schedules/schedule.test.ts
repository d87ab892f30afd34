import { describe, expect, it } from 'vitest';
import {
  createScheduleBody,
  firePayloadOf,
  firingKeyOf,
  isPermanentFiringError,
  nextRunAt,
  overlapDecision,
  schedulerNameOf,
  updateScheduleBody,
  upcomingRuns,
} from '../../../shared/schedules/schedule.js';
import { SCHEDULE_NAME_PATTERN } from '../../../shared/platform/service-rules.js';
import { dependencyUnavailable, notFound, rateLimited, validationError } from '../../../shared/platform/errors.js';

const WORKFLOW = '01JD0000000000000000000000';

describe('schedule requests', () => {
  it('names the field of an invalid cron expression or time zone', () => {
    const bad = createScheduleBody.safeParse({ workflow_id: WORKFLOW, name: 'n', cron_expression: '61 * * * *', timezone: 'Mars/Olympus' });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => [i.path.join('.'), i.message]);
    expect(paths).toEqual([
      ['cron_expression', 'minute value 61 is out of range 0-59'],
      ['timezone', expect.stringContaining('unknown time zone')],
    ]);
  });

  it('refuses what EventBridge Scheduler cannot run and unknown fields', () => {
    expect(createScheduleBody.safeParse({ workflow_id: WORKFLOW, name: 'n', cron_expression: '0 9 1 * MON' }).success).toBe(false);
    expect(createScheduleBody.safeParse({ workflow_id: WORKFLOW, name: 'n', cron_expression: '0 9 * * *', status: 'active' }).success).toBe(false);
    expect(updateScheduleBody.safeParse({}).success).toBe(false);
  });

  it('fills in defaults: UTC, overlap skip, enabled', () => {
    expect(createScheduleBody.parse({ workflow_id: WORKFLOW, name: 'n', cron_expression: '*/5 * * * *' })).toMatchObject({ timezone: 'UTC', overlap: 'skip', enabled: true });
  });
});

describe('firing instants (EventBridge Scheduler DST rule)', () => {
  it('skips 02:30 America/New_York on the spring-forward day (2026-03-08)', () => {
    const runs = upcomingRuns('30 2 * * *', 'America/New_York', new Date('2026-03-06T12:00:00Z'), 3).map((d) => d.toISOString());
    // 03-07 02:30 EST = 07:30Z; 03-08 has no 02:30; 03-09 02:30 EDT = 06:30Z.
    expect(runs).toEqual(['2026-03-07T07:30:00.000Z', '2026-03-09T06:30:00.000Z', '2026-03-10T06:30:00.000Z']);
  });

  it('fires 01:30 America/New_York once on the fall-back day (2026-11-01)', () => {
    const runs = upcomingRuns('30 1 * * *', 'America/New_York', new Date('2026-10-31T12:00:00Z'), 3).map((d) => d.toISOString());
    // 10-31 01:30 EDT would be before the start; 11-01 01:30 EDT = 05:30Z (not again at 06:30Z); 11-02 01:30 EST = 06:30Z.
    expect(runs).toEqual(['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z', '2026-11-03T06:30:00.000Z']);
  });

  it('the next run is strictly after the given instant', () => {
    expect(nextRunAt('0 * * * *', 'UTC', new Date('2026-01-01T10:00:00Z'))!.toISOString()).toBe('2026-01-01T11:00:00.000Z');
  });
});

describe('firings', () => {
  it('skips only with overlap "skip" while the previous run has not ended', () => {
    expect(overlapDecision('skip', 'running')).toBe('skip');
    expect(overlapDecision('skip', 'pending')).toBe('skip');
    expect(overlapDecision('skip', 'completed')).toBe('start');
    expect(overlapDecision('skip', undefined)).toBe('start');
    expect(overlapDecision('allow', 'running')).toBe('start');
  });

  it('identifies a firing by its scheduled time (so a redelivery is recognised)', () => {
    const now = new Date('2026-05-05T10:00:41.123Z');
    expect(firingKeyOf({ schedule_id: WORKFLOW, scheduled_time: '2026-05-05T10:00:00Z' }, now)).toBe('2026-05-05T10:00:00.000Z');
    expect(firingKeyOf({ schedule_id: WORKFLOW, scheduled_time: '<aws.scheduler.scheduled-time>' }, now)).toBe('2026-05-05T10:00:00.000Z');
    expect(firingKeyOf({ schedule_id: WORKFLOW }, now)).toBe('2026-05-05T10:00:00.000Z');
  });

  it('gives the Scheduler a valid name and a payload with its scheduled-time attribute', () => {
    expect(schedulerNameOf(WORKFLOW)).toMatch(SCHEDULE_NAME_PATTERN);
    expect(firePayloadOf(WORKFLOW)).toEqual({ schedule_id: WORKFLOW, scheduled_time: '<aws.scheduler.scheduled-time>' });
  });

  it('records a firing as failed only when its run cannot start as the schedule asks', () => {
    expect(isPermanentFiringError(notFound('Workflow'))).toBe(true);
    expect(isPermanentFiringError(validationError([{ path: 'variables.x', message: 'give it a value' }]))).toBe(true);
    // Transient: the Scheduler retries the firing.
    expect(isPermanentFiringError(dependencyUnavailable('The workflow runner'))).toBe(false);
    expect(isPermanentFiringError(rateLimited(1))).toBe(false);
    expect(isPermanentFiringError(new Error('Execution changed while it was being updated'))).toBe(false);
    expect(isPermanentFiringError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(false);
    expect(isPermanentFiringError({ code: 'not_found', message: 'not an Error' })).toBe(false);
  });
});
