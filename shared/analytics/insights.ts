/**
 * Insights: findings from the metrics store, each with its evidence (value, baseline, threshold, windows,
 * sample sizes, the rule) and a suggested action. The current window is compared with the one before it
 * (rates, latency) or with the previous seven (cost); the backlog with its own trend within the window.
 */
import type { Deps } from '../platform/runtime.js';
import type { Principal } from '../platform/principal.js';
import { aggregateOf, bucketStart, emptyRollup, mergeRollup, RESOLUTION_MS, type Labels, type Resolution, type RollupGroup } from '../platform/metrics/store.js';
import { quotaStatus } from '../agents/service.js';
import { metricsStore } from './repo.js';
import { rangeMs } from './model.js';
import { LATENCY_FACTOR, rateSpike, robustBand, ROBUST_Z, slopeOf } from './detect.js';
import type { InsightsQuery, InsightsView, InsightView } from './insights-model.js';

const readsAll = (p: Pick<Principal, 'permissions'>) => p.permissions.includes('tasks:read_all');
/** A backlog is looked at from this depth on. */
export const BACKLOG_MIN_DEPTH = 10;
const COST_BASELINE_WINDOWS = 7;
/** An agent's quota this used is near exhaustion. */
export const QUOTA_NEAR = 0.8;

type Group = RollupGroup;
const sumCount = (g: Group, from: number, to: number) => {
  const out = emptyRollup();
  for (const [t, r] of g.buckets) if (t >= from && t < to) mergeRollup(out, r);
  return out;
};

export async function insights(deps: Deps, principal: Principal, q: InsightsQuery): Promise<InsightsView> {
  const now = deps.clock.now().getTime();
  const w = rangeMs(q.window);
  const res: Resolution = w <= 6 * 3_600_000 ? 'minute' : 'hour';
  const step = RESOLUTION_MS[res];
  const end = bucketStart(now, res) + step;
  const start = end - Math.ceil(w / step) * step;
  const prevStart = start - (end - start);
  const iso = (t: number) => new Date(t).toISOString();
  const win = { start: iso(start), end: iso(end) };
  const prevWin = { start: iso(prevStart), end: iso(start) };
  const store = metricsStore(deps);
  let itemsRead = 0;
  const read = async (metric: string, groupBy: string[], labels: Labels, from: number, resolution: Resolution = res) => {
    const r = await store.readRollups({ metric, resolution, start: bucketStart(from, resolution), end: end - 1, labels, groupBy });
    itemsRead += r.itemsRead;
    return r.groups.filter((g) => g.buckets.size);
  };
  const own: Labels = readsAll(principal) ? {} : { user: principal.userId };
  const found: InsightView[] = [];
  const checked: InsightsView['checked'] = [];
  const ms = q.min_samples;

  const [finished, durations, calls, callLatency, costHours, pending, queued] = await Promise.all([
    read('task.finished', ['task_type', 'status'], own, prevStart),
    read('task.duration_ms', ['task_type'], own, prevStart),
    read('provider.calls', ['provider', 'outcome'], {}, prevStart),
    read('provider.latency_ms', ['provider'], {}, prevStart),
    read('task.cost_usd', [], own, start - COST_BASELINE_WINDOWS * (end - start), 'hour'),
    read('system.tasks_pending', [], {}, start),
    read('system.tasks_queued', [], {}, start),
  ]);

  // ---- failure-rate spikes per task type
  {
    const types = new Map<string, { cur: { hits: number; total: number }; prev: { hits: number; total: number } }>();
    for (const g of finished) {
      const t = g.labels.task_type;
      if (!t || g.labels.status === 'cancelled') continue;
      const e = types.get(t) ?? { cur: { hits: 0, total: 0 }, prev: { hits: 0, total: 0 } };
      types.set(t, e);
      const c = sumCount(g, start, end).count;
      const p = sumCount(g, prevStart, start).count;
      e.cur.total += c;
      e.prev.total += p;
      if (g.labels.status === 'failed') {
        e.cur.hits += c;
        e.prev.hits += p;
      }
    }
    let skipped = 0;
    for (const [t, e] of types) {
      if (e.cur.total < ms || e.prev.total < ms) skipped++;
      const ev = rateSpike(e.cur, e.prev, ms);
      if (!ev) continue;
      found.push({
        kind: 'failure_rate_spike',
        severity: ev.value >= 2 * ev.threshold || ev.value >= 0.5 ? 'critical' : 'warning',
        subject: { task_type: t },
        title: `Failure rate of ${t} tasks rose to ${(100 * ev.value).toFixed(1)} % from ${(100 * ev.baseline).toFixed(1)} %`,
        evidence: { metric: 'task.finished', value: ev.value, baseline: ev.baseline, threshold: ev.threshold, window: win, baseline_window: prevWin, sample_size: ev.sample_size, baseline_sample_size: ev.baseline_sample_size, rule: `failed/(completed+failed) above max(baseline + 0.05, baseline + 2.326·σ); z = ${ev.z.toFixed(2)}` },
        suggested_action: `Open the failed ${t} tasks of the window (GET /api/v1/tasks?status=failed&type=${t}) and compare their error codes; if one provider dominates, route the type elsewhere.`,
      });
    }
    checked.push({ kind: 'failure_rate_spike', subjects: types.size, skipped_for_samples: skipped });
  }

  // ---- latency regressions per task type (p95 now vs before)
  {
    let skipped = 0;
    for (const g of durations) {
      const t = g.labels.task_type;
      if (!t) continue;
      const cur = sumCount(g, start, end);
      const prev = sumCount(g, prevStart, start);
      if (cur.count < ms || prev.count < ms) {
        skipped++;
        continue;
      }
      const value = aggregateOf(cur, 'p95', 0)!;
      const baseline = aggregateOf(prev, 'p95', 0)!;
      const threshold = baseline * LATENCY_FACTOR;
      if (value <= threshold) continue;
      found.push({
        kind: 'latency_regression',
        severity: value > 2 * baseline ? 'critical' : 'warning',
        subject: { task_type: t },
        title: `p95 duration of ${t} tasks is ${Math.round(value)} ms, ${(value / baseline).toFixed(1)}× the previous period`,
        evidence: { metric: 'task.duration_ms', value, baseline, threshold, window: win, baseline_window: prevWin, sample_size: cur.count, baseline_sample_size: prev.count, rule: `p95 above ${LATENCY_FACTOR} × the previous period's p95` },
        suggested_action: `Compare the provider latency of the window (GET /api/v1/analytics/providers/dashboard) and the queue wait; a slower provider or larger prompts explain most regressions.`,
      });
    }
    checked.push({ kind: 'latency_regression', subjects: durations.length, skipped_for_samples: skipped });
  }

  // ---- provider degradation: call failure rate or p95 latency against the previous period
  {
    const byProvider = new Map<string, { cur: { hits: number; total: number }; prev: { hits: number; total: number } }>();
    for (const g of calls) {
      const p = g.labels.provider;
      if (!p || g.labels.outcome === 'cancelled') continue;
      const e = byProvider.get(p) ?? { cur: { hits: 0, total: 0 }, prev: { hits: 0, total: 0 } };
      byProvider.set(p, e);
      const c = sumCount(g, start, end).count;
      const pr = sumCount(g, prevStart, start).count;
      e.cur.total += c;
      e.prev.total += pr;
      if (g.labels.outcome !== 'completed') {
        e.cur.hits += c;
        e.prev.hits += pr;
      }
    }
    let skipped = 0;
    for (const [p, e] of byProvider) {
      if (e.cur.total < ms || e.prev.total < ms) skipped++;
      const ev = rateSpike(e.cur, e.prev, ms);
      if (ev) {
        found.push({
          kind: 'provider_degradation',
          severity: ev.value >= 0.5 ? 'critical' : 'warning',
          subject: { provider: p },
          title: `Provider ${p}: ${(100 * ev.value).toFixed(1)} % of calls failed, against ${(100 * ev.baseline).toFixed(1)} % before`,
          evidence: { metric: 'provider.calls', value: ev.value, baseline: ev.baseline, threshold: ev.threshold, window: win, baseline_window: prevWin, sample_size: ev.sample_size, baseline_sample_size: ev.baseline_sample_size, rule: `failed call share above max(baseline + 0.05, baseline + 2.326·σ); z = ${ev.z.toFixed(2)}` },
          suggested_action: `Check GET /api/v1/providers/${p}/health and its circuit; lower its priority or move its task types to another provider until it recovers.`,
        });
      }
    }
    for (const g of callLatency) {
      const p = g.labels.provider;
      if (!p) continue;
      const cur = sumCount(g, start, end);
      const prev = sumCount(g, prevStart, start);
      if (cur.count < ms || prev.count < ms) continue;
      const value = aggregateOf(cur, 'p95', 0)!;
      const baseline = aggregateOf(prev, 'p95', 0)!;
      if (value <= baseline * LATENCY_FACTOR) continue;
      found.push({
        kind: 'provider_degradation',
        severity: value > 2 * baseline ? 'critical' : 'warning',
        subject: { provider: p },
        title: `Provider ${p}: p95 call latency ${Math.round(value)} ms, ${(value / baseline).toFixed(1)}× the previous period`,
        evidence: { metric: 'provider.latency_ms', value, baseline, threshold: baseline * LATENCY_FACTOR, window: win, baseline_window: prevWin, sample_size: cur.count, baseline_sample_size: prev.count, rule: `p95 above ${LATENCY_FACTOR} × the previous period's p95` },
        suggested_action: `Check GET /api/v1/providers/${p}/health; prefer a faster provider for latency-sensitive task types (GET /api/v1/analytics/providers/performance-comparison).`,
      });
    }
    checked.push({ kind: 'provider_degradation', subjects: byProvider.size, skipped_for_samples: skipped });
  }

  // ---- cost anomaly: the window's cost against the previous seven windows (robust z)
  {
    const hourly = costHours[0]?.buckets ?? new Map();
    const span = end - start;
    const windowCost = (from: number) => {
      let s = 0;
      for (const [t, r] of hourly) if (t >= from && t < from + span) s += r.sum;
      return s;
    };
    const value = windowCost(start);
    const baseline = Array.from({ length: COST_BASELINE_WINDOWS }, (_, i) => windowCost(start - (i + 1) * span));
    const withData = baseline.filter((v) => v > 0).length;
    if (withData >= 3) {
      const band = robustBand(baseline);
      if (value > band.upper && value > 0) {
        found.push({
          kind: 'cost_anomaly',
          severity: value > 2 * band.upper ? 'critical' : 'warning',
          subject: {},
          title: `Cost of the window is $${value.toFixed(4)}, above the usual $${band.median.toFixed(4)}`,
          evidence: {
            metric: 'task.cost_usd',
            value,
            baseline: band.median,
            threshold: band.upper,
            window: win,
            baseline_window: { start: iso(start - COST_BASELINE_WINDOWS * span), end: iso(start) },
            sample_size: 1,
            baseline_sample_size: COST_BASELINE_WINDOWS,
            rule: `robust z above ${ROBUST_Z}: median + ${ROBUST_Z} · MAD / 0.6745 of the previous ${COST_BASELINE_WINDOWS} windows' costs`,
          },
          suggested_action: 'See which task types and providers drove the cost (POST /api/v1/analytics/query, task.cost_usd, group_by task_type and provider) and the re-routing suggestions (GET /api/v1/analytics/providers/cost-optimization).',
        });
      }
    }
    checked.push({ kind: 'cost_anomaly', subjects: 1, skipped_for_samples: withData >= 3 ? 0 : 1 });
  }

  // ---- queue backlog growth: the sampled depth's trend within the window
  {
    const depthAt = new Map<number, number>();
    for (const gs of [pending, queued]) for (const g of gs) for (const [t, r] of g.buckets) if (t >= start) depthAt.set(t, (depthAt.get(t) ?? 0) + (r.count ? r.sum / r.count : 0));
    const times = [...depthAt.keys()].sort((a, b) => a - b);
    const depths = times.map((t) => depthAt.get(t)!);
    if (depths.length >= ms) {
      const { slope } = slopeOf(depths);
      const value = depths[depths.length - 1];
      const half = depths.slice(0, Math.floor(depths.length / 2));
      const baseline = half.reduce((a, v) => a + v, 0) / half.length;
      const threshold = Math.max(BACKLOG_MIN_DEPTH, 2 * baseline);
      if (slope > 0 && value >= threshold) {
        found.push({
          kind: 'queue_backlog_growth',
          severity: value >= 4 * Math.max(baseline, 1) ? 'critical' : 'warning',
          subject: {},
          title: `Tasks waiting grew to ${Math.round(value)} (${(slope * (3_600_000 / step)).toFixed(1)} per hour)`,
          evidence: { metric: 'system.tasks_pending+system.tasks_queued', value, baseline, threshold, window: win, baseline_window: { start: iso(times[0]), end: iso(times[half.length] ?? end) }, sample_size: depths.length, baseline_sample_size: half.length, rule: `least-squares slope > 0 and the latest depth ≥ max(${BACKLOG_MIN_DEPTH}, 2 × the first half's mean)` },
          suggested_action: 'Raise worker concurrency or provider rate limits, or pause low-priority schedules; check for a provider whose circuit is open (GET /api/v1/providers/status).',
        });
      }
    }
    checked.push({ kind: 'queue_backlog_growth', subjects: 1, skipped_for_samples: depths.length >= ms ? 0 : 1 });
  }

  // ---- quota near exhaustion: each agent's live window usage (counters kept on write)
  {
    const quota = await quotaStatus(deps);
    let subjects = 0;
    for (const a of quota.agents) {
      for (const dim of ['requests', 'tokens'] as const) {
        const limit = a.limit[dim];
        if (limit === null || limit <= 0) continue;
        subjects++;
        const used = a.used[dim];
        const value = used / limit;
        const windowStart = Date.parse(a.window_start);
        const resets = Date.parse(a.resets_at);
        const elapsed = Math.min(1, Math.max(1e-9, (now - windowStart) / (resets - windowStart)));
        if (value < QUOTA_NEAR) continue;
        found.push({
          kind: 'quota_near_exhaustion',
          severity: value >= 1 ? 'critical' : 'warning',
          subject: { agent: a.agent_id, provider: a.provider_id, dimension: dim },
          title: `Agent ${a.name} used ${(100 * value).toFixed(0)} % of its ${a.window} ${dim} quota with ${(100 * (1 - elapsed)).toFixed(0)} % of the window left`,
          evidence: {
            metric: `agent.quota.${dim}`,
            value,
            baseline: elapsed,
            threshold: QUOTA_NEAR,
            window: { start: a.window_start, end: a.resets_at },
            baseline_window: { start: a.window_start, end: a.resets_at },
            sample_size: used,
            baseline_sample_size: limit,
            rule: `used / limit ≥ ${QUOTA_NEAR}; baseline = share of the window elapsed (even pace)`,
          },
          suggested_action: `Raise the quota of agent ${a.agent_id} (PUT /api/v1/agents/${a.agent_id}) or add another agent on ${a.provider_id}; tasks wait for the window to reset at ${a.resets_at} otherwise.`,
        });
      }
    }
    checked.push({ kind: 'quota_near_exhaustion', subjects, skipped_for_samples: 0 });
  }

  const order = { critical: 0, warning: 1, info: 2 };
  found.sort((a, b) => order[a.severity] - order[b.severity]);
  return {
    window: q.window,
    generated_at: iso(now),
    scope: { tasks: readsAll(principal) ? 'all' : 'own', providers: 'all', system: 'all' },
    insights: found,
    checked,
    items_read: itemsRead,
  };
}
