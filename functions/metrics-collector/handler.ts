import type { Context } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { useLambdaContext } from '../../shared/platform/logger.js';
import { runCollector } from '../../shared/analytics/collector.js';

/** Runs every minute (EventBridge rule) on AWS; the local runtime runs `runCollector` on a timer, with process figures. */
export async function handler(_event?: unknown, context?: Context): Promise<Awaited<ReturnType<typeof runCollector>>> {
  useLambdaContext(context);
  return runCollector(await getDeps(), { remainingMs: context ? () => context.getRemainingTimeInMillis() : undefined });
}
