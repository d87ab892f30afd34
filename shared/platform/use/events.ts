import type { EventBus } from '../ports.js';
import type { Deps } from '../runtime.js';

/** The EventBridge bus (port `events`); see queue.ts for why each port has its own module. */
export function eventBus(deps: Pick<Deps, 'events'>): EventBus {
  return deps.events;
}
