import { chmodSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { processAlive } from './process-alive.js';

/** Creates the data directory (and its parents) readable by this user only: mode 0700. */
export function prepareDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

export class DataDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`${dir} is in use by another Supervisor runtime (pid ${pid}); stop it first, or choose another DATA_DIR`);
    this.name = 'DataDirLockedError';
  }
}

const held = new Set<string>();

/**
 * Takes `<dir>/runtime.lock` (mode 0600, holding this process's PID), so that a second runtime on the
 * same data directory refuses to start. A lock left by a process that is gone is taken over. Returns
 * the function that releases it.
 */
export function lockDataDir(dir: string): () => void {
  prepareDataDir(dir);
  const file = path.join(dir, 'runtime.lock');
  const key = path.resolve(file);
  if (held.has(key)) throw new DataDirLockedError(dir, process.pid);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    let pid = NaN;
    try {
      pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    } catch {
      // Unreadable or removed meanwhile: treated as stale.
    }
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) throw new DataDirLockedError(dir, pid);
    try {
      unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  held.add(key);
  return () => {
    if (!held.delete(key)) return;
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
    } catch {
      // Already gone.
    }
  };
}
