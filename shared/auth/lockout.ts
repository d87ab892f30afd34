/** Failed logins before the account locks, and how the lock grows with further failures. */
export const LOCK_AFTER_FAILURES = 5;
const BASE_LOCK_SECONDS = 30;
const MAX_LOCK_SECONDS = 15 * 60;

/** Seconds the account stays locked after `failures` consecutive failures (0 = not locked). */
export function lockSecondsAfter(failures: number): number {
  if (failures < LOCK_AFTER_FAILURES) return 0;
  return Math.min(BASE_LOCK_SECONDS * 2 ** (failures - LOCK_AFTER_FAILURES), MAX_LOCK_SECONDS);
}
