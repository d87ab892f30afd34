/**
 * Forecasts of a regularly spaced series: pure rules, no I/O.
 *
 * - Holt's linear (additive trend) exponential smoothing; Holt-Winters (additive trend and season) when
 *   the series holds at least three seasons and its autocorrelation at the season's lag is significant.
 * - Parameters (alpha, beta, gamma) by grid search on the one-step-ahead squared error.
 * - Prediction intervals from the one-step residuals' standard deviation and the method's h-step
 *   variance multipliers (Hyndman & Athanasopoulos, FPP3 table 5.2): c_j = alpha(1 + j beta) (+ gamma when j
 *   is a multiple of the season).
 * - Back-test: the latest `holdout` points are held out, the model is fitted on the rest and its forecast
 *   is scored with MAPE (when no held-out value is 0) and MASE (scaled by the in-sample naive, or
 *   seasonal naive, one-step error), plus how many held-out values fell inside the intervals.
 */
import { mean, sampleStandardDeviation } from 'simple-statistics';

export interface Fit {
  method: 'holt' | 'holt_winters';
  alpha: number;
  beta: number;
  gamma: number | null;
  season: number | null;
  level: number;
  trend: number;
  seasonal: number[];
  residuals: number[];
  sigma: number;
}

export interface ForecastPoint {
  step: number;
  value: number;
  lower: number;
  upper: number;
}

/** z of a two-sided 95 % interval. */
export const Z95 = 1.959964;
const GRID = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
const TREND_GRID = [0.01, 0.05, 0.1, 0.2, 0.3, 0.5];

/** Sample autocorrelation at `lag`. */
export function autocorrelation(xs: readonly number[], lag: number): number {
  const m = mean(xs as number[]);
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    den += (xs[i] - m) ** 2;
    if (i >= lag) num += (xs[i] - m) * (xs[i - lag] - m);
  }
  return den === 0 ? 0 : num / den;
}

/**
 * Whether a season of `period` is detectable: three seasons of data, and the autocorrelation of the
 * first-differenced series (trend removed) at the lag above the 95 % white-noise bound 1.96/√n and 0.3.
 */
export function seasonDetected(xs: readonly number[], period: number): { detected: boolean; acf: number | null; bound: number | null } {
  if (period < 2 || xs.length < 3 * period) return { detected: false, acf: null, bound: null };
  const diff = xs.slice(1).map((v, i) => v - xs[i]);
  const acf = autocorrelation(diff, period);
  const bound = Math.max(0.3, 1.96 / Math.sqrt(diff.length));
  return { detected: acf > bound, acf, bound };
}

function runHolt(xs: readonly number[], alpha: number, beta: number): Fit {
  let level = xs[0];
  let trend = xs.length > 1 ? xs[1] - xs[0] : 0;
  const residuals: number[] = [];
  for (let t = 1; t < xs.length; t++) {
    const predicted = level + trend;
    residuals.push(xs[t] - predicted);
    const prevLevel = level;
    level = alpha * xs[t] + (1 - alpha) * (level + trend);
    trend = beta * (level - prevLevel) + (1 - beta) * trend;
  }
  return { method: 'holt', alpha, beta, gamma: null, season: null, level, trend, seasonal: [], residuals, sigma: sigmaOf(residuals, 2) };
}

function runHoltWinters(xs: readonly number[], m: number, alpha: number, beta: number, gamma: number): Fit {
  // Initial trend from the first two seasons' means; seasonal indices from the first two seasons'
  // deviations from that line (averaged, centred on 0); level at the end of the first season.
  const first = mean(xs.slice(0, m) as number[]);
  const second = mean(xs.slice(m, 2 * m) as number[]);
  let trend = (second - first) / m;
  const line = (i: number) => first + trend * (i - (m - 1) / 2);
  const raw = Array.from({ length: m }, (_, i) => (xs[i] - line(i) + xs[i + m] - line(i + m)) / 2);
  const centre = mean(raw);
  const seasonal = raw.map((v) => v - centre);
  let level = line(m - 1);
  const residuals: number[] = [];
  for (let t = m; t < xs.length; t++) {
    const s = seasonal[t % m];
    const predicted = level + trend + s;
    residuals.push(xs[t] - predicted);
    const prevLevel = level;
    level = alpha * (xs[t] - s) + (1 - alpha) * (level + trend);
    trend = beta * (level - prevLevel) + (1 - beta) * trend;
    seasonal[t % m] = gamma * (xs[t] - level) + (1 - gamma) * s;
  }
  // Rotate so that seasonal[0] belongs to the step after the last observation.
  const next = xs.length % m;
  const rotated = [...seasonal.slice(next), ...seasonal.slice(0, next)];
  return { method: 'holt_winters', alpha, beta, gamma, season: m, level, trend, seasonal: rotated, residuals, sigma: sigmaOf(residuals, 3) };
}

function sigmaOf(residuals: number[], params: number): number {
  const n = residuals.length;
  if (n <= params) return residuals.length > 1 ? sampleStandardDeviation(residuals) : 0;
  return Math.sqrt(residuals.reduce((a, r) => a + r * r, 0) / (n - params));
}

const sse = (f: Fit) => f.residuals.reduce((a, r) => a + r * r, 0);

export function fitHolt(xs: readonly number[]): Fit {
  let best: Fit | undefined;
  for (const a of GRID) for (const b of TREND_GRID) {
    const f = runHolt(xs, a, b);
    if (!best || sse(f) < sse(best)) best = f;
  }
  return best!;
}

export function fitHoltWinters(xs: readonly number[], m: number): Fit {
  let best: Fit | undefined;
  for (const a of GRID) for (const b of TREND_GRID) for (const g of [0.05, 0.1, 0.2, 0.4]) {
    const f = runHoltWinters(xs, m, a, b, g);
    if (!best || sse(f) < sse(best)) best = f;
  }
  return best!;
}

export function forecast(fit: Fit, horizon: number, z = Z95): ForecastPoint[] {
  const out: ForecastPoint[] = [];
  let variance = 0;
  for (let h = 1; h <= horizon; h++) {
    // Var of the h-step error: sigma² (1 + Σ_{j<h} c_j²)
    const j = h - 1;
    if (j >= 1) {
      const c = fit.alpha * (1 + j * fit.beta) + (fit.season && fit.gamma !== null && j % fit.season === 0 ? fit.gamma : 0);
      variance += c * c;
    }
    const season = fit.season ? fit.seasonal[(h - 1) % fit.season] : 0;
    const value = fit.level + h * fit.trend + season;
    const half = z * fit.sigma * Math.sqrt(1 + variance);
    out.push({ step: h, value, lower: value - half, upper: value + half });
  }
  return out;
}

export interface Choice {
  fit: Fit;
  season: { period: number; detected: boolean; acf: number | null; bound: number | null };
}

export function chooseModel(xs: readonly number[], period: number): Choice {
  const s = seasonDetected(xs, period);
  return { fit: s.detected ? fitHoltWinters(xs, period) : fitHolt(xs), season: { period, ...s } };
}

export interface Backtest {
  holdout: number;
  mape: number | null;
  mase: number | null;
  coverage: number;
}

/** Fits on all but the last `holdout` points (same method as chosen for the whole series) and scores the forecast. */
export function backtest(xs: readonly number[], holdout: number, method: Fit['method'], period: number): Backtest {
  const train = xs.slice(0, xs.length - holdout);
  const test = xs.slice(xs.length - holdout);
  const fit = method === 'holt_winters' && train.length >= 2 * period ? fitHoltWinters(train, period) : fitHolt(train);
  const fc = forecast(fit, holdout);
  const errors = test.map((v, i) => v - fc[i].value);
  const mape = test.every((v) => v !== 0) ? (100 * mean(errors.map((e, i) => Math.abs(e / test[i])))) : null;
  const lag = fit.method === 'holt_winters' ? period : 1;
  const naive: number[] = [];
  for (let t = lag; t < train.length; t++) naive.push(Math.abs(train[t] - train[t - lag]));
  const scale = naive.length ? mean(naive) : 0;
  const mase = scale > 0 ? mean(errors.map(Math.abs)) / scale : null;
  const inside = test.filter((v, i) => v >= fc[i].lower && v <= fc[i].upper).length;
  return { holdout, mape, mase, coverage: inside / holdout };
}
