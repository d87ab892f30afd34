/**
 * Step callbacks: the run's waiting `Advance` (lambda:invoke.waitForTaskToken) is answered by the first
 * step task to end. Kept apart from the engine so that every function that ends a task (API, worker,
 * sweeper, dead-letter) carries only this and the step-callback port, not the workflow use cases.
 */
import type { Deps } from '../platform/runtime.js';
import { logger } from '../platform/logger.js';
import { stepCallbacks } from '../platform/use/step-callbacks.js';
import { CALLBACK_SECONDS } from './asl.js';
import { ExecutionRepository, type ExecutionRecord } from './repo.js';

/** The next callback wait: CALLBACK_SECONDS, never past the run's deadline. */
export function callbackSeconds(execution: Pick<ExecutionRecord, 'timeout_at'> | undefined, now: Date): number {
  if (!execution?.timeout_at) return CALLBACK_SECONDS;
  return Math.min(CALLBACK_SECONDS, Math.max(1, Math.ceil((Date.parse(execution.timeout_at) - now.getTime()) / 1000)));
}

/**
 * A step's task reached a terminal state: the run's waiting Advance (if any) is answered so that it
 * goes on at once. Never throws: a lost callback only delays the run until its wait times out.
 */
export async function stepTaskFinished(deps: Deps, executionId: string): Promise<void> {
  try {
    const taken = await new ExecutionRepository(deps.store).takeCallbackToken(executionId);
    if (!taken) return;
    const { execution } = taken;
    await stepCallbacks(deps).sendTaskSuccess(taken.token, {
      execution_id: execution.execution_id,
      workflow_id: execution.workflow_id,
      done: false,
      status: execution.status,
      wait_seconds: 0,
      callback_seconds: callbackSeconds(execution, deps.clock.now()),
    });
  } catch (err) {
    logger.warn('workflow callback not sent; the run goes on when its wait times out', { execution_id: executionId, error: (err as Error).message });
  }
}

