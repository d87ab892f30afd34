import type { Connections } from '../ports.js';
import type { Deps } from '../runtime.js';

/** WebSocket `@connections` (port `connections`); see queue.ts for why each port has its own module. */
export function connectionsOf(deps: Pick<Deps, 'connections'>): Connections {
  return deps.connections;
}
