import { describe, expect, it } from 'vitest';
import { CHECK_TIMEOUT_MS, overallStatus, runCheck, type DependencyResult } from '../../../shared/health/checks.js';

const result = (name: string, required: boolean, status: DependencyResult['status']): DependencyResult => ({ name, required, status, latency_ms: 1 });

describe('runCheck', () => {
  it('reports a check that answers as healthy with its latency', async () => {
    const r = await runCheck('table', true, async () => undefined);
    expect(r).toMatchObject({ name: 'table', required: true, status: 'healthy' });
    expect(r.latency_ms).toBeGreaterThanOrEqual(0);
  });

  it('reports a failing check as unhealthy with the error class and code only', async () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8000 (secret detail)'), { code: 'ECONNREFUSED' });
    const r = await runCheck('task_queue', true, async () => {
      throw err;
    });
    expect(r).toMatchObject({ status: 'unhealthy', error: 'Error: ECONNREFUSED' });
    expect(r.error).not.toContain('127.0.0.1');
  });

  it('gives up on a check that does not answer in time', async () => {
    const r = await runCheck('scheduler', false, () => new Promise(() => undefined));
    expect(r).toMatchObject({ status: 'unhealthy', error: `no answer within ${CHECK_TIMEOUT_MS} ms` });
  }, CHECK_TIMEOUT_MS + 5000);
});

describe('overallStatus', () => {
  it('is unhealthy when a required dependency is down', () => {
    expect(overallStatus([result('table', true, 'unhealthy'), result('event_bus', false, 'healthy')])).toBe('unhealthy');
  });
  it('is degraded when only optional ones are down, or anything is slow', () => {
    expect(overallStatus([result('table', true, 'healthy'), result('event_bus', false, 'unhealthy')])).toBe('degraded');
    expect(overallStatus([result('table', true, 'degraded')])).toBe('degraded');
  });
  it('is healthy when everything is', () => {
    expect(overallStatus([result('table', true, 'healthy'), result('scheduler', false, 'healthy')])).toBe('healthy');
  });
});
