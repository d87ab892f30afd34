import { describe, it, expect } from 'vitest';
import { quotaState, reservationThresholds, windowOf } from '../../../shared/agents/quota.js';
import { createAgentBody, updateAgentBody } from '../../../shared/agents/model.js';

describe('quota windows', () => {
  it('are fixed UTC hours and days', () => {
    const w = windowOf('hourly', new Date('2026-01-08T12:34:56.789Z'));
    expect(w.start.toISOString()).toBe('2026-01-08T12:00:00.000Z');
    expect(w.resetsAt.toISOString()).toBe('2026-01-08T13:00:00.000Z');
    const d = windowOf('daily', new Date('2026-01-08T23:59:59.999Z'));
    expect(d.start.toISOString()).toBe('2026-01-08T00:00:00.000Z');
    expect(d.resetsAt.toISOString()).toBe('2026-01-09T00:00:00.000Z');
    expect(windowOf('hourly', new Date('2026-01-08T13:00:00.000Z')).key).not.toBe(w.key);
  });
  it('reports used, remaining and availability', () => {
    const s = quotaState({ window: 'hourly', max_requests: 3, max_tokens: 100 }, { requests: 3, tokens: 40 }, new Date('2026-01-08T12:00:00Z'));
    expect(s.remaining).toEqual({ requests: 0, tokens: 60 });
    expect(s.available).toBe(false);
    expect(quotaState({ window: 'daily', max_requests: null, max_tokens: null }, { requests: 1e6, tokens: 1e9 }, new Date()).available).toBe(true);
  });
  it('turns a reservation into thresholds on the stored counters (conditions cannot add)', () => {
    expect(reservationThresholds({ window: 'hourly', max_requests: 10, max_tokens: 1000 }, 300)).toEqual({ maxRequestsBefore: 9, maxTokensBefore: 700, tokens: 300 });
    // A reservation larger than the whole quota is clamped: it runs alone in a fresh window.
    expect(reservationThresholds({ window: 'hourly', max_requests: null, max_tokens: 100 }, 300)).toEqual({ maxRequestsBefore: null, maxTokensBefore: 0, tokens: 100 });
  });
});

describe('agent input', () => {
  it('needs a provider, a quota window and a concurrency limit, and rejects unknown fields', () => {
    expect(createAgentBody.safeParse({ name: 'a', provider_id: 'local', quota: { window: 'hourly' }, max_concurrency: 2 }).success).toBe(true);
    expect(createAgentBody.safeParse({ name: 'a', provider_id: 'local', quota: { window: 'weekly' }, max_concurrency: 2 }).success).toBe(false);
    expect(createAgentBody.safeParse({ name: 'a', provider_id: 'local', quota: { window: 'hourly' }, max_concurrency: 0 }).success).toBe(false);
    expect(createAgentBody.safeParse({ name: 'a', provider_id: 'local', quota: { window: 'hourly' }, max_concurrency: 1, used: 5 }).success).toBe(false);
    expect(updateAgentBody.safeParse({}).success).toBe(false);
    expect(updateAgentBody.safeParse({ model: null }).success).toBe(true);
  });
});
