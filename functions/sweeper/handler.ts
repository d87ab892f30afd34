import type { Context } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { useLambdaContext } from '../../shared/platform/logger.js';
import { sweepTasks, type SweepReport } from '../../shared/tasks/sweeper.js';

/** Runs every minute (EventBridge rule) on AWS and every 30 s in the local runtime. */
export async function handler(_event?: unknown, context?: Context): Promise<SweepReport> {
  useLambdaContext(context);
  return sweepTasks(await getDeps());
}
