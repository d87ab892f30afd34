import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { getDeps } from '../../shared/platform/runtime.js';
import { useLambdaContext } from '../../shared/platform/logger.js';
import { advanceExecution, type EngineOutput } from '../../shared/workflows/advance.js';

/** What the state machine passes: its own state, which always carries the run's ids. */
const engineInput = z.object({ execution_id: z.string().min(1).max(80), workflow_id: z.string().min(1).max(80) });

/**
 * The state machine's `Advance` task (lambda:invoke): moves the run forward and answers
 * `{ execution_id, workflow_id, done, status, wait_seconds }`. An error makes the task fail, and the
 * state's Retry policy invokes it again.
 */
export async function handler(event: unknown, context?: Context): Promise<EngineOutput> {
  useLambdaContext(context);
  const input = engineInput.parse(event);
  return advanceExecution(await getDeps(), input);
}
