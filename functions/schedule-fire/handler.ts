import type { Context } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { logger, useLambdaContext } from '../../shared/platform/logger.js';
import { firePayloadSchema } from '../../shared/schedules/schedule.js';
import { fireSchedule, type FireResult } from '../../shared/schedules/service.js';

/**
 * EventBridge Scheduler's target: `{ schedule_id, scheduled_time }` per firing. The Scheduler invokes it
 * asynchronously, so a thrown error is retried by Lambda (SCHEDULE_FIRE_ASYNC in shared/platform/infra.ts:
 * twice, about 1 and 2 minutes later), not by the schedule's retry policy (which only covers deliveries
 * Lambda refused); after the last retry the event goes to the function's dead-letter queue
 * (AsyncFailureQueue). A payload that can never work is logged and dropped.
 */
export async function handler(event: unknown, context?: Context): Promise<FireResult> {
  useLambdaContext(context);
  const payload = firePayloadSchema.safeParse(event);
  if (!payload.success) {
    logger.error('schedule firing with an invalid payload dropped', { issues: payload.error.issues.map((i) => i.message) });
    return { outcome: 'ignored', reason: 'invalid payload' };
  }
  const result = await fireSchedule(await getDeps(), payload.data);
  logger.info('schedule fired', { schedule_id: payload.data.schedule_id, ...result });
  return result;
}
