import { describe, expect, it } from 'vitest';
import { KeyedLimiter } from '../../../shared/platform/limit.js';

describe('KeyedLimiter', () => {
  it('keeps at most `limit` calls per key in flight, in arrival order, and other keys apart', async () => {
    const limiter = new KeyedLimiter(2);
    let inFlight = 0;
    let most = 0;
    const order: number[] = [];
    const call = (i: number) =>
      limiter.run('pool', async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        order.push(i);
        inFlight--;
        return i;
      });
    const other = limiter.run('other', async () => 'free');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => call(i)));
    expect(results).toEqual([...Array(10).keys()]);
    expect(most).toBe(2);
    expect(await other).toBe('free');
  });

  it('passes a failure on and frees the slot', async () => {
    const limiter = new KeyedLimiter(1);
    await expect(limiter.run('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await limiter.run('k', async () => 'next')).toBe('next');
  });
});
