import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import * as z from 'zod';
import { getDeps } from '../../shared/runtime.js';
import { logger } from '../../shared/api/logger.js';
import { ulidSchema } from '../../shared/api/schemas.js';
import { processRunMessage } from '../../shared/services/task-runner.js';

const runMessage = z.object({ task_id: ulidSchema, token: z.string().max(64).optional() });

/**
 * The task queue's consumer. The records of a batch run side by side; a record whose processing fails
 * (the table unreachable, say) is reported in `batchItemFailures` and comes back after its visibility
 * timeout. A malformed message can never succeed, so it is dropped (and logged), not retried.
 */
export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  const deps = await getDeps();
  const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
  await Promise.all(
    event.Records.map(async (record) => {
      let body: unknown;
      try {
        body = JSON.parse(record.body);
      } catch {
        body = undefined;
      }
      const parsed = runMessage.safeParse(body);
      if (!parsed.success) {
        logger.error('dropping a malformed task message', { message_id: record.messageId });
        return;
      }
      try {
        await processRunMessage(deps, parsed.data, { remainingMs: context ? () => context.getRemainingTimeInMillis() : undefined });
      } catch (err) {
        logger.error('task message failed; it will be delivered again', { message_id: record.messageId, task_id: parsed.data.task_id, error: err as Error });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }),
  );
  return { batchItemFailures };
}
