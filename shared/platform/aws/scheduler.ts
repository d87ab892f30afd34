import type { SchedulerClient } from '@aws-sdk/client-scheduler';
import type { ScheduleDefinition, ScheduleService } from '../ports.js';
import { toScheduleExpression } from '../cron.js';
import { assertScheduleDefinition, assertScheduleName } from '../service-rules.js';
import { errorName, lazy } from './util.js';

export interface SchedulerServiceOptions {
  groupName: string;
  /** Role EventBridge Scheduler assumes to invoke the target. */
  roleArn: string;
  /** The schedule-firing Lambda. */
  targetArn: string;
  /** SQS queue receiving firings that failed all retries. */
  deadLetterArn: string;
}

/** `ScheduleService` on EventBridge Scheduler: one schedule per name in one group. */
export class SchedulerService implements ScheduleService {
  private readonly sdk = lazy(async () => {
    const mod = await import('@aws-sdk/client-scheduler');
    return { mod, client: new mod.SchedulerClient({}) as SchedulerClient };
  });

  constructor(readonly options: SchedulerServiceOptions) {}

  /** Update, or create when it does not exist yet (and update after all if a concurrent create won). */
  async upsert(schedule: ScheduleDefinition): Promise<void> {
    assertScheduleDefinition(schedule);
    const { mod, client } = await this.sdk();
    const input = {
      Name: schedule.name,
      GroupName: this.options.groupName,
      ScheduleExpression: toScheduleExpression(schedule.cron),
      ScheduleExpressionTimezone: schedule.timezone,
      FlexibleTimeWindow: { Mode: 'OFF' as const },
      State: schedule.enabled ? ('ENABLED' as const) : ('DISABLED' as const),
      Target: {
        Arn: this.options.targetArn,
        RoleArn: this.options.roleArn,
        Input: JSON.stringify(schedule.payload),
        // Covers deliveries Lambda refused (throttled): the target is invoked asynchronously, so a
        // function error is retried by Lambda itself (SCHEDULE_FIRE_ASYNC in shared/platform/infra.ts).
        RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: { Arn: this.options.deadLetterArn },
      },
    };
    try {
      await client.send(new mod.UpdateScheduleCommand(input));
      return;
    } catch (err) {
      if (errorName(err) !== 'ResourceNotFoundException') throw err;
    }
    try {
      await client.send(new mod.CreateScheduleCommand(input));
    } catch (err) {
      if (errorName(err) !== 'ConflictException') throw err;
      await client.send(new mod.UpdateScheduleCommand(input));
    }
  }

  /** Removing a schedule that does not exist is not an error. */
  async remove(name: string): Promise<void> {
    assertScheduleName(name);
    const { mod, client } = await this.sdk();
    try {
      await client.send(new mod.DeleteScheduleCommand({ Name: name, GroupName: this.options.groupName }));
    } catch (err) {
      if (errorName(err) !== 'ResourceNotFoundException') throw err;
    }
  }

  async check(): Promise<void> {
    const { mod, client } = await this.sdk();
    await client.send(new mod.GetScheduleGroupCommand({ Name: this.options.groupName }));
  }
}
