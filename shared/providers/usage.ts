/**
 * Usage counters of a provider and what is derived from them. The store keeps one counter item per
 * provider per UTC day (and per hour, for "recent" figures), each field maintained by an atomic ADD on
 * every call; everything here is computed from those counters, never from a fixed number.
 */
import { bucketOf, bucketsOf, percentile } from '../platform/histogram.js';

/** Upper bounds (ms) of the latency histogram buckets; the last bucket is open-ended. */
export const LATENCY_BUCKETS_MS = [100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000] as const;

/** Counter attribute of the bucket a latency falls into: `lat_0` … `lat_10`. */
export function latencyBucketOf(latencyMs: number): string {
  return `lat_${bucketOf(LATENCY_BUCKETS_MS, latencyMs)}`;
}

/** Counter attribute of an error code: `err_rate_limited`. Codes are sanitised to a safe attribute name. */
export function errorCounterOf(code: string): string {
  return `err_${code.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 48) || 'error'}`;
}

export interface UsageCounters {
  requests: number;
  successes: number;
  failures: number;
  retryable_failures: number;
  tokens_in: number;
  tokens_out: number;
  cost_usd: number;
  /** Sum of the latencies of successful calls. */
  latency_ms_sum: number;
  /** Successful calls per latency bucket (`lat_<i>`). */
  latency_buckets: number[];
  errors_by_code: Record<string, number>;
}

export function emptyCounters(): UsageCounters {
  return {
    requests: 0,
    successes: 0,
    failures: 0,
    retryable_failures: 0,
    tokens_in: 0,
    tokens_out: 0,
    cost_usd: 0,
    latency_ms_sum: 0,
    latency_buckets: LATENCY_BUCKETS_MS.map(() => 0).concat(0),
    errors_by_code: {},
  };
}

/** Reads the counters out of a stored item (missing attributes are zero: nothing was added yet). */
export function countersFromItem(item: Record<string, unknown> | undefined): UsageCounters {
  const out = emptyCounters();
  if (!item) return out;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  out.requests = num(item.requests);
  out.successes = num(item.successes);
  out.failures = num(item.failures);
  out.retryable_failures = num(item.retryable_failures);
  out.tokens_in = num(item.tokens_in);
  out.tokens_out = num(item.tokens_out);
  out.cost_usd = num(item.cost_usd);
  out.latency_ms_sum = num(item.latency_ms_sum);
  out.latency_buckets = out.latency_buckets.map((_, i) => num(item[`lat_${i}`]));
  for (const [key, value] of Object.entries(item)) {
    if (key.startsWith('err_')) out.errors_by_code[key.slice(4)] = num(value);
  }
  return out;
}

export function addCounters(a: UsageCounters, b: UsageCounters): UsageCounters {
  const errors = { ...a.errors_by_code };
  for (const [code, n] of Object.entries(b.errors_by_code)) errors[code] = (errors[code] ?? 0) + n;
  return {
    requests: a.requests + b.requests,
    successes: a.successes + b.successes,
    failures: a.failures + b.failures,
    retryable_failures: a.retryable_failures + b.retryable_failures,
    tokens_in: a.tokens_in + b.tokens_in,
    tokens_out: a.tokens_out + b.tokens_out,
    cost_usd: roundUsd(a.cost_usd + b.cost_usd),
    latency_ms_sum: a.latency_ms_sum + b.latency_ms_sum,
    latency_buckets: a.latency_buckets.map((n, i) => n + (b.latency_buckets[i] ?? 0)),
    errors_by_code: errors,
  };
}

export function sumCounters(list: UsageCounters[]): UsageCounters {
  return list.reduce(addCounters, emptyCounters());
}

/** A latency percentile (0..100) from the histogram, with the one meaning percentiles have here: interpolated within its bucket. */
export function latencyPercentileMs(buckets: number[], percentileRank: number): number | null {
  return percentile(bucketsOf(LATENCY_BUCKETS_MS, buckets), percentileRank / 100);
}

export interface UsageSummary {
  requests: number;
  successes: number;
  failures: number;
  /** successes / requests; null when there were no requests. */
  success_rate: number | null;
  tokens_in: number;
  tokens_out: number;
  cost_usd: number;
  avg_latency_ms: number | null;
  /** Upper bounds of the histogram buckets holding the percentile (an estimate, see LATENCY_BUCKETS_MS). */
  p50_latency_ms: number | null;
  p95_latency_ms: number | null;
  errors_by_code: Record<string, number>;
}

export function summarize(c: UsageCounters): UsageSummary {
  return {
    requests: c.requests,
    successes: c.successes,
    failures: c.failures,
    success_rate: c.requests > 0 ? round(c.successes / c.requests, 4) : null,
    tokens_in: c.tokens_in,
    tokens_out: c.tokens_out,
    cost_usd: roundUsd(c.cost_usd),
    avg_latency_ms: c.successes > 0 ? Math.round(c.latency_ms_sum / c.successes) : null,
    p50_latency_ms: latencyPercentileMs(c.latency_buckets, 50),
    p95_latency_ms: latencyPercentileMs(c.latency_buckets, 95),
    errors_by_code: c.errors_by_code,
  };
}

/** UTC days from `days - 1` days before `now` up to `now`, oldest first (`YYYY-MM-DD`). */
export function dayRange(now: Date, days: number): string[] {
  const out: string[] = [];
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  for (let i = days - 1; i >= 0; i--) out.push(new Date(today - i * 86_400_000).toISOString().slice(0, 10));
  return out;
}

/** UTC hours of the last `hours` hours up to the current one, oldest first (`YYYY-MM-DDTHH`). */
export function hourRange(now: Date, hours: number): string[] {
  const out: string[] = [];
  const current = Math.floor(now.getTime() / 3_600_000) * 3_600_000;
  for (let i = hours - 1; i >= 0; i--) out.push(new Date(current - i * 3_600_000).toISOString().slice(0, 13));
  return out;
}

export const dayOf = (at: Date) => at.toISOString().slice(0, 10);
export const hourOf = (at: Date) => at.toISOString().slice(0, 13);

export interface ProviderUsage {
  provider_id: string;
  counters: UsageCounters;
}

export interface RankingEntry {
  provider_id: string;
  value: number;
}

/**
 * Rankings across providers from their summed counters. Providers without the data a ranking needs
 * (no calls, no successful calls) are left out of that ranking rather than given a made-up value.
 */
export function rankProviders(usages: ProviderUsage[]) {
  const summaries = usages.map((u) => ({ provider_id: u.provider_id, s: summarize(u.counters), c: u.counters }));
  const by = (pick: (x: (typeof summaries)[number]) => number | null, ascending: boolean): RankingEntry[] =>
    summaries
      .map((x) => ({ provider_id: x.provider_id, value: pick(x) }))
      .filter((x): x is RankingEntry => x.value !== null)
      .sort((a, b) => (ascending ? a.value - b.value : b.value - a.value) || a.provider_id.localeCompare(b.provider_id));
  return {
    by_requests: by((x) => (x.s.requests > 0 ? x.s.requests : null), false),
    by_success_rate: by((x) => x.s.success_rate, false),
    by_avg_latency_ms: by((x) => x.s.avg_latency_ms, true),
    by_cost_usd: by((x) => (x.s.requests > 0 ? x.s.cost_usd : null), false),
    /** Cost per successful call: what a finished piece of work costs on this provider. */
    by_cost_per_success_usd: by((x) => (x.s.successes > 0 ? roundUsd(x.c.cost_usd / x.s.successes) : null), true),
  };
}

export function roundUsd(v: number): number {
  return Math.round(v * 1e8) / 1e8;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
