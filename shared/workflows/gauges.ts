import type { Deps } from '../platform/runtime.js';
import { ExecutionRepository } from './repo.js';

/** Workflow runs that have not ended (a counter kept on write): for the metrics collector and the analytics summary. */
export async function runningExecutionCount(deps: Pick<Deps, 'store'>): Promise<number> {
  return new ExecutionRepository(deps.store).activeCount();
}
