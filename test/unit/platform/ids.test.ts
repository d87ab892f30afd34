import { describe, expect, it } from 'vitest';
import { decodeTime, isValid } from 'ulid';
import { derivedUlid, monotonicUlids, newUlid, ulidBound, ulidTime } from '../../../shared/platform/ids.js';

describe('ids', () => {
  it('newUlid: valid ULIDs with the given time, none repeated across many refills of the random block', () => {
    const at = Date.UTC(2026, 11, 2, 15, 4, 5, 6);
    const ids = Array.from({ length: 20_000 }, () => newUlid(at));
    expect(ids.every((id) => isValid(id) && decodeTime(id) === at)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const before = Date.now();
    expect(decodeTime(newUlid())).toBeGreaterThanOrEqual(before);
  });

  it('newUlid: every character of the random part is drawn evenly from the 32 of the alphabet', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 4_000; i++) for (const c of newUlid(1).slice(10)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(32);
    // 64,000 characters: 2,000 expected of each; a biased source would be far off.
    for (const n of counts.values()) expect(Math.abs(n - 2_000)).toBeLessThan(300);
  });

  it('monotonicUlids: sorted in the order made within one millisecond', () => {
    const next = monotonicUlids();
    const at = Date.UTC(2026, 0, 1);
    const ids = Array.from({ length: 1_000 }, () => next(at));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('ulidBound: the lowest and highest ULID of a millisecond; clamped at the epoch and the last encodable time', () => {
    const at = new Date(Date.UTC(2026, 11, 2));
    const id = newUlid(at.getTime());
    expect(ulidBound(at, false) <= id && id <= ulidBound(at, true)).toBe(true);
    expect(ulidBound(at, false)).toBe(ulidTime(at.getTime()) + '0'.repeat(16));
    expect(ulidBound(new Date(-1), false)).toBe('0'.repeat(26));
    // The epoch itself is the epoch (the package's own maker takes a time of 0 as "now").
    expect(ulidBound(new Date(0), false)).toBe('0'.repeat(26));
    expect(ulidBound(new Date(0), true)).toBe('0'.repeat(10) + 'Z'.repeat(16));
    expect(ulidBound(new Date(8.64e15), true)).toBe('7' + 'Z'.repeat(25));
  });

  it('derivedUlid: the same base and label give the same id', () => {
    const base = newUlid();
    expect(derivedUlid(base, 'a')).toBe(derivedUlid(base, 'a'));
    expect(derivedUlid(base, 'a')).not.toBe(derivedUlid(base, 'b'));
    expect(isValid(derivedUlid(base, 'a'))).toBe(true);
  });
});
