import type { Deps } from '../runtime.js';

/** The application secret, the key of signed cursors (port `app-secret`); see queue.ts for why each port has its own module. */
export function appSecret(deps: Pick<Deps, 'appSecret'>): Promise<Buffer> {
  return deps.appSecret();
}
