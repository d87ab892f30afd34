import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { logger, useLambdaContext } from '../../shared/platform/logger.js';
import { parseRunMessage } from '../../shared/tasks/service.js';
import { processRunMessage } from '../../shared/tasks/runner.js';

/**
 * The task queue's consumer. The records of a batch run side by side; a record whose processing fails
 * (the table unreachable, say) is reported in `batchItemFailures` and comes back after its visibility
 * timeout. A malformed message can never succeed, so it is dropped (and logged), not retried.
 */
export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  useLambdaContext(context);
  const deps = await getDeps();
  const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
  await Promise.all(
    event.Records.map(async (record) => {
      const message = parseRunMessage(record.body);
      if (!message) {
        logger.error('dropping a malformed task message', { message_id: record.messageId });
        return;
      }
      try {
        await processRunMessage(deps, message, { remainingMs: context ? () => context.getRemainingTimeInMillis() : undefined });
      } catch (err) {
        logger.error('task message failed; it will be delivered again', { message_id: record.messageId, task_id: message.task_id, error: err as Error });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }),
  );
  return { batchItemFailures };
}
