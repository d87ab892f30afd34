import { getDeps } from '../../shared/platform/runtime.js';
import { sweepTasks, type SweepReport } from '../../shared/tasks/sweeper.js';

/** Runs every minute (EventBridge rule) on AWS and every 30 s in the local runtime. */
export async function handler(): Promise<SweepReport> {
  return sweepTasks(await getDeps());
}
