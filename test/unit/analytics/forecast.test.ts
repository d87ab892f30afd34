import { describe, expect, it } from 'vitest';
import { backtest, chooseModel, forecast, seasonDetected } from '../../../shared/analytics/forecast.js';
import { cusumChangePoint, rateSpike, robustBand, robustScore, ROBUST_Z } from '../../../shared/analytics/detect.js';
import { costSuggestions } from '../../../shared/analytics/optimization.js';

const noise = (i: number) => (((i * 7919) % 11) - 5) * 0.3;

describe('forecast', () => {
  it("a linear trend without season: Holt's method, and the continuation inside the intervals", () => {
    const xs = Array.from({ length: 60 }, (_, i) => 10 + 2 * i + noise(i));
    const { fit, season } = chooseModel(xs, 24);
    expect(season.detected).toBe(false);
    expect(fit.method).toBe('holt');
    const fc = forecast(fit, 10);
    fc.forEach((p, k) => {
      const truth = 10 + 2 * (60 + k);
      expect(truth).toBeGreaterThanOrEqual(p.lower);
      expect(truth).toBeLessThanOrEqual(p.upper);
    });
    // Intervals widen with the horizon.
    expect(fc[9].upper - fc[9].lower).toBeGreaterThan(fc[0].upper - fc[0].lower);
    const bt = backtest(xs, 10, fit.method, 24);
    expect(bt.mase).toBeLessThan(1);
    expect(bt.coverage).toBeGreaterThanOrEqual(0.8);
  });

  it('a daily season is detected and modelled', () => {
    const xs = Array.from({ length: 120 }, (_, i) => 100 + 10 * Math.sin((2 * Math.PI * i) / 24) + noise(i));
    expect(seasonDetected(xs, 24).detected).toBe(true);
    const { fit } = chooseModel(xs, 24);
    expect(fit.method).toBe('holt_winters');
    forecast(fit, 24).forEach((p, k) => {
      const truth = 100 + 10 * Math.sin((2 * Math.PI * (120 + k)) / 24);
      expect(truth).toBeGreaterThanOrEqual(p.lower);
      expect(truth).toBeLessThanOrEqual(p.upper);
    });
  });
});

describe('detection rules', () => {
  it('robust z-score: a flat series flags nothing, a spike is flagged with its band', () => {
    const flat = Array.from({ length: 30 }, (_, i) => 50 + noise(i));
    const band = robustBand(flat);
    expect(flat.filter((v) => Math.abs(robustScore(v, band)) > ROBUST_Z)).toEqual([]);
    expect(robustScore(80, band)).toBeGreaterThan(ROBUST_Z);
    expect(80).toBeGreaterThan(band.upper);
    // A constant baseline: its band is the value itself, any departure is flagged.
    const constant = robustBand(Array(10).fill(3));
    expect(robustScore(3, constant)).toBe(0);
    expect(robustScore(4, constant)).toBe(Infinity);
  });

  it('CUSUM finds a mean shift and its place; none in a flat series', () => {
    const xs = Array.from({ length: 40 }, (_, i) => (i < 25 ? 10 : 20) + noise(i));
    const cp = cusumChangePoint(xs)!;
    expect(cp.index).toBe(25);
    expect(cp.after_mean - cp.before_mean).toBeCloseTo(10, 0);
    expect(cp.confidence).toBeGreaterThan(0.99);
    expect(cusumChangePoint(Array.from({ length: 40 }, (_, i) => 10 + noise(i)))).toBeNull();
  });

  it('a rate spike needs the samples and a rise past the threshold', () => {
    expect(rateSpike({ hits: 10, total: 30 }, { hits: 0, total: 30 }, 20)).toMatchObject({ value: 1 / 3, baseline: 0, sample_size: 30 });
    expect(rateSpike({ hits: 10, total: 19 }, { hits: 0, total: 30 }, 20)).toBeNull();
    expect(rateSpike({ hits: 3, total: 100 }, { hits: 2, total: 100 }, 20)).toBeNull();
  });

  it('cost suggestions: only between candidates with enough samples, saving at the observed volume', () => {
    const cells = [
      { task_type: 'code', provider: 'a', model: 'x', finished: 40, completed: 40, cost: 4 },
      { task_type: 'code', provider: 'b', model: 'y', finished: 40, completed: 39, cost: 0.39 },
      { task_type: 'code', provider: 'c', model: 'z', finished: 5, completed: 5, cost: 0.001 },
      { task_type: 'code', provider: 'd', model: 'w', finished: 40, completed: 20, cost: 0.1 },
    ];
    const out = costSuggestions(cells, { minSamples: 20, maxSuccessDrop: 0.05, observedDays: 10 });
    expect(out.suggestions).toHaveLength(1);
    const s = out.suggestions[0];
    expect([s.from.provider_id, s.to.provider_id]).toEqual(['a', 'b']);
    // 40 tasks in 10 days → 120 a month; all succeed on a at 0.1 each, b costs 0.01 per success.
    expect(s.monthly_tasks).toBe(120);
    expect(s.expected_monthly_saving_usd).toBeCloseTo(120 * (0.1 - 0.01), 6);
    expect(out.considered[0].skipped.map((x) => x.provider_id)).toEqual(['c']);
  });
});
