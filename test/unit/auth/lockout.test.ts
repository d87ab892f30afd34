import { describe, expect, it } from 'vitest';
import { LOCK_AFTER_FAILURES, lockSecondsAfter } from '../../../shared/auth/lockout.js';

describe('lockSecondsAfter', () => {
  it('does not lock before the threshold', () => {
    for (let f = 0; f < LOCK_AFTER_FAILURES; f++) expect(lockSecondsAfter(f)).toBe(0);
  });

  it('doubles the lock with each further failure, up to 15 minutes', () => {
    const locks = Array.from({ length: 8 }, (_, i) => lockSecondsAfter(LOCK_AFTER_FAILURES + i));
    expect(locks).toEqual([30, 60, 120, 240, 480, 900, 900, 900]);
    expect(lockSecondsAfter(1000)).toBe(900);
  });
});
