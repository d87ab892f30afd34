import type { Context } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { useLambdaContext } from '../../shared/platform/logger.js';
import { collectGauges, type CollectReport } from '../../shared/analytics/collector.js';

/** Runs every minute (EventBridge rule) on AWS; the local runtime runs `collectGauges` on a timer, with process figures. */
export async function handler(_event?: unknown, context?: Context): Promise<CollectReport> {
  useLambdaContext(context);
  return collectGauges(await getDeps());
}
