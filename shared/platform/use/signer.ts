import type { TokenSigner } from '../ports.js';
import type { Deps } from '../runtime.js';

/** The access-token signing key (port `signer`); see queue.ts for why each port has its own module. */
export function tokenSigner(deps: Pick<Deps, 'signer'>): TokenSigner {
  return deps.signer;
}
