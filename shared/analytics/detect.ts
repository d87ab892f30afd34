/**
 * Detection rules of insights and anomalies: pure, no I/O. Each returns its evidence (value, baseline,
 * threshold, sample size) so an answer can show why it fired.
 */
import { linearRegression, median, medianAbsoluteDeviation } from 'simple-statistics';

/** One-sided z of a rate above its baseline at about 1 % (2.326). */
export const Z_RATE = 2.326;
/** A rate must also rise by this much (absolute) to count. */
export const MIN_RATE_RISE = 0.05;
/** A p95 this many times the previous period's is a regression. */
export const LATENCY_FACTOR = 1.5;
/** Robust z-score above which a value is an anomaly (Iglewicz & Hoaglin). */
export const ROBUST_Z = 3.5;
const MAD_SCALE = 0.6745;

export interface RateEvidence {
  value: number;
  baseline: number;
  threshold: number;
  sample_size: number;
  baseline_sample_size: number;
  z: number;
}

/** A rate (failures/total) now against the previous period: flagged above max(baseline + MIN_RATE_RISE, baseline + z·σ). */
export function rateSpike(cur: { hits: number; total: number }, prev: { hits: number; total: number }, minSamples: number): RateEvidence | null {
  if (cur.total < minSamples || prev.total < minSamples) return null;
  const value = cur.hits / cur.total;
  const baseline = prev.hits / prev.total;
  // Binomial σ of the current rate under the baseline; at least one failure's worth when the baseline is 0.
  const sigma = Math.sqrt(Math.max(baseline * (1 - baseline), 1 / prev.total) / cur.total);
  const threshold = Math.min(1, Math.max(baseline + MIN_RATE_RISE, baseline + Z_RATE * sigma));
  const z = (value - baseline) / sigma;
  return value > threshold ? { value, baseline, threshold, sample_size: cur.total, baseline_sample_size: prev.total, z } : null;
}

export interface Robust {
  median: number;
  mad: number;
  /** |x - median| bound beyond which the score passes ROBUST_Z. */
  lower: number;
  upper: number;
}

/**
 * The robust band of a baseline: median ± ROBUST_Z · MAD / 0.6745. With MAD 0 (over half the values
 * equal), the mean absolute deviation (× 1.2533) stands in; with that 0 too the band is the median
 * itself, so any other value is flagged.
 */
export function robustBand(baseline: readonly number[]): Robust {
  const m = median(baseline as number[]);
  let mad = medianAbsoluteDeviation(baseline as number[]);
  let scale = mad / MAD_SCALE;
  if (mad === 0) {
    const meanAd = baseline.reduce((a, v) => a + Math.abs(v - m), 0) / baseline.length;
    scale = meanAd * 1.2533;
    mad = scale * MAD_SCALE;
  }
  return { median: m, mad, lower: m - ROBUST_Z * scale, upper: m + ROBUST_Z * scale };
}

export function robustScore(value: number, band: Robust): number {
  const scale = band.mad / MAD_SCALE;
  if (scale === 0) return value === band.median ? 0 : Math.sign(value - band.median) * Infinity;
  return (value - band.median) / scale;
}

/** Least-squares slope (per step) and intercept. */
export function slopeOf(values: readonly number[]): { slope: number; intercept: number } {
  if (values.length < 2) return { slope: 0, intercept: values[0] ?? 0 };
  const { m, b } = linearRegression(values.map((v, i) => [i, v]));
  return { slope: m, intercept: b };
}

export interface ChangePoint {
  index: number;
  before_mean: number;
  after_mean: number;
  /** The CUSUM statistic's peak in units of σ. */
  statistic: number;
  /** 1 - p of the peak under no change (Brownian-bridge approximation: p ≈ 2·exp(-2·stat²)). */
  confidence: number;
}

/**
 * The strongest single mean shift of a series by CUSUM: S_k = Σ_{i≤k}(x_i - mean), the change at the
 * |S_k| peak, its size in σ√n (σ: the pooled within-segment standard deviation). Reported when the
 * Kolmogorov-type p of the peak is below `alpha` and both sides hold at least `minSegment` points.
 */
export function cusumChangePoint(xs: readonly number[], minSegment = 5, alpha = 0.01): ChangePoint | null {
  const n = xs.length;
  if (n < 2 * minSegment) return null;
  const mean = xs.reduce((a, v) => a + v, 0) / n;
  let s = 0;
  let best = -1;
  let peak = 0;
  for (let k = 0; k < n - 1; k++) {
    s += xs[k] - mean;
    if (k + 1 >= minSegment && n - k - 1 >= minSegment && Math.abs(s) > peak) {
      peak = Math.abs(s);
      best = k + 1;
    }
  }
  if (best < 0) return null;
  const a = xs.slice(0, best);
  const b = xs.slice(best);
  const ma = a.reduce((x, v) => x + v, 0) / a.length;
  const mb = b.reduce((x, v) => x + v, 0) / b.length;
  const ss = a.reduce((x, v) => x + (v - ma) ** 2, 0) + b.reduce((x, v) => x + (v - mb) ** 2, 0);
  const sigma = Math.sqrt(ss / Math.max(1, n - 2));
  if (sigma === 0) return ma === mb ? null : { index: best, before_mean: ma, after_mean: mb, statistic: Infinity, confidence: 1 };
  const statistic = peak / (sigma * Math.sqrt(n));
  const p = Math.min(1, 2 * Math.exp(-2 * statistic * statistic));
  return p < alpha ? { index: best, before_mean: ma, after_mean: mb, statistic, confidence: 1 - p } : null;
}
