import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { logger, useLambdaContext } from '../../shared/platform/logger.js';
import { handleStreamEvent } from '../../shared/platform/feed.js';
import { LIVE_CONSUMERS } from '../../shared/live-feed.js';

/**
 * The live feed: the table's stream read with no batching window (a second event source mapping on
 * AWS, a second `local/stream-poller.ts` locally), for the events users wait on (`LIVE_CONSUMERS`).
 */
export async function handler(event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> {
  useLambdaContext(context);
  const deps = await getDeps();
  return handleStreamEvent(event, deps, LIVE_CONSUMERS, (consumer, change, err) =>
    logger.error('live feed consumer failed; the batch is retried from this record', {
      consumer,
      pk: change.pk,
      sk: change.sk,
      sequence_number: change.sequenceNumber,
      error: err as Error,
    }),
  );
}
