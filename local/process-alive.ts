import { readFileSync } from 'node:fs';

/**
 * Whether `pid` is a running process. A process killed with -9 whose parent died too stays a zombie
 * until its new parent reaps it, and a container's PID 1 may never do so; signal 0 still reaches a
 * zombie, so on Linux its state in /proc decides.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !zombie(pid);
}

function zombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name, which is in parentheses and may itself hold ") ".
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}
