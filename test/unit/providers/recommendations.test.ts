import { describe, expect, it } from 'vitest';
import {
  PRIOR_LATENCY_MS,
  PRIOR_SUCCESS_RATE,
  PRIOR_WEIGHT_CALLS,
  WEIGHTS,
  rankCandidates,
  type Candidate,
} from '../../../shared/providers/recommendations.js';
import { emptyCounters, latencyBucketOf, type UsageCounters } from '../../../shared/providers/usage.js';

function counters(requests: number, successes: number, avgLatencyMs: number): UsageCounters {
  const c = emptyCounters();
  c.requests = requests;
  c.successes = successes;
  c.failures = requests - successes;
  c.latency_ms_sum = avgLatencyMs * successes;
  const bucket = Number(latencyBucketOf(avgLatencyMs).slice(4));
  c.latency_buckets[bucket] = successes;
  return c;
}

function candidate(id: string, over: Partial<Candidate> = {}): Candidate {
  return {
    provider_id: id,
    name: id,
    type: 'openai',
    model: 'm',
    priority: 100,
    pricing: { input_per_million: 1, output_per_million: 2 },
    circuit_state: 'closed',
    counters: emptyCounters(),
    ...over,
  };
}

const expected = { input: 1000, output: 1000 };

describe('provider recommendations', () => {
  it('ranks the reliable fast cheap provider first and shows each part of its score', () => {
    const good = candidate('good', { counters: counters(100, 99, 800) });
    const flaky = candidate('flaky', { counters: counters(100, 60, 800) });
    const [first, second] = rankCandidates([flaky, good], {}, expected);
    expect(first.provider_id).toBe('good');
    expect(second.provider_id).toBe('flaky');
    const b = first.breakdown;
    expect(b.success_rate).toMatchObject({ source: 'observed', samples: 100, weight: WEIGHTS.success_rate });
    // Smoothed with the prior: (99 + 0.9 * 5) / (100 + 5)
    expect(b.success_rate.value).toBeCloseTo((99 + PRIOR_SUCCESS_RATE * PRIOR_WEIGHT_CALLS) / (100 + PRIOR_WEIGHT_CALLS), 6);
    expect(b.latency).toMatchObject({ source: 'observed', value: 800, samples: 99 });
    expect(b.cost).toMatchObject({ source: 'pricing', value: 0.003 });
    expect(first.score).toBeCloseTo(b.success_rate.contribution + b.latency.contribution + b.cost.contribution, 3);
    expect(first.estimated_cost_usd).toBe(0.003);
  });

  it('ranks a provider without data with the stated priors', () => {
    const [r] = rankCandidates([candidate('new')], {}, expected);
    expect(r.breakdown.success_rate).toMatchObject({ source: 'prior', samples: 0, value: PRIOR_SUCCESS_RATE });
    expect(r.breakdown.latency).toMatchObject({ source: 'prior', value: PRIOR_LATENCY_MS });
  });

  it('puts providers that violate a constraint after those that meet them, and says why', () => {
    const cheapSlow = candidate('cheap-slow', { pricing: { input_per_million: 0.1, output_per_million: 0.1 }, counters: counters(50, 50, 9000) });
    const pricyFast = candidate('pricy-fast', { pricing: { input_per_million: 15, output_per_million: 75 }, counters: counters(50, 50, 400) });
    const within = rankCandidates([cheapSlow, pricyFast], { max_latency_ms: 2000 }, expected);
    expect(within.map((r) => r.provider_id)).toEqual(['pricy-fast', 'cheap-slow']);
    expect(within[1].meets_constraints).toBe(false);
    expect(within[1].violations[0]).toContain('latency 9000 ms exceeds max_latency_ms 2000');

    const budget = rankCandidates([cheapSlow, pricyFast], { max_cost_usd: 0.01 }, expected);
    expect(budget.map((r) => r.provider_id)).toEqual(['cheap-slow', 'pricy-fast']);
    expect(budget[1].violations[0]).toContain('exceeds max_cost_usd 0.01');
    expect(budget[1].estimated_cost_usd).toBe(0.09);
  });

  it('min_success_rate is checked against the smoothed rate', () => {
    const shaky = candidate('shaky', { counters: counters(20, 15, 500) });
    const [r] = rankCandidates([shaky], { min_success_rate: 0.9 }, expected);
    expect(r.meets_constraints).toBe(false);
    expect(r.violations[0]).toMatch(/observed success rate 0\.78 is below min_success_rate 0\.9/);
  });

  it('an open circuit is a violation', () => {
    const [r] = rankCandidates([candidate('down', { circuit_state: 'open' })], {}, expected);
    expect(r.meets_constraints).toBe(false);
    expect(r.violations[0]).toContain('circuit is open');
  });

  it('breaks ties by routing priority', () => {
    const ranked = rankCandidates([candidate('b', { priority: 50 }), candidate('a', { priority: 10 })], {}, expected);
    expect(ranked.map((r) => [r.rank, r.provider_id])).toEqual([
      [1, 'a'],
      [2, 'b'],
    ]);
  });

  it('more observed latency never scores better', () => {
    const scores = [200, 1000, 5000, 20_000].map(
      (ms) => rankCandidates([candidate('x', { counters: counters(10, 10, ms) })], {}, expected)[0].breakdown.latency.score,
    );
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    expect(new Set(scores).size).toBe(4);
  });
});
