import { describe, expect, it, beforeAll } from 'vitest';
import { inject } from 'vitest';
import { ulid } from 'ulid';
import { call, adminSession, type Session } from '../../support/client.js';
import { Store } from '../../../shared/platform/store/client.js';
import { MetricsStore } from '../../../shared/platform/metrics/store.js';

const HOUR = 3_600_000;
const suffix = () => ulid().toLowerCase().slice(-10).replace(/[^a-z0-9]/g, 'x');

/** A synthetic hourly series with a known trend and daily season, and small deterministic noise. */
const truth = (i: number) => 50 + 0.5 * i + 10 * Math.sin((2 * Math.PI * i) / 24);
const noise = (i: number) => (((i * 7919) % 11) - 5) * 0.3;

async function collectAll(admin: Session, metric: string, points: { at: number; value: number }[]) {
  for (let i = 0; i < points.length; i += 8) {
    await Promise.all(
      points.slice(i, i + 8).map(async (p, j) => {
        const res = await call('POST', '/api/v1/analytics/collect', {
          token: admin.token,
          body: { event_id: `${metric}-${i + j}`, metric_type: metric, value: p.value, timestamp: new Date(p.at).toISOString() },
        });
        if (res.status !== 201) throw new Error(`collect ${res.status} ${JSON.stringify(res.body)}`);
      }),
    );
  }
}

describe('analytics: trends', () => {
  let admin: Session;
  const seasonal = `synth.season_${suffix()}`;
  const short = `synth.short_${suffix()}`;
  const HISTORY = 144;

  beforeAll(async () => {
    admin = await adminSession();
    const hour = Math.floor(Date.now() / HOUR) * HOUR;
    // Oldest first: i = 0 … 143 are the complete hours before the current one.
    await collectAll(admin, seasonal, Array.from({ length: HISTORY }, (_, i) => ({ at: hour - (HISTORY - i) * HOUR + 60_000, value: truth(i) + noise(i) })));
    await collectAll(admin, short, Array.from({ length: 10 }, (_, i) => ({ at: hour - (10 - i) * HOUR + 60_000, value: i })));
  }, 180_000);

  it('a series with trend and daily season: Holt-Winters, and the true continuation lies within the intervals', async () => {
    const res = await call('GET', `/api/v1/analytics/trends/${seasonal}?prediction_hours=12&history=7d&aggregation=avg`, { token: admin.token });
    expect(res.status).toBe(200);
    const d = res.body.data;
    expect(d.status).toBe('ok');
    expect(d.method).toBe('holt_winters');
    expect(d.season.detected).toBe(true);
    expect(d.season.period).toBe(24);
    expect(d.history.points).toBeGreaterThanOrEqual(HISTORY - 1);
    expect(d.forecast).toHaveLength(12);
    expect(d.interval_level).toBe(0.95);
    // The first forecast bucket follows the last history bucket.
    const lastHistory = Date.parse(d.history.values.at(-1).timestamp);
    expect(Date.parse(d.forecast[0].timestamp)).toBe(lastHistory + HOUR);
    const startIndex = HISTORY - (d.history.points === HISTORY ? 0 : 1) ; // index of the first forecast hour in the synthetic series
    d.forecast.forEach((p: any, k: number) => {
      const i = startIndex + k;
      expect(p.lower).toBeLessThan(p.upper);
      expect(truth(i)).toBeGreaterThanOrEqual(p.lower);
      expect(truth(i)).toBeLessThanOrEqual(p.upper);
    });
    expect(d.backtest.holdout).toBe(12);
    expect(d.backtest.mase).toBeGreaterThan(0);
    expect(d.backtest.mase).toBeLessThan(1.5);
    expect(d.backtest.mape).toBeLessThan(10);
    expect(d.backtest.coverage).toBeGreaterThanOrEqual(0.75);
    expect(d.items_read).toBeGreaterThan(0);
  });

  it('too little history is insufficient_data with how much is needed', async () => {
    const res = await call('GET', `/api/v1/analytics/trends/${short}?prediction_hours=24&aggregation=avg`, { token: admin.token });
    expect(res.status).toBe(200);
    const d = res.body.data;
    expect(d.status).toBe('insufficient_data');
    expect(d.needed).toMatchObject({ points: 48, have: 10 });
    expect(d.forecast).toEqual([]);
    expect(d.method).toBeNull();
  });

  it('bad parameters are 422', async () => {
    for (const [path, field] of [
      [`/api/v1/analytics/trends/${seasonal}?prediction_hours=0`, 'prediction_hours'],
      [`/api/v1/analytics/trends/${seasonal}?prediction_hours=x`, 'prediction_hours'],
      [`/api/v1/analytics/trends/${seasonal}?history=100d`, 'history'],
      [`/api/v1/analytics/trends/${seasonal}?bucket=minute`, 'bucket'],
      [`/api/v1/analytics/trends/${seasonal}?aggregation=median`, 'aggregation'],
      [`/api/v1/analytics/trends/Not-A-Metric`, 'metric_type'],
    ] as const) {
      const res = await call('GET', path, { token: admin.token });
      expect(res.status, path).toBe(422);
      expect(JSON.stringify(res.body), path).toContain(field);
    }
  });
});

describe('analytics: insights', () => {
  let admin: Session;
  const degraded = `ins-${suffix()}`;
  const steady = `ins-${suffix()}`;
  const N = 30;

  beforeAll(async () => {
    admin = await adminSession();
    const metrics = new MetricsStore(new Store({ tableName: 'supervisor', endpoint: inject('dynamodbEndpoint') }));
    const now = Date.now();
    const points = [];
    for (let i = 0; i < N; i++) {
      const before = new Date(now - 36 * HOUR + i * 60_000);
      const recent = new Date(now - 6 * HOUR + i * 60_000);
      for (const [provider, failEvery, slow] of [[degraded, 2, 400], [steady, 0, 100]] as const) {
        points.push({ metric: 'provider.calls', value: 1, at: before, labels: { provider, model: 'm', outcome: 'completed' }, sourceId: `t:${provider}:b:${i}:c` });
        points.push({ metric: 'provider.latency_ms', value: 100 + (i % 5), at: before, labels: { provider, model: 'm', outcome: 'completed' }, sourceId: `t:${provider}:b:${i}:l` });
        const outcome = failEvery && i % failEvery === 0 ? 'failed' : 'completed';
        points.push({ metric: 'provider.calls', value: 1, at: recent, labels: { provider, model: 'm', outcome }, sourceId: `t:${provider}:r:${i}:c` });
        points.push({ metric: 'provider.latency_ms', value: slow + (i % 5), at: recent, labels: { provider, model: 'm', outcome }, sourceId: `t:${provider}:r:${i}:l` });
      }
    }
    for (let i = 0; i < points.length; i += 10) await Promise.all(points.slice(i, i + 10).map((p) => metrics.record(p)));
  }, 180_000);

  it('a degraded provider is reported with its evidence; a steady one is not', async () => {
    const res = await call('GET', `/api/v1/analytics/insights?window=24h&min_samples=${N}`, { token: admin.token });
    expect(res.status).toBe(200);
    const d = res.body.data;
    const mine = d.insights.filter((x: any) => x.subject.provider === degraded);
    const rate = mine.find((x: any) => x.evidence.metric === 'provider.calls');
    expect(rate.kind).toBe('provider_degradation');
    expect(rate.evidence.value).toBe(N / 2 / N);
    expect(rate.evidence.baseline).toBe(0);
    expect(rate.evidence.sample_size).toBe(N);
    expect(rate.evidence.baseline_sample_size).toBe(N);
    expect(rate.evidence.threshold).toBeGreaterThan(0);
    expect(rate.evidence.threshold).toBeLessThan(rate.evidence.value);
    expect(rate.suggested_action).toContain(degraded);
    const latency = mine.find((x: any) => x.evidence.metric === 'provider.latency_ms');
    expect(latency.evidence.value).toBeGreaterThan(400 * 0.99);
    expect(latency.evidence.baseline).toBeLessThan(105 * 1.01);
    expect(latency.evidence.threshold).toBeCloseTo(latency.evidence.baseline * 1.5, 6);
    expect(d.insights.some((x: any) => x.subject.provider === steady)).toBe(false);
    expect(d.checked.map((c: any) => c.kind)).toEqual(expect.arrayContaining(['failure_rate_spike', 'latency_regression', 'cost_anomaly', 'provider_degradation', 'queue_backlog_growth', 'quota_near_exhaustion']));
  });

  it('with more samples demanded than exist, nothing is reported for the provider', async () => {
    const res = await call('GET', `/api/v1/analytics/insights?window=24h&min_samples=${N + 1}`, { token: admin.token });
    expect(res.status).toBe(200);
    expect(res.body.data.insights.some((x: any) => x.subject.provider === degraded)).toBe(false);
  });

  it('bad parameters are 422', async () => {
    for (const q of ['window=30d', 'window=abc', 'min_samples=1', 'foo=1']) {
      const res = await call('GET', `/api/v1/analytics/insights?${q}`, { token: admin.token });
      expect(res.status, q).toBe(422);
    }
  });
});
