import { performance } from 'node:perf_hooks';

/**
 * One probe of a dependency: runs `check` under a deadline and reports whether it answered, how long it
 * took and what failed. Every health check (the health endpoint, the workflow engine's health, a
 * provider's live check) goes through it, so none can hang on a dependency that never answers.
 */

/** A probe's deadline unless its caller gives another. */
export const DEFAULT_PROBE_TIMEOUT_MS = 3000;

/** The check did not answer before the deadline (its signal was aborted with this as the reason). */
export class ProbeTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'TimeoutError';
  }
}

export type ProbeResult =
  | { name: string; ok: true; latencyMs: number }
  | { name: string; ok: false; latencyMs: number; error: unknown; timedOut: boolean };

/**
 * Runs `check` with a signal that aborts at the deadline; a check that ignores the signal is still
 * abandoned then. Never throws: a failure or a timeout is in the result (latency in fractional ms).
 */
export async function probe(name: string, check: (signal: AbortSignal) => Promise<unknown>, options: { timeoutMs?: number } = {}): Promise<ProbeResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const controller = new AbortController();
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(controller.signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const reason = new ProbeTimeoutError(timeoutMs);
          controller.abort(reason);
          reject(reason);
        }, timeoutMs);
      }),
    ]);
    return { name, ok: true, latencyMs: performance.now() - started };
  } catch (error) {
    return { name, ok: false, latencyMs: performance.now() - started, error, timedOut: error instanceof ProbeTimeoutError };
  } finally {
    clearTimeout(timer);
  }
}
