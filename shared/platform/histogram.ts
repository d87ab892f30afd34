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

// ---------------------------------------------------------------- log-scale sketch (mergeable by addition)

/**
 * A DDSketch-style quantile sketch with relative accuracy `SKETCH_ALPHA`: a positive value v falls in
 * bin ceil(log_γ v) with γ = (1+α)/(1−α); zero in its own bin; a negative value in the mirrored bin of
 * |v|. Bins are integer keys holding counts, so two sketches merge by adding counts (DynamoDB `ADD`),
 * and any quantile read back is within α of the true value (relative).
 */
export const SKETCH_ALPHA = 0.01;
const GAMMA = (1 + SKETCH_ALPHA) / (1 - SKETCH_ALPHA);
const LOG_GAMMA = Math.log(GAMMA);
/** Values with |v| below this count as zero. */
export const SKETCH_MIN_VALUE = 1e-9;

/** Sparse bins: key → count. Keys: `p<i>` (positive), `n<i>` (negative, of |v|), `z` (zero). */
export type SketchBins = Record<string, number>;

/** The bin key of a value. */
export function sketchKeyOf(value: number): string {
  const abs = Math.abs(value);
  if (abs < SKETCH_MIN_VALUE) return 'z';
  const i = Math.ceil(Math.log(abs) / LOG_GAMMA);
  return `${value < 0 ? 'n' : 'p'}${i}`;
}

/** The value a bin stands for (within α of every value it holds). */
export function sketchValueOf(key: string): number {
  if (key === 'z') return 0;
  const i = Number(key.slice(1));
  const v = (2 * Math.pow(GAMMA, i)) / (GAMMA + 1);
  return key[0] === 'n' ? -v : v;
}

/** Adds `from` into `into` (merging two sketches). */
export function mergeSketch(into: SketchBins, from: SketchBins): SketchBins {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
  return into;
}

/**
 * The q-quantile (0..1) of a sketch by nearest rank, clamped to the observed [min, max] when given and
 * within the sketch's accuracy of it. Null without data.
 */
export function sketchQuantile(bins: SketchBins, q: number, bounds?: { min?: number | null; max?: number | null }): number | null {
  const entries = Object.entries(bins).filter(([, n]) => n > 0);
  const total = entries.reduce((a, [, n]) => a + n, 0);
  if (total === 0) return null;
  entries.sort(([a], [b]) => sketchValueOf(a) - sketchValueOf(b));
  // Nearest rank (as exactQuantile of the raw points): the ceil(q × total)-th smallest value.
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  let value = sketchValueOf(entries[entries.length - 1][0]);
  for (const [k, n] of entries) {
    seen += n;
    if (seen >= rank) {
      value = sketchValueOf(k);
      break;
    }
  }
  // The bin's representative value may lie just outside the true extremes (by the sketch's accuracy):
  // the stored min and max correct it. A bound further off is one not settled yet (min and max are
  // written just after the counts, see the metrics store), and the sketch is the better answer.
  const within = (bound: number) => Math.abs(value - bound) <= Math.abs(value) * 2 * SKETCH_ALPHA;
  if (bounds?.min != null && value < bounds.min && within(bounds.min)) value = bounds.min;
  if (bounds?.max != null && value > bounds.max && within(bounds.max)) value = bounds.max;
  return value;
}
