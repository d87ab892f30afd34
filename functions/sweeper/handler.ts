import type { Context } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { useLambdaContext } from '../../shared/platform/logger.js';
import { sweepTasks, type SweepReport } from '../../shared/tasks/sweeper.js';
import { recordSweeperRun } from '../../shared/health/background.js';

/**
 * Runs every minute (EventBridge rule) on AWS and every 30 s in the local runtime. A sweep that ran to
 * the end is recorded for the health routes; one that throws is retried by Lambda and then
 * dead-lettered, and the failure-queue consumer records it (functions/failures).
 */
export async function handler(_event?: unknown, context?: Context): Promise<SweepReport> {
  useLambdaContext(context);
  const deps = await getDeps();
  const report = await sweepTasks(deps);
  await recordSweeperRun(deps, deps.clock.now());
  return report;
}
