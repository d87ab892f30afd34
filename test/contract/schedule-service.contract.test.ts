import {
  CreateScheduleCommand,
  DeleteScheduleCommand,
  GetScheduleGroupCommand,
  SchedulerClient,
  UpdateScheduleCommand,
  type CreateScheduleCommandInput,
} from '@aws-sdk/client-scheduler';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalScheduler, ManualClock } from '../../local/scheduler.js';
import { SchedulerService } from '../../shared/platform/aws/scheduler.js';
import { CronError } from '../../shared/platform/cron.js';
import type { ScheduleDefinition, ScheduleService } from '../../shared/platform/ports.js';
import { serviceError } from './support.js';

interface StoredSchedule {
  timezone: string;
  enabled: boolean;
  payload: Record<string, unknown>;
}

interface ScheduleSubject {
  service: ScheduleService;
  stored(name: string): StoredSchedule | undefined;
  count(): number;
  breakIt(): Promise<void>;
}

const scheduler = mockClient(SchedulerClient);
const OPTIONS = {
  groupName: 'supervisor-schedules',
  roleArn: 'arn:aws:iam::123456789012:role/supervisor-scheduler',
  targetArn: 'arn:aws:lambda:eu-west-1:123456789012:function:supervisor-schedule-fire',
  deadLetterArn: 'arn:aws:sqs:eu-west-1:123456789012:supervisor-schedules-dlq',
};

/** An in-memory EventBridge Scheduler behind the mocked client: it answers the errors the real one does. */
function fakeScheduler() {
  const schedules = new Map<string, CreateScheduleCommandInput>();
  scheduler.reset();
  scheduler.on(CreateScheduleCommand).callsFake((input: CreateScheduleCommandInput) => {
    if (schedules.has(input.Name!)) throw serviceError('ConflictException', `Schedule ${input.Name} already exists.`, 409);
    schedules.set(input.Name!, input);
    return { ScheduleArn: `arn:aws:scheduler:eu-west-1:123456789012:schedule/${input.GroupName}/${input.Name}` };
  });
  scheduler.on(UpdateScheduleCommand).callsFake((input: CreateScheduleCommandInput) => {
    if (!schedules.has(input.Name!)) throw serviceError('ResourceNotFoundException', `Schedule ${input.Name} does not exist.`, 404);
    schedules.set(input.Name!, input);
    return { ScheduleArn: 'arn' };
  });
  scheduler.on(DeleteScheduleCommand).callsFake((input: { Name: string }) => {
    if (!schedules.delete(input.Name)) throw serviceError('ResourceNotFoundException', 'not found', 404);
    return {};
  });
  scheduler.on(GetScheduleGroupCommand).resolves({ Name: OPTIONS.groupName, State: 'ACTIVE' });
  return schedules;
}

const implementations: Array<[string, () => ScheduleSubject]> = [
  [
    'local',
    () => {
      const service = new LocalScheduler({ clock: new ManualClock('2026-01-01T00:00:00Z'), fire: async () => undefined });
      return {
        service,
        stored: (name) => {
          const s = service.get(name);
          return s && { timezone: s.timezone, enabled: s.enabled, payload: s.payload };
        },
        count: () => service.list().length,
        breakIt: async () => service.stop(),
      };
    },
  ],
  [
    'aws (EventBridge Scheduler, mocked client)',
    () => {
      const schedules = fakeScheduler();
      return {
        service: new SchedulerService(OPTIONS),
        stored: (name) => {
          const s = schedules.get(name);
          return (
            s && {
              timezone: s.ScheduleExpressionTimezone!,
              enabled: s.State === 'ENABLED',
              payload: JSON.parse(s.Target!.Input!) as Record<string, unknown>,
            }
          );
        },
        count: () => schedules.size,
        breakIt: async () => {
          scheduler.on(GetScheduleGroupCommand).rejects(serviceError('ResourceNotFoundException', 'group not found', 404));
        },
      };
    },
  ],
];

const daily: ScheduleDefinition = {
  name: 'sched-01J0ABC',
  cron: '0 9 * * MON-FRI',
  timezone: 'Europe/Paris',
  enabled: true,
  payload: { schedule_id: '01J0ABC', kind: 'task' },
};

afterEach(() => scheduler.reset());

describe.each(implementations)('ScheduleService contract: %s', (_name, make) => {
  it('upsert creates a schedule', async () => {
    const s = make();
    await s.service.upsert(daily);
    expect(s.stored(daily.name)).toEqual({ timezone: 'Europe/Paris', enabled: true, payload: daily.payload });
  });

  it('upsert again replaces it (one schedule per name)', async () => {
    const s = make();
    await s.service.upsert(daily);
    await s.service.upsert({ ...daily, cron: '*/5 * * * *', timezone: 'UTC', enabled: false, payload: { v: 2 } });
    expect(s.count()).toBe(1);
    expect(s.stored(daily.name)).toEqual({ timezone: 'UTC', enabled: false, payload: { v: 2 } });
  });

  it('remove deletes it; removing an unknown schedule is fine', async () => {
    const s = make();
    await s.service.upsert(daily);
    await s.service.remove(daily.name);
    expect(s.stored(daily.name)).toBeUndefined();
    await expect(s.service.remove(daily.name)).resolves.toBeUndefined();
    await expect(s.service.remove('never-existed')).resolves.toBeUndefined();
  });

  it.each([
    ['both day fields restricted', { cron: '0 9 1 * MON' }, CronError],
    ['a malformed cron', { cron: '61 * * * *' }, CronError],
    ['an unknown time zone', { timezone: 'Mars/Base' }, CronError],
    ['an invalid name', { name: 'has space' }, Error],
    ['a name too long', { name: 'x'.repeat(65) }, Error],
  ])('refuses %s and stores nothing', async (_what, change, errorType) => {
    const s = make();
    await expect(s.service.upsert({ ...daily, ...change })).rejects.toThrow(errorType);
    expect(s.count()).toBe(0);
  });

  it('check passes when reachable and throws when not', async () => {
    const s = make();
    await expect(s.service.check()).resolves.toBeUndefined();
    await s.breakIt();
    await expect(s.service.check()).rejects.toThrow();
  });
});

describe('SchedulerService commands', () => {
  it('sends the EventBridge form: expression, time zone, window OFF, state, target with retry and DLQ', async () => {
    fakeScheduler();
    await new SchedulerService(OPTIONS).upsert({ ...daily, enabled: false });
    const [update] = scheduler.commandCalls(UpdateScheduleCommand);
    const [create] = scheduler.commandCalls(CreateScheduleCommand);
    expect(update.args[0].input.Name).toBe(daily.name); // tried first, not found…
    expect(create.args[0].input).toEqual({
      Name: daily.name,
      GroupName: 'supervisor-schedules',
      ScheduleExpression: 'cron(0 9 ? * 2-6 *)',
      ScheduleExpressionTimezone: 'Europe/Paris',
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'DISABLED',
      Target: {
        Arn: OPTIONS.targetArn,
        RoleArn: OPTIONS.roleArn,
        Input: JSON.stringify(daily.payload),
        RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: { Arn: OPTIONS.deadLetterArn },
      },
    });
  });

  it('existing schedule: one UpdateSchedule, no CreateSchedule', async () => {
    const schedules = fakeScheduler();
    schedules.set(daily.name, { Name: daily.name } as CreateScheduleCommandInput);
    await new SchedulerService(OPTIONS).upsert(daily);
    expect(scheduler.commandCalls(UpdateScheduleCommand)).toHaveLength(1);
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
  });

  it('a concurrent create (ConflictException) ends in an update', async () => {
    scheduler.on(UpdateScheduleCommand).rejectsOnce(serviceError('ResourceNotFoundException')).resolves({ ScheduleArn: 'arn' });
    scheduler.on(CreateScheduleCommand).rejects(serviceError('ConflictException'));
    await new SchedulerService(OPTIONS).upsert(daily);
    expect(scheduler.commandCalls(UpdateScheduleCommand)).toHaveLength(2);
  });

  it('other errors propagate', async () => {
    scheduler.on(UpdateScheduleCommand).rejects(serviceError('AccessDeniedException'));
    await expect(new SchedulerService(OPTIONS).upsert(daily)).rejects.toThrow('AccessDeniedException');
    scheduler.on(DeleteScheduleCommand).rejects(serviceError('ThrottlingException'));
    await expect(new SchedulerService(OPTIONS).remove('x')).rejects.toThrow('ThrottlingException');
  });

  it('remove and check address the group', async () => {
    fakeScheduler();
    const service = new SchedulerService(OPTIONS);
    await service.remove('gone');
    await service.check();
    expect(scheduler.commandCalls(DeleteScheduleCommand)[0].args[0].input).toEqual({ Name: 'gone', GroupName: 'supervisor-schedules' });
    expect(scheduler.commandCalls(GetScheduleGroupCommand)[0].args[0].input).toEqual({ Name: 'supervisor-schedules' });
  });
});

describe('LocalScheduler semantics (manual clock)', () => {
  function setup(start: string, fire: (p: Record<string, unknown>) => Promise<void> = async () => undefined) {
    const clock = new ManualClock(start);
    const fired: Array<{ at: string; payload: Record<string, unknown> }> = [];
    const service = new LocalScheduler({
      clock,
      retryDelayMs: 0,
      fire: async (payload) => {
        await fire(payload);
        fired.push({ at: clock.now().toISOString(), payload });
      },
    });
    return { clock, fired, service };
  }

  it('fires at the cron instants in the time zone, and re-arms after each firing', async () => {
    const { clock, fired, service } = setup('2026-03-06T07:00:00Z'); // Friday, 08:00 in Paris
    await service.upsert(daily);
    expect(service.nextRunOf(daily.name)).toEqual(new Date('2026-03-06T08:00:00Z'));
    clock.set('2026-03-06T07:59:59Z');
    await service.tick();
    expect(fired).toHaveLength(0);
    clock.set('2026-03-06T08:00:00Z');
    await service.tick();
    await service.tick(); // nothing more due at the same instant
    expect(fired.map((f) => f.at)).toEqual(['2026-03-06T08:00:00.000Z']);
    expect(service.nextRunOf(daily.name)).toEqual(new Date('2026-03-09T08:00:00Z')); // Monday
    clock.set('2026-03-09T08:00:30Z');
    await service.tick();
    expect(fired).toHaveLength(2);
  });

  it('missed firings are not replayed one by one: one firing, then the next future instant', async () => {
    const { clock, fired, service } = setup('2026-01-01T00:00:00Z');
    await service.upsert({ ...daily, cron: '0 * * * *', timezone: 'UTC' });
    clock.set('2026-01-01T05:30:00Z');
    await service.tick();
    expect(fired).toHaveLength(1);
    expect(service.nextRunOf(daily.name)).toEqual(new Date('2026-01-01T06:00:00Z'));
  });

  it('disabled schedules do not fire; enabling arms them; remove cancels', async () => {
    const { clock, fired, service } = setup('2026-01-01T00:00:00Z');
    await service.upsert({ ...daily, cron: '0 * * * *', timezone: 'UTC', enabled: false });
    expect(service.nextRunOf(daily.name)).toBeNull();
    clock.advance(3600_000);
    await service.tick();
    expect(fired).toHaveLength(0);
    await service.upsert({ ...daily, cron: '0 * * * *', timezone: 'UTC', enabled: true });
    clock.advance(3600_000);
    await service.tick();
    expect(fired).toHaveLength(1);
    await service.remove(daily.name);
    expect(service.nextRunOf(daily.name)).toBeUndefined();
    clock.advance(3600_000);
    await service.tick();
    expect(fired).toHaveLength(1);
  });

  it('substitutes the EventBridge Scheduler context attributes in the payload', async () => {
    const { clock, fired, service } = setup('2026-01-01T00:00:00Z');
    await service.upsert({
      ...daily,
      cron: '30 * * * *',
      timezone: 'UTC',
      payload: {
        schedule_id: 's1',
        scheduled_time: '<aws.scheduler.scheduled-time>',
        meta: { arn: '<aws.scheduler.schedule-arn>', attempt: '<aws.scheduler.attempt-number>', id: '<aws.scheduler.execution-id>' },
      },
    });
    clock.set('2026-01-01T00:30:20Z');
    await service.tick();
    expect(fired[0].payload).toEqual({
      schedule_id: 's1',
      scheduled_time: '2026-01-01T00:30:00Z',
      meta: { arn: `arn:aws:scheduler:local:000000000000:schedule/supervisor/${daily.name}`, attempt: '1', id: expect.stringMatching(/^[0-9a-f]{16}$/) },
    });
  });

  it('a failing firing is retried twice (Lambda\'s asynchronous retries on AWS), then dead-lettered', async () => {
    let attempts = 0;
    const { clock, fired, service } = setup('2026-01-01T00:00:00Z', async () => {
      attempts++;
      throw new Error('target down');
    });
    await service.upsert({ ...daily, cron: '0 * * * *', timezone: 'UTC' });
    clock.advance(3600_000);
    await service.tick();
    expect(attempts).toBe(3);
    expect(fired).toHaveLength(0);
    expect(service.deadLettered()).toEqual([
      expect.objectContaining({ name: daily.name, scheduledTime: '2026-01-01T01:00:00Z', attempts: 3, error: 'target down' }),
    ]);
    expect(service.nextRunOf(daily.name)).toEqual(new Date('2026-01-01T02:00:00Z'));
  });

  it('a firing that succeeds on a retry is delivered once, with its attempt number', async () => {
    let attempts = 0;
    const { clock, fired, service } = setup('2026-01-01T00:00:00Z', async () => {
      if (++attempts < 3) throw new Error('flaky');
    });
    await service.upsert({ ...daily, cron: '0 * * * *', timezone: 'UTC', payload: { attempt: '<aws.scheduler.attempt-number>' } });
    clock.advance(3600_000);
    await service.tick();
    expect(fired.map((f) => f.payload)).toEqual([{ attempt: '3' }]);
    expect(service.deadLettered()).toEqual([]);
  });

  it('DST: a daily 02:30 America/New_York schedule skips 2026-03-08', async () => {
    const { clock, fired, service } = setup('2026-03-07T12:00:00Z');
    await service.upsert({ ...daily, cron: '30 2 * * *', timezone: 'America/New_York' });
    for (let hour = 0; hour < 48; hour++) {
      clock.advance(3600_000);
      await service.tick();
    }
    expect(fired.map((f) => f.at)).toEqual(['2026-03-09T07:00:00.000Z']); // ticked hourly: the 06:30Z firing is seen at 07:00Z
    expect(service.nextRunOf(daily.name)).toEqual(new Date('2026-03-10T06:30:00Z'));
  });

  it('with the system clock it arms a real timer for the next firing', async () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:30Z') });
    try {
      const fired: string[] = [];
      const service = new LocalScheduler({ fire: async () => void fired.push(new Date().toISOString()) });
      await service.upsert({ ...daily, cron: '* * * * *', timezone: 'UTC' });
      await vi.advanceTimersByTimeAsync(29_000);
      expect(fired).toEqual([]);
      await vi.advanceTimersByTimeAsync(1_000);
      expect(fired).toEqual(['2026-01-01T00:01:00.000Z']);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(fired).toEqual(['2026-01-01T00:01:00.000Z', '2026-01-01T00:02:00.000Z']);
      service.stop();
      await vi.advanceTimersByTimeAsync(120_000);
      expect(fired).toHaveLength(2);
      await expect(service.check()).rejects.toThrow(/stopped/);
    } finally {
      vi.useRealTimers();
    }
  });
});
