import { costUsd, type ProviderPricing, type ProviderType } from './types.js';
import type { CircuitState } from './circuit-breaker.js';
import { summarize, type UsageCounters } from './usage.js';

/**
 * Ranks providers for a piece of work from what was observed of them (success rate and latency from the
 * usage counters) and what they cost (their pricing at the expected tokens), against the caller's
 * constraints. Each score is shown with its parts, so a caller can see why one provider ranks first.
 *
 * A provider with little or no history gets stated priors rather than invented figures: its success
 * rate is smoothed towards PRIOR_SUCCESS_RATE as if it had PRIOR_WEIGHT_CALLS extra calls, and with no
 * successful call its latency is PRIOR_LATENCY_MS.
 */
export const WEIGHTS = { success_rate: 0.5, latency: 0.2, cost: 0.3 } as const;
export const PRIOR_SUCCESS_RATE = 0.9;
export const PRIOR_WEIGHT_CALLS = 5;
export const PRIOR_LATENCY_MS = 5000;
/** Latency and cost at which those parts score 0.5 when the caller sets no limit. */
export const REFERENCE_LATENCY_MS = 5000;
export const REFERENCE_COST_USD = 0.05;
export const DEFAULT_EXPECTED_TOKENS = { input: 2000, output: 1000 } as const;

export interface Candidate {
  provider_id: string;
  name: string;
  type: ProviderType;
  model: string;
  priority: number;
  pricing: ProviderPricing;
  circuit_state: CircuitState;
  /** Counters summed over the observation window. */
  counters: UsageCounters;
}

export interface Constraints {
  max_cost_usd?: number;
  max_latency_ms?: number;
  min_success_rate?: number;
}

export interface Component {
  value: number | null;
  source: 'observed' | 'prior' | 'pricing';
  samples: number;
  score: number;
  weight: number;
  contribution: number;
}

export interface Recommendation {
  rank: number;
  provider_id: string;
  name: string;
  type: ProviderType;
  model: string;
  score: number;
  meets_constraints: boolean;
  violations: string[];
  circuit_state: CircuitState;
  estimated_cost_usd: number;
  breakdown: { success_rate: Component; latency: Component; cost: Component };
}

export function scoreCandidate(
  c: Candidate,
  constraints: Constraints,
  expected: { input: number; output: number },
): Omit<Recommendation, 'rank'> {
  const observed = summarize(c.counters);

  const successRate = (c.counters.successes + PRIOR_SUCCESS_RATE * PRIOR_WEIGHT_CALLS) / (c.counters.requests + PRIOR_WEIGHT_CALLS);
  const success = component(successRate, c.counters.requests > 0 ? 'observed' : 'prior', c.counters.requests, successRate, WEIGHTS.success_rate);

  const latencyMs = observed.avg_latency_ms ?? PRIOR_LATENCY_MS;
  const latencyRef = constraints.max_latency_ms ?? REFERENCE_LATENCY_MS;
  const latency = component(
    latencyMs,
    observed.avg_latency_ms !== null ? 'observed' : 'prior',
    c.counters.successes,
    latencyRef / (latencyRef + latencyMs),
    WEIGHTS.latency,
  );

  const estimated = costUsd(c.pricing, expected.input, expected.output);
  const costRef = constraints.max_cost_usd ?? REFERENCE_COST_USD;
  const cost = component(estimated, 'pricing', 0, costRef / (costRef + estimated), WEIGHTS.cost);

  const violations: string[] = [];
  if (c.circuit_state === 'open') violations.push('circuit is open: the provider is failing and is not being called');
  if (constraints.max_cost_usd !== undefined && estimated > constraints.max_cost_usd) {
    violations.push(`estimated cost ${estimated} USD exceeds max_cost_usd ${constraints.max_cost_usd}`);
  }
  if (constraints.max_latency_ms !== undefined && latencyMs > constraints.max_latency_ms) {
    violations.push(`${latency.source} latency ${latencyMs} ms exceeds max_latency_ms ${constraints.max_latency_ms}`);
  }
  if (constraints.min_success_rate !== undefined && successRate < constraints.min_success_rate) {
    violations.push(`${success.source} success rate ${round(successRate, 4)} is below min_success_rate ${constraints.min_success_rate}`);
  }

  return {
    provider_id: c.provider_id,
    name: c.name,
    type: c.type,
    model: c.model,
    score: round(success.contribution + latency.contribution + cost.contribution, 4),
    meets_constraints: violations.length === 0,
    violations,
    circuit_state: c.circuit_state,
    estimated_cost_usd: estimated,
    breakdown: { success_rate: success, latency, cost },
  };
}

/** Providers that meet every constraint first, then by score, then by routing priority. */
export function rankCandidates(
  candidates: Candidate[],
  constraints: Constraints,
  expected: { input: number; output: number } = DEFAULT_EXPECTED_TOKENS,
): Recommendation[] {
  const priorityOf = new Map(candidates.map((c) => [c.provider_id, c.priority]));
  return candidates
    .map((c) => scoreCandidate(c, constraints, expected))
    .sort(
      (a, b) =>
        Number(b.meets_constraints) - Number(a.meets_constraints) ||
        b.score - a.score ||
        priorityOf.get(a.provider_id)! - priorityOf.get(b.provider_id)! ||
        a.provider_id.localeCompare(b.provider_id),
    )
    .map((r, i) => ({ rank: i + 1, ...r }));
}

function component(value: number, source: Component['source'], samples: number, score: number, weight: number): Component {
  return { value: round(value, 6), source, samples, score: round(score, 4), weight, contribution: round(score * weight, 4) };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
