import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { useLambdaContext } from '../../shared/platform/logger.js';
import { retryAudits } from '../../shared/audit/service.js';

/** The audit retry queue's consumer: writes the audit entries whose write failed during their request. */
export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  useLambdaContext(context);
  return retryAudits(await getDeps(), event);
}
