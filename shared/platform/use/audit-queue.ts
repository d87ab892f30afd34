import type { TaskQueue } from '../ports.js';
import type { Deps } from '../runtime.js';

/** The audit retry queue (port `auditQueue`); see queue.ts for why each port has its own module. */
export function auditQueue(deps: Pick<Deps, 'auditQueue'>): TaskQueue {
  return deps.auditQueue;
}
