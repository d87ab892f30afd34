import type { Deps } from '../platform/runtime.js';
import { TaskRepository } from './repo.js';
import { summarize } from './stats.js';
import type { TaskStatus } from './status.js';

/**
 * Tasks per status across the platform, from the sharded counters kept on every change (one BatchGet):
 * what the metrics collector samples and the analytics summary shows. Imports nothing but the
 * repository, so a function that reads it carries no other port.
 */
export async function taskStatusCounts(deps: Pick<Deps, 'store'>): Promise<Record<TaskStatus, number>> {
  return summarize(await new TaskRepository(deps.store).statsShards()).by_status as Record<TaskStatus, number>;
}
