import type { FileShare } from '../ports.js';
import type { Deps } from '../runtime.js';

/** Files handed out by an expiring link (port `files`); see queue.ts for why each port has its own module. */
export function fileShare(deps: Pick<Deps, 'files'>): FileShare {
  if (!deps.files) throw new Error('no file share is wired into these deps (port files)');
  return deps.files;
}
