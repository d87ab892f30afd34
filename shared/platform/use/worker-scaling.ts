import type { Deps } from '../runtime.js';

/**
 * How many tasks the worker may run at once (port `workerScaling`): locally the in-process worker's
 * concurrency. Answers the concurrency applied, or null where no adapter is wired (on AWS the event
 * source mapping's maximum concurrency is not changed yet: the ledger's worker_concurrency pool still
 * bounds how many tasks run, because every run holds a slot of it).
 */
export function workerScaling(deps: Pick<Deps, 'workerScaling'>): { setMaxConcurrency(tasks: number): Promise<number | null> } {
  return { setMaxConcurrency: async (tasks) => (deps.workerScaling ? deps.workerScaling.setMaxConcurrency(tasks) : null) };
}
