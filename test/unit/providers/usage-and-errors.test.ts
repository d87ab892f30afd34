import { describe, expect, it } from 'vitest';
import {
  LATENCY_BUCKETS_MS,
  countersFromItem,
  dayRange,
  hourRange,
  latencyBucketOf,
  latencyPercentileMs,
  rankProviders,
  summarize,
  sumCounters,
} from '../../../shared/providers/usage.js';
import { classifyStatus, parseRetryAfter, providerMessage } from '../../../shared/providers/errors.js';
import { costUsd } from '../../../shared/providers/types.js';
import { countTokens } from '../../../shared/providers/tokens.js';
import { estimateTokens } from '../../../shared/platform/tokens.js';

const headers = (h: Record<string, string>) => new Headers(h);

describe('usage counters', () => {
  it('summarizes a stored counter item', () => {
    const item = { requests: 4, successes: 3, failures: 1, tokens_in: 100, tokens_out: 40, cost_usd: 0.0012, latency_ms_sum: 900, lat_1: 2, lat_3: 1, err_rate_limited: 1 };
    const s = summarize(countersFromItem(item));
    expect(s).toMatchObject({ requests: 4, successes: 3, failures: 1, success_rate: 0.75, avg_latency_ms: 300, cost_usd: 0.0012, errors_by_code: { rate_limited: 1 } });
    // Interpolated within the bucket: p50 is 3/4 into (100, 250], p95 is 85 % into (500, 1000].
    expect(s.p50_latency_ms).toBe(213);
    expect(s.p95_latency_ms).toBe(925);
  });

  it('has no rate or latency without calls (null, not zero)', () => {
    expect(summarize(countersFromItem(undefined))).toMatchObject({ requests: 0, success_rate: null, avg_latency_ms: null, p95_latency_ms: null });
  });

  it('puts latencies in the right buckets and estimates percentiles from them', () => {
    expect(latencyBucketOf(50)).toBe('lat_0');
    expect(latencyBucketOf(100)).toBe('lat_0');
    expect(latencyBucketOf(101)).toBe('lat_1');
    expect(latencyBucketOf(10 * 60_000)).toBe(`lat_${LATENCY_BUCKETS_MS.length}`);
    const buckets = LATENCY_BUCKETS_MS.map(() => 0).concat(0);
    buckets[0] = 90;
    buckets[5] = 10;
    expect(latencyPercentileMs(buckets, 50)).toBe(56);
    expect(latencyPercentileMs(buckets, 95)).toBe(3750);
  });

  it('sums counters and their error codes', () => {
    const a = countersFromItem({ requests: 1, failures: 1, err_timeout: 1, cost_usd: 0.1 });
    const b = countersFromItem({ requests: 2, failures: 1, successes: 1, err_timeout: 1, err_server_error: 1, cost_usd: 0.2 });
    const sum = sumCounters([a, b]);
    expect(sum).toMatchObject({ requests: 3, failures: 2, successes: 1, errors_by_code: { timeout: 2, server_error: 1 } });
    expect(sum.cost_usd).toBeCloseTo(0.3, 10);
  });

  it('ranks providers and leaves out those without the needed data', () => {
    const r = rankProviders([
      { provider_id: 'a', counters: countersFromItem({ requests: 10, successes: 9, latency_ms_sum: 9000, cost_usd: 0.9 }) },
      { provider_id: 'b', counters: countersFromItem({ requests: 5, successes: 5, latency_ms_sum: 1000, cost_usd: 0.1 }) },
      { provider_id: 'c', counters: countersFromItem({ requests: 3, failures: 3 }) },
    ]);
    expect(r.by_requests.map((x) => x.provider_id)).toEqual(['a', 'b', 'c']);
    expect(r.by_success_rate.map((x) => [x.provider_id, x.value])).toEqual([['b', 1], ['a', 0.9], ['c', 0]]);
    expect(r.by_avg_latency_ms.map((x) => x.provider_id)).toEqual(['b', 'a']);
    expect(r.by_cost_per_success_usd).toEqual([{ provider_id: 'b', value: 0.02 }, { provider_id: 'a', value: 0.1 }]);
  });

  it('lists UTC days and hours oldest first', () => {
    const now = new Date('2026-03-01T01:30:00Z');
    expect(dayRange(now, 3)).toEqual(['2026-02-27', '2026-02-28', '2026-03-01']);
    expect(hourRange(now, 3)).toEqual(['2026-02-28T23', '2026-03-01T00', '2026-03-01T01']);
  });
});

describe('provider error classification', () => {
  it('classifies HTTP statuses', () => {
    expect([429, 408, 500, 502, 503, 529].map((s) => classifyStatus(s).retryable)).toEqual([true, true, true, true, true, true]);
    expect([400, 401, 403, 404, 413, 422, 409].map((s) => classifyStatus(s).retryable)).toEqual(Array(7).fill(false));
    expect(classifyStatus(401).code).toBe('authentication_failed');
  });

  it('reads Retry-After as seconds, as a date, or as milliseconds', () => {
    const now = new Date('2026-01-08T12:00:00Z');
    expect(parseRetryAfter(headers({ 'retry-after': '12' }), now)).toBe(12);
    expect(parseRetryAfter(headers({ 'retry-after': 'Thu, 08 Jan 2026 12:00:30 GMT' }), now)).toBe(30);
    expect(parseRetryAfter(headers({ 'retry-after-ms': '250' }), now)).toBe(0.25);
    expect(parseRetryAfter(headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(parseRetryAfter(headers({}), now)).toBeUndefined();
  });

  it("takes the provider's own message from each error format", () => {
    expect(providerMessage(JSON.stringify({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } }))).toBe('invalid x-api-key');
    expect(providerMessage(JSON.stringify({ error: { message: 'Incorrect API key provided' } }))).toBe('Incorrect API key provided');
    expect(providerMessage(JSON.stringify({ error: 'model "llama9" not found' }))).toBe('model "llama9" not found');
    expect(providerMessage('<html>502 Bad Gateway</html>')).toBeUndefined();
    expect(providerMessage('x'.repeat(2000))!.length).toBe(500);
  });
});

describe('cost and tokens', () => {
  it('prices tokens per million', () => {
    expect(costUsd({ input_per_million: 3, output_per_million: 15 }, 1000, 2000)).toBe(0.033);
  });
  it('estimates and counts tokens', () => {
    expect(estimateTokens('abcdefgh')).toBe(2);
    expect(countTokens('const x = foo(1);')).toBe(8);
    expect(countTokens('averyveryverylongidentifier')).toBe(4);
  });
});
