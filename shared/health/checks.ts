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
