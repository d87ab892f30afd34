import type { Deps } from '../runtime.js';

/**
 * The worker's delivery concurrency (port `workerScaling`): locally the in-process worker's concurrent
 * batches, like the SQS event source mapping's maximum concurrency (at least 2). How many tasks *run*
 * at once is the worker_concurrency pool's capacity, because every run holds one of its slots; the
 * delivery concurrency only sets how many messages reach the ledger at once. Answers the concurrency
 * applied, or null where no adapter is wired (on AWS the mapping is not changed yet).
 */
export function workerScaling(deps: Pick<Deps, 'workerScaling'>): { setMaxConcurrency(tasks: number): Promise<number | null> } {
  return { setMaxConcurrency: async (tasks) => (deps.workerScaling ? deps.workerScaling.setMaxConcurrency(tasks) : null) };
}
