/** Health rules: pure, so that the thresholds are tested without any dependency. */
import { DEFAULT_PROBE_TIMEOUT_MS, probe } from '../platform/probe.js';

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface DependencyResult {
  name: string;
  required: boolean;
  status: HealthStatus;
  latency_ms: number;
  error?: string;
}

export const SLOW_CHECK_MS = 1000;
export const CHECK_TIMEOUT_MS = DEFAULT_PROBE_TIMEOUT_MS;

export async function runCheck(name: string, required: boolean, check: () => Promise<void>): Promise<DependencyResult> {
  const result = await probe(name, check, { timeoutMs: CHECK_TIMEOUT_MS });
  const latency = Math.round(result.latencyMs);
  if (result.ok) return { name, required, status: latency > SLOW_CHECK_MS ? 'degraded' : 'healthy', latency_ms: latency };
  return { name, required, status: 'unhealthy', latency_ms: latency, error: describeError(result.error) };
}

/** A short, safe description: the error's class and code, never a stack or a message with internals. */
function describeError(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string };
  if (e?.message?.startsWith('no answer within')) return e.message;
  const code = e?.code ?? (e as { cause?: { code?: string } })?.cause?.code;
  return [e?.name ?? 'Error', code].filter(Boolean).join(': ') || 'unreachable';
}

/** Unhealthy when a required dependency is; degraded when anything else is not healthy. */
export function overallStatus(results: DependencyResult[]): HealthStatus {
  if (results.some((r) => r.required && r.status === 'unhealthy')) return 'unhealthy';
  if (results.some((r) => r.status !== 'healthy')) return 'degraded';
  return 'healthy';
}

/** What the health routes know of the sweeper (`shared/health/background.ts`). */
export interface SweeperFacts {
  last_run_at?: string;
  last_failure_at?: string;
  failures?: number;
}

/**
 * The sweeper as a dependency (not required: the API works without it, stuck tasks just stay stuck):
 * unhealthy when its last failure is newer than its last finished run, or when no sweep finished for
 * `staleSeconds`; degraded while no sweep has been recorded yet (a new stage's first minute).
 */
export function sweeperHealth(facts: SweeperFacts | undefined, now: Date, staleSeconds: number, latencyMs: number): DependencyResult {
  const result = (status: HealthStatus, error?: string): DependencyResult => ({
    name: 'sweeper',
    required: false,
    status,
    latency_ms: Math.round(latencyMs),
    ...(error ? { error } : {}),
  });
  const lastRun = facts?.last_run_at ? Date.parse(facts.last_run_at) : NaN;
  const lastFailure = facts?.last_failure_at ? Date.parse(facts.last_failure_at) : NaN;
  if (!Number.isNaN(lastFailure) && (Number.isNaN(lastRun) || lastFailure > lastRun)) {
    return result('unhealthy', `the last sweep failed at ${facts!.last_failure_at} (${facts!.failures ?? 1} failed so far; see the sweeper's log)`);
  }
  if (Number.isNaN(lastRun)) return result('degraded', 'no finished sweep recorded yet');
  if (now.getTime() - lastRun > staleSeconds * 1000) return result('unhealthy', `no sweep finished since ${facts!.last_run_at}`);
  return result('healthy');
}
