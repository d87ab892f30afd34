import { describe, expect, it } from 'vitest';
import { probe, ProbeTimeoutError } from '../../../shared/platform/probe.js';

describe('probe', () => {
  it('reports a check that answers, with its latency', async () => {
    const r = await probe('table', async () => undefined);
    expect(r).toMatchObject({ name: 'table', ok: true });
    expect(r.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('reports a failing check with its error, not as a timeout', async () => {
    const err = new Error('refused');
    const r = await probe('queue', async () => {
      throw err;
    });
    expect(r).toMatchObject({ ok: false, error: err, timedOut: false });
  });

  it('abandons a check that ignores the deadline, and aborts the signal it was given', async () => {
    let signal: AbortSignal | undefined;
    const r = await probe(
      'scheduler',
      (s) => {
        signal = s;
        return new Promise(() => undefined);
      },
      { timeoutMs: 20 },
    );
    expect(r).toMatchObject({ ok: false, timedOut: true });
    expect(!r.ok && r.error).toBeInstanceOf(ProbeTimeoutError);
    expect(!r.ok && (r.error as Error).message).toBe('no answer within 20 ms');
    expect(signal?.aborted).toBe(true);
    expect((signal?.reason as Error).name).toBe('TimeoutError');
  });
});
