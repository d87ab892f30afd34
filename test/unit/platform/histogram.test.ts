import { describe, expect, it } from 'vitest';
import { bucketOf, bucketsOf, percentile } from '../../../shared/platform/histogram.js';

const BOUNDS = [100, 200, 500] as const;

describe('histogram', () => {
  it('puts a value in the first bucket whose bound it does not exceed, else the open-ended one', () => {
    expect(bucketOf(BOUNDS, 0)).toBe(0);
    expect(bucketOf(BOUNDS, 100)).toBe(0);
    expect(bucketOf(BOUNDS, 100.5)).toBe(1);
    expect(bucketOf(BOUNDS, 501)).toBe(3);
  });

  it('pairs bounds with counts, the open-ended bucket last', () => {
    expect(bucketsOf(BOUNDS, [1, 2])).toEqual([
      { le_ms: 100, count: 1 },
      { le_ms: 200, count: 2 },
      { le_ms: 500, count: 0 },
      { le_ms: null, count: 0 },
    ]);
  });

  it('interpolates a percentile inside its bucket, from 0 in the first', () => {
    const buckets = bucketsOf(BOUNDS, [10, 10, 0, 0]);
    expect(percentile(buckets, 0.25)).toBe(50);
    expect(percentile(buckets, 0.5)).toBe(100);
    expect(percentile(buckets, 0.75)).toBe(150);
    expect(percentile(buckets, 1)).toBe(200);
  });

  it('answers the lower bound of the open-ended bucket, and null without data', () => {
    expect(percentile(bucketsOf(BOUNDS, [1, 0, 0, 9]), 0.95)).toBe(500);
    expect(percentile(bucketsOf(BOUNDS, []), 0.5)).toBeNull();
  });
});
