import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { getDeps } from '../../shared/platform/runtime.js';
import { useLambdaContext } from '../../shared/platform/logger.js';
import { advanceExecution, advanceWithCallback, failRun, type EngineOutput } from '../../shared/workflows/advance.js';

/** What the state machine passes: the run's ids, and either the Advance task's token or a failure to record. */
const engineInput = z.object({
  execution_id: z.string().min(1).max(80),
  workflow_id: z.string().min(1).max(80),
  callback_seconds: z.number().int().min(1).optional(),
  task_token: z.string().min(1).max(2048).optional(),
  failure: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});

/**
 * The state machine's engine tasks. `Advance` (lambda:invoke.waitForTaskToken) passes a task token:
 * the run is moved forward and the token answered now or by the first step task to end (the result
 * goes through SendTaskSuccess, not this function's return). `RecordFailure` passes the failure of an
 * Advance whose retries are spent: the run is marked failed with its cause. Without either (a direct
 * call), one advance answers `{ execution_id, workflow_id, done, status, wait_seconds }`.
 */
export async function handler(event: unknown, context?: Context): Promise<EngineOutput | null> {
  useLambdaContext(context);
  const input = engineInput.parse(event);
  const deps = await getDeps();
  const ids = { execution_id: input.execution_id, workflow_id: input.workflow_id };
  if (input.failure) return failRun(deps, ids, input.failure);
  if (input.task_token) {
    await advanceWithCallback(deps, { ...ids, callback_seconds: input.callback_seconds }, input.task_token);
    return null;
  }
  return advanceExecution(deps, ids);
}
