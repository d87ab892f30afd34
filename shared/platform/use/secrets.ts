import type { SecretStore } from '../ports.js';
import type { Deps } from '../runtime.js';

/** Provider and agent credentials (port `secrets`); see queue.ts for why each port has its own module. */
export function secretStore(deps: Pick<Deps, 'secrets'>): SecretStore {
  return deps.secrets;
}
