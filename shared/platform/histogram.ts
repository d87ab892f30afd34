/**
 * Fixed-bucket histograms kept as counters (one counter per bucket), and the percentiles read from
 * them. Bounds are inclusive upper bounds in ascending order; one more, open-ended bucket holds
 * everything above the last bound.
 */

/** A bucket as reported: its upper bound (null for the open-ended last one) and its count. */
export interface HistogramBucket {
  le_ms: number | null;
  count: number;
}

/** Index of the bucket a value falls into: the first bound it does not exceed, else the open-ended one. */
export function bucketOf(bounds: readonly number[], value: number): number {
  const i = bounds.findIndex((bound) => value <= bound);
  return i === -1 ? bounds.length : i;
}

/** The buckets of `bounds` (plus the open-ended one) with their counts. */
export function bucketsOf(bounds: readonly number[], counts: readonly number[]): HistogramBucket[] {
  return [...bounds, null].map((le, i) => ({ le_ms: le, count: counts[i] ?? 0 }));
}

/**
 * The q-quantile (0..1) from the histogram, interpolated linearly inside the bucket that holds it (the
 * first bucket starts at 0; the open-ended last bucket answers its lower bound). Null without data.
 */
export function percentile(buckets: readonly HistogramBucket[], q: number): number | null {
  const total = buckets.reduce((a, b) => a + b.count, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i];
    if (b.count === 0) continue;
    if (seen + b.count >= rank) {
      const lower = i === 0 ? 0 : (buckets[i - 1].le_ms ?? 0);
      if (b.le_ms === null) return lower;
      return Math.round(lower + ((rank - seen) / b.count) * (b.le_ms - lower));
    }
    seen += b.count;
  }
  return buckets[buckets.length - 2]?.le_ms ?? null;
}
