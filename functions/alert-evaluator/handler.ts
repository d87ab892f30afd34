import type { Context } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { useLambdaContext } from '../../shared/platform/logger.js';
import { runEvaluator, type EvaluatorRun } from '../../shared/monitoring/service.js';

/** Runs every minute (EventBridge rule) on AWS; the local runtime calls `runEvaluator` on a timer. */
export async function handler(_event?: unknown, context?: Context): Promise<EvaluatorRun> {
  useLambdaContext(context);
  return runEvaluator(await getDeps());
}
