import type { Deps } from '../runtime.js';

/**
 * The worker's delivery concurrency (port `workerScaling`): on AWS the task queue's event source
 * mapping's maximum concurrency (UpdateEventSourceMapping, 2–1000, at most the worker's reservation),
 * locally the in-process worker's concurrent batches, computed the same way (workerInvocationsFor,
 * infra.ts). How many tasks *run* at once is the worker_concurrency pool's capacity, because every run
 * holds one of its slots; the delivery concurrency sets how many messages reach the ledger at once.
 * Answers the concurrency applied, or null where no adapter is wired (scripts and tests that build
 * their own `Deps`).
 */
export function workerScaling(deps: Pick<Deps, 'workerScaling'>): { setMaxConcurrency(tasks: number): Promise<number | null> } {
  return { setMaxConcurrency: async (tasks) => (deps.workerScaling ? deps.workerScaling.setMaxConcurrency(tasks) : null) };
}
