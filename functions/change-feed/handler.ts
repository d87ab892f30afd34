import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { logger, useLambdaContext } from '../../shared/platform/logger.js';
import { handleStreamEvent } from '../../shared/platform/feed.js';
import { CHANGE_CONSUMERS } from '../../shared/change-feed.js';

/**
 * The table's stream consumer (an event source mapping on AWS, `local/stream-poller.ts` locally): each
 * change goes to every consumer of `shared/change-feed.ts`; the first failure ends the batch there.
 */
export async function handler(event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> {
  useLambdaContext(context);
  const deps = await getDeps();
  return handleStreamEvent(event, deps, CHANGE_CONSUMERS, (consumer, change, err) =>
    logger.error('change feed consumer failed; the batch is retried from this record', {
      consumer,
      pk: change.pk,
      sk: change.sk,
      sequence_number: change.sequenceNumber,
      error: err as Error,
    }),
  );
}
