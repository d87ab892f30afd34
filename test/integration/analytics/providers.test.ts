import { describe, expect, it, beforeAll } from 'vitest';
import { ulid } from 'ulid';
import { call, eventually, adminSession, type Session } from '../../support/client.js';
import { createTask, customTask, registerLocalProvider, sessionAs, sessionsOf, TERMINAL, waitForStatus } from '../tasks/helpers.js';

const PER_PROVIDER = 5;

/** Provider analytics against figures computed here from the tasks and their sessions. */
describe('analytics: providers', () => {
  let admin: Session;
  let user: Session;
  let cheap: string;
  let dear: string;
  const tasks: Record<string, any[]> = {};
  const sessions: Record<string, any[]> = {};

  beforeAll(async () => {
    admin = await adminSession();
    user = await sessionAs('user');
    cheap = await registerLocalProvider(admin, { pricing: { input_per_million: 1, output_per_million: 2 } });
    dear = await registerLocalProvider(admin, { pricing: { input_per_million: 30, output_per_million: 60 } });
    // A task type of its own, so no other test's tasks mix in.
    for (const p of [cheap, dear]) {
      const created = [];
      for (let i = 0; i < PER_PROVIDER; i++) created.push(await createTask(user, customTask(`provider analytics ${i} ${ulid()}`, { provider_id: p })));
      tasks[p] = await Promise.all(created.map((t) => waitForStatus(user, t.task_id, TERMINAL, 60_000)));
      sessions[p] = (await Promise.all(tasks[p].map((t) => sessionsOf(user, t.task_id)))).flat();
    }
  }, 180_000);

  const want = (p: string) => {
    const ts = tasks[p];
    const completed = ts.filter((t) => t.status === 'completed').length;
    const cost = ts.reduce((a, t) => a + t.cost_usd, 0);
    const latencies = sessions[p].map((s) => s.latency_ms).sort((a: number, b: number) => a - b);
    return {
      requests: sessions[p].length,
      completedCalls: sessions[p].filter((s) => s.outcome === 'completed').length,
      finished: ts.length,
      completed,
      tokensIn: ts.reduce((a, t) => a + t.tokens_in, 0),
      tokensOut: ts.reduce((a, t) => a + t.tokens_out, 0),
      cost,
      latencies,
    };
  };

  const dashboard = (s: Session, q = '') => call('GET', `/api/v1/analytics/providers/dashboard${q}`, { token: s.token });

  it('the dashboard gives each provider its requests, success rate, latency, tokens and cost', async () => {
    const res = await eventually(
      () => dashboard(admin, '?time_range=1h'),
      // Every figure of every task and call is in (they are recorded from several changes, in several batches).
      (r) =>
        r.status === 200 &&
        [cheap, dear].every((p) => {
          const row = r.body.data.providers.find((x: any) => x.provider_id === p);
          const w = want(p);
          return row?.tasks_finished === PER_PROVIDER && row.requests === w.requests && row.latency_ms.count === w.requests && row.tokens_in === w.tokensIn && row.tokens_out === w.tokensOut && Math.abs(row.cost_usd - w.cost) < 1e-9;
        }),
      60_000,
      250,
    );
    const d = res.body.data;
    expect(d.resolution).toBe('minute');
    expect(d.scope).toEqual({ calls: 'all', tasks: 'all' });
    expect(d.items_read).toBeGreaterThan(0);
    for (const p of [cheap, dear]) {
      const w = want(p);
      const row = d.providers.find((x: any) => x.provider_id === p);
      expect(row.model).toBe(tasks[p][0].model);
      expect(row.requests).toBe(w.requests);
      expect(row.calls_by_outcome.completed ?? 0).toBe(w.completedCalls);
      expect(row.success_rate).toBe(w.completedCalls / w.requests);
      expect(row.tasks_completed).toBe(w.completed);
      expect(row.tokens_in).toBe(w.tokensIn);
      expect(row.tokens_out).toBe(w.tokensOut);
      expect(row.cost_usd).toBeCloseTo(w.cost, 9);
      expect(row.cost_per_successful_task_usd).toBeCloseTo(w.cost / w.completed, 9);
      expect(row.latency_ms.count).toBe(w.requests);
      // Nearest rank, as the sketch reads it: the ceil(q·n)-th smallest value, within 1 %.
      const nearest = (q: number) => w.latencies[Math.max(1, Math.ceil(q * w.latencies.length)) - 1];
      expect(Math.abs(row.latency_ms.p50 - nearest(0.5))).toBeLessThanOrEqual(Math.max(1, nearest(0.5) * 0.011));
      expect(Math.abs(row.latency_ms.p95 - nearest(0.95))).toBeLessThanOrEqual(Math.max(1, nearest(0.95) * 0.011));
      expect(row.time_to_first_token_ms.count).toBe(0);
    }
    expect(d.totals.requests).toBe(d.providers.reduce((a: number, r: any) => a + r.requests, 0));
  });

  it('a user sees their own task figures and the platform-wide call figures', async () => {
    const other = await sessionAs('user');
    const res = await dashboard(other, '?time_range=1h');
    expect(res.status).toBe(200);
    expect(res.body.data.scope).toEqual({ calls: 'all', tasks: 'own' });
    const row = res.body.data.providers.find((x: any) => x.provider_id === cheap);
    expect(row.requests).toBe(want(cheap).requests);
    expect(row.tasks_finished).toBe(0);
    expect(row.cost_usd).toBe(0);
  });

  it('one provider as series: the buckets add up to the totals', async () => {
    const res = await call('GET', `/api/v1/analytics/providers/${dear}/metrics?time_range=2h&bucket=minute`, { token: admin.token });
    expect(res.status).toBe(200);
    const d = res.body.data;
    const w = want(dear);
    expect(d.bucket).toBe('minute');
    expect(d.series.length).toBeGreaterThanOrEqual(120);
    expect(d.series.reduce((a: number, p: any) => a + p.requests, 0)).toBe(w.requests);
    expect(d.series.reduce((a: number, p: any) => a + p.tasks_finished, 0)).toBe(w.finished);
    expect(d.series.reduce((a: number, p: any) => a + p.cost_usd, 0)).toBeCloseTo(w.cost, 9);
    expect(d.totals.tokens_in).toBe(w.tokensIn);
    expect(d.models).toHaveLength(1);
    const missing = await call('GET', `/api/v1/analytics/providers/no-such-provider-${ulid().toLowerCase().slice(-6)}/metrics`, { token: admin.token });
    expect(missing.status).toBe(404);
  });

  it('cost optimization suggests the cheaper provider with the saving at observed volume, only with enough samples', async () => {
    const res = await call('GET', `/api/v1/analytics/providers/cost-optimization?time_range=1h&min_samples=${PER_PROVIDER}&max_success_drop=1`, { token: admin.token });
    expect(res.status).toBe(200);
    const d = res.body.data;
    const s = d.suggestions.find((x: any) => x.from.provider_id === dear && x.to.provider_id !== dear);
    expect(s).toBeDefined();
    expect(s.task_type).toBe('custom');
    const from = want(dear);
    expect(s.from.tasks_finished).toBeGreaterThanOrEqual(PER_PROVIDER);
    // Other tests may run tasks of this type on other providers: the best target is at least as cheap as ours.
    const cheapCps = want(cheap).cost / want(cheap).completed;
    expect(s.to.cost_per_successful_task_usd).toBeLessThanOrEqual(cheapCps + 1e-9);
    expect(s.from.cost_per_successful_task_usd).toBeCloseTo(from.cost / from.completed, 6);
    const monthly = (from.finished * 30) / (1 / 24);
    expect(s.monthly_tasks).toBeCloseTo(monthly, 1);
    expect(s.expected_monthly_saving_usd).toBeCloseTo(monthly * s.from.success_rate * (s.from.cost_per_successful_task_usd - s.to.cost_per_successful_task_usd), 4);
    expect(s.expected_monthly_saving_usd).toBeGreaterThan(0);

    const strict = await call('GET', `/api/v1/analytics/providers/cost-optimization?time_range=1h&min_samples=100000`, { token: admin.token });
    expect(strict.status).toBe(200);
    expect(strict.body.data.suggestions).toEqual([]);
    expect(strict.body.data.considered.find((c: any) => c.task_type === 'custom').skipped.some((x: any) => x.provider_id === dear && /fewer than/.test(x.reason))).toBe(true);
  });

  it('performance comparison ranks only rows with enough samples, each with its sample size', async () => {
    const res = await call('GET', `/api/v1/analytics/providers/performance-comparison?time_range=1h&min_samples=${PER_PROVIDER}`, { token: admin.token });
    expect(res.status).toBe(200);
    const d = res.body.data;
    for (const p of [cheap, dear]) expect(d.table.find((r: any) => r.provider_id === p).eligible).toBe(true);
    const cheapest = d.rankings.cheapest_per_success.map((r: any) => r.provider_id);
    expect(cheapest.indexOf(cheap)).toBeLessThan(cheapest.indexOf(dear));
    for (const list of Object.values(d.rankings) as any[][]) {
      list.forEach((r, i) => {
        expect(r.rank).toBe(i + 1);
        expect(r.sample_size).toBeGreaterThanOrEqual(PER_PROVIDER);
      });
    }
    expect(d.health_formula).toContain('success_rate');
  });

  it('bad queries are 422 naming the field', async () => {
    for (const [path, field] of [
      ['/api/v1/analytics/providers/dashboard?time_range=2y', 'time_range'],
      ['/api/v1/analytics/providers/dashboard?range=1h', 'range'],
      ['/api/v1/analytics/providers/cost-optimization?min_samples=1', 'min_samples'],
      ['/api/v1/analytics/providers/cost-optimization?max_success_drop=2', 'max_success_drop'],
      ['/api/v1/analytics/providers/performance-comparison?min_samples=abc', 'min_samples'],
      [`/api/v1/analytics/providers/${cheap}/metrics?bucket=week`, 'bucket'],
      [`/api/v1/analytics/providers/${cheap}/metrics?time_range=365d&bucket=minute`, 'bucket'],
    ] as const) {
      const res = await call('GET', path, { token: admin.token });
      expect(res.status, path).toBe(422);
      expect(JSON.stringify(res.body.errors ?? res.body), path).toContain(field);
    }
  });
});
