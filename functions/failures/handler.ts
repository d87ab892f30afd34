import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { logger, useLambdaContext } from '../../shared/platform/logger.js';
import { recordSweeperFailure } from '../../shared/health/background.js';
import { recordDeadLetteredFiring } from '../../shared/schedules/failures.js';
import { firePayloadSchema } from '../../shared/schedules/schedule.js';

/**
 * The consumer of the failure queues: AsyncFailureQueue (Lambda's dead letters of the sweeper and
 * schedule-fire after their retries, and the sweeper rule's undelivered events) and
 * ScheduleDeadLetterQueue (firings the Scheduler could not deliver). Each failure is recorded where
 * the API shows it: a firing as its schedule's failed firing (`last_outcome`, `last_error`), a sweep
 * as the sweeper's health (`GET /api/v1/health/detailed`). The alarms on these queues fire all the same.
 */
export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  useLambdaContext(context);
  const deps = await getDeps();
  const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
  for (const record of event.Records) {
    try {
      const failure = classify(record);
      const error = errorOf(record);
      if (failure.kind === 'firing') {
        const outcome = await recordDeadLetteredFiring(deps, failure.payload, error);
        logger.warn('dead-lettered schedule firing recorded', { schedule_id: failure.payload.schedule_id, scheduled_time: failure.payload.scheduled_time, outcome, error });
      } else if (failure.kind === 'sweep') {
        await recordSweeperFailure(deps, failure.at, error);
        logger.warn('failed sweep recorded', { at: failure.at.toISOString(), error });
      } else {
        logger.error('failure-queue message of an unknown kind dropped', { message_id: record.messageId, body: record.body.slice(0, 500), error });
      }
    } catch (err) {
      logger.error('failure-queue message not recorded; it stays in the queue', { message_id: record.messageId, error: err as Error });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
}

type Failure =
  | { kind: 'firing'; payload: ReturnType<typeof firePayloadSchema.parse> }
  | { kind: 'sweep'; at: Date }
  | { kind: 'unknown' };

/** A firing's payload (`{schedule_id, scheduled_time}`), or the EventBridge scheduled event that runs the sweeper. */
export function classify(record: Pick<SQSRecord, 'body' | 'attributes'>): Failure {
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch {
    return { kind: 'unknown' };
  }
  const firing = firePayloadSchema.safeParse(body);
  if (firing.success) return { kind: 'firing', payload: firing.data };
  const scheduled = body as { source?: unknown; 'detail-type'?: unknown; time?: unknown };
  if (scheduled?.source === 'aws.events' && scheduled['detail-type'] === 'Scheduled Event') {
    const time = typeof scheduled.time === 'string' ? new Date(scheduled.time) : new Date(Number(record.attributes?.SentTimestamp));
    return { kind: 'sweep', at: Number.isNaN(time.getTime()) ? new Date() : time };
  }
  return { kind: 'unknown' };
}

/**
 * The error a dead letter carries in its message attributes: `ErrorMessage`/`ErrorCode` from Lambda's
 * asynchronous invocation, `ERROR_MESSAGE`/`ERROR_CODE` from EventBridge and the Scheduler. Its first
 * line only, cut short.
 */
export function errorOf(record: Pick<SQSRecord, 'messageAttributes'>): string {
  const attr = (name: string) => record.messageAttributes?.[name]?.stringValue;
  const message = attr('ErrorMessage') ?? attr('ERROR_MESSAGE');
  const code = attr('ErrorCode') ?? attr('ERROR_CODE');
  const text = [code, message].filter(Boolean).join(': ') || 'no error given';
  return text.split('\n')[0].slice(0, 300);
}
