import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { logger, useLambdaContext } from '../../shared/platform/logger.js';
import { METRICS, recordMetrics } from '../../shared/platform/metrics.js';
import { parseRunMessage } from '../../shared/tasks/service.js';
import { failDeadLettered } from '../../shared/tasks/runner.js';

/** The dead-letter queue's consumer: the task of a message the worker could not process is marked failed, with the reason. */
export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  useLambdaContext(context);
  const deps = await getDeps();
  const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
  for (const record of event.Records) {
    const message = parseRunMessage(record.body);
    if (!message) {
      logger.error('dead-lettered message is not a task message; dropped', { message_id: record.messageId });
      continue;
    }
    try {
      const outcome = await failDeadLettered(deps, message);
      if (outcome === 'failed') recordMetrics(deps.config, [{ name: METRICS.tasksDeadLettered, unit: 'Count', value: 1 }]);
      logger.warn('dead-lettered task message handled', { task_id: message.task_id, outcome });
    } catch (err) {
      logger.error('dead-lettered message not handled; it stays in the queue', { message_id: record.messageId, error: err as Error });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
}
