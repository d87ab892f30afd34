import type { TaskQueue } from '../ports.js';
import type { Deps } from '../runtime.js';

/**
 * The task queue (port `queue`). Code reaches each port through its own module in this folder, so
 * that the infra test can tell from a function's bundle which ports it uses (FUNCTION_PORTS, infra.ts).
 */
export function taskQueue(deps: Pick<Deps, 'queue'>): TaskQueue {
  return deps.queue;
}
