import type { ScheduleService } from '../ports.js';
import type { Deps } from '../runtime.js';

/** EventBridge Scheduler (port `scheduler`); see queue.ts for why each port has its own module. */
export function scheduleService(deps: Pick<Deps, 'scheduler'>): ScheduleService {
  return deps.scheduler;
}
