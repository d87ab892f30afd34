import { randomUUID } from 'node:crypto';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { handler as failures } from '../functions/failures/handler.js';

/**
 * The failure queues' consumer in the local runtime. AWS sends a firing the Scheduler gave up on to
 * ScheduleDeadLetterQueue and a sweep Lambda gave up on to AsyncFailureQueue; the local stand-ins have
 * no such queues, so they hand the same messages (body and error attributes as AWS writes them) to
 * the same handler (functions/failures) at once.
 */
function record(body: unknown, attributes: Record<string, string>, queue: string): SQSRecord {
  const now = Date.now();
  return {
    messageId: randomUUID(),
    receiptHandle: randomUUID(),
    body: JSON.stringify(body),
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(now), SenderId: 'local', ApproximateFirstReceiveTimestamp: String(now) },
    messageAttributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, { stringValue: v, dataType: 'String' }])),
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:local:000000000000:${queue}`,
    awsRegion: 'local',
  };
}

async function deliver(r: SQSRecord): Promise<void> {
  const event: SQSEvent = { Records: [r] };
  const { batchItemFailures } = await failures(event);
  if (batchItemFailures.length > 0) throw new Error('the failure consumer could not record the failure (see its log)');
}

/**
 * A firing the local Scheduler gave up on after its retries: on AWS, Lambda's retries of schedule-fire,
 * then its dead letter (the event as the function received it, the error) in AsyncFailureQueue.
 */
export function deadLetteredFiring(payload: Record<string, unknown>, error: string): Promise<void> {
  return deliver(record(payload, { ErrorCode: '200', ErrorMessage: error, RequestID: randomUUID() }, 'AsyncFailureQueue'));
}

/** A sweep that failed (Lambda's asynchronous-invocation dead letter: the scheduled event, the error). */
export function failedSweep(at: Date, error: string): Promise<void> {
  const event = { version: '0', id: randomUUID(), 'detail-type': 'Scheduled Event', source: 'aws.events', time: at.toISOString(), region: 'local', resources: [], detail: {} };
  return deliver(record(event, { ErrorCode: '200', ErrorMessage: error, RequestID: randomUUID() }, 'AsyncFailureQueue'));
}
