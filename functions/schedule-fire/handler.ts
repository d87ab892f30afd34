import type { Context } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { logger, useLambdaContext } from '../../shared/platform/logger.js';
import { firePayloadSchema } from '../../shared/schedules/schedule.js';
import { fireSchedule, type FireResult } from '../../shared/schedules/service.js';

/**
 * EventBridge Scheduler's target: `{ schedule_id, scheduled_time }` per firing. A thrown error makes the
 * Scheduler retry (then dead-letter) the firing; a payload that can never work is logged and dropped.
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
