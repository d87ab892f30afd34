/**
 * Provider analytics over the metrics store: per provider and model, figures of the calls they served
 * (`provider.calls`, `provider.latency_ms`, `provider.ttft_ms`) and of the tasks they finished
 * (`task.finished`, `task.tokens_in/out`, `task.cost_usd`).
 *
 * Scope: provider calls are provider-level figures and read platform-wide; task figures (counts, tokens,
 * cost) are the caller's own without `tasks:read_all`.
 */
import type { Deps } from '../platform/runtime.js';
import type { Principal } from '../platform/principal.js';
import { aggregateOf, bucketStart, emptyRollup, mergeRollup, RESOLUTION_MS, type Labels, type Resolution, type Rollup, type RollupGroup } from '../platform/metrics/store.js';
import { validationError } from '../platform/errors.js';
import { requireProvider } from '../providers/service.js';
import { metricsStore } from './repo.js';
import { rangeMs } from './model.js';
import { chooseResolution } from './service.js';
import { costSuggestions, rankings, HEALTH_FORMULA, healthScore, type TaskCell } from './optimization.js';
import type { ComparisonView, CostOptimizationView, DashboardView, ProviderFigures, ProviderSeriesView } from './providers-model.js';

const readsAll = (p: Pick<Principal, 'permissions'>) => p.permissions.includes('tasks:read_all');
/** Call outcomes that ended a call (a cancelled call says nothing about the provider). */
const ENDED = ['completed', 'failed', 'retrying', 'lost'];

interface Window {
  start: number;
  end: number;
  resolution: Resolution;
}

function windowOf(deps: Deps, range: string, resolution?: Resolution): Window {
  const now = deps.clock.now().getTime();
  const from = now - rangeMs(range);
  const res = resolution ?? chooseResolution(from, now, now);
  return { start: bucketStart(from, res), end: bucketStart(now, res), resolution: res };
}

/** Reads a metric grouped by labels over a window; counts items read. */
class Reader {
  itemsRead = 0;
  constructor(
    private readonly deps: Deps,
    private readonly w: Window,
  ) {}
  async groups(metric: string, groupBy: string[], labels: Labels = {}): Promise<RollupGroup[]> {
    const r = await metricsStore(this.deps).readRollups({ metric, resolution: this.w.resolution, start: this.w.start, end: this.w.end, labels, groupBy });
    this.itemsRead += r.itemsRead;
    return r.groups.filter((g) => g.buckets.size > 0);
  }
}

export function totalOf(g: Pick<RollupGroup, 'buckets'>): Rollup {
  const out = emptyRollup();
  for (const r of g.buckets.values()) mergeRollup(out, r);
  return out;
}

const keyOf = (provider: string | null | undefined, model: string | null | undefined) => JSON.stringify([provider ?? null, model ?? null]);

interface Cell {
  provider: string;
  model: string | null;
  calls: Record<string, number>;
  latency: Rollup;
  ttft: Rollup;
  finished: number;
  completed: number;
  tokensIn: number;
  tokensOut: number;
  cost: number;
}

function figuresOf(c: Omit<Cell, 'provider' | 'model'>): Omit<ProviderFigures, 'provider_id' | 'model'> {
  const requests = Object.values(c.calls).reduce((a, b) => a + b, 0);
  const ended = ENDED.reduce((a, k) => a + (c.calls[k] ?? 0), 0);
  return {
    requests,
    calls_by_outcome: c.calls,
    success_rate: ended ? (c.calls.completed ?? 0) / ended : null,
    latency_ms: { count: c.latency.count, p50: aggregateOf(c.latency, 'p50', 0), p95: aggregateOf(c.latency, 'p95', 0) },
    time_to_first_token_ms: { count: c.ttft.count, p50: aggregateOf(c.ttft, 'p50', 0), p95: aggregateOf(c.ttft, 'p95', 0) },
    tasks_finished: c.finished,
    tasks_completed: c.completed,
    tokens_in: c.tokensIn,
    tokens_out: c.tokensOut,
    cost_usd: c.cost,
    cost_per_successful_task_usd: c.completed ? c.cost / c.completed : null,
  };
}

const emptyCell = (provider: string, model: string | null): Cell => ({ provider, model, calls: {}, latency: emptyRollup(), ttft: emptyRollup(), finished: 0, completed: 0, tokensIn: 0, tokensOut: 0, cost: 0 });

function mergeCell(into: Omit<Cell, 'provider' | 'model'>, c: Omit<Cell, 'provider' | 'model'>) {
  for (const [k, v] of Object.entries(c.calls)) into.calls[k] = (into.calls[k] ?? 0) + v;
  mergeRollup(into.latency, c.latency);
  mergeRollup(into.ttft, c.ttft);
  into.finished += c.finished;
  into.completed += c.completed;
  into.tokensIn += c.tokensIn;
  into.tokensOut += c.tokensOut;
  into.cost += c.cost;
}

/** Per (provider, model): call and task figures over the window, optionally for one provider only. */
async function cells(reader: Reader, principal: Principal, provider?: string): Promise<Map<string, Cell>> {
  const taskLabels: Labels = { ...(readsAll(principal) ? {} : { user: principal.userId }), ...(provider ? { provider } : {}) };
  const callLabels: Labels = provider ? { provider } : {};
  const [calls, latency, ttft, finished, tin, tout, cost] = await Promise.all([
    reader.groups('provider.calls', ['provider', 'model', 'outcome'], callLabels),
    reader.groups('provider.latency_ms', ['provider', 'model'], callLabels),
    reader.groups('provider.ttft_ms', ['provider', 'model'], callLabels),
    reader.groups('task.finished', ['provider', 'model', 'status'], taskLabels),
    reader.groups('task.tokens_in', ['provider', 'model'], taskLabels),
    reader.groups('task.tokens_out', ['provider', 'model'], taskLabels),
    reader.groups('task.cost_usd', ['provider', 'model'], taskLabels),
  ]);
  const out = new Map<string, Cell>();
  const cell = (g: RollupGroup) => {
    const p = g.labels.provider;
    if (!p) return undefined;
    const k = keyOf(p, g.labels.model);
    let c = out.get(k);
    if (!c) out.set(k, (c = emptyCell(p, g.labels.model ?? null)));
    return c;
  };
  for (const g of calls) {
    const c = cell(g);
    if (c) c.calls[String(g.labels.outcome ?? 'unknown')] = (c.calls[String(g.labels.outcome ?? 'unknown')] ?? 0) + totalOf(g).count;
  }
  for (const g of latency) {
    const c = cell(g);
    if (c) mergeRollup(c.latency, totalOf(g));
  }
  for (const g of ttft) {
    const c = cell(g);
    if (c) mergeRollup(c.ttft, totalOf(g));
  }
  for (const g of finished) {
    const c = cell(g);
    if (!c) continue;
    const n = totalOf(g).count;
    c.finished += n;
    if (g.labels.status === 'completed') c.completed += n;
  }
  const addSum = (groups: RollupGroup[], field: 'tokensIn' | 'tokensOut' | 'cost') => {
    for (const g of groups) {
      const c = cell(g);
      if (c) c[field] += totalOf(g).sum;
    }
  };
  addSum(tin, 'tokensIn');
  addSum(tout, 'tokensOut');
  addSum(cost, 'cost');
  return out;
}

const scopeOf = (principal: Principal) => ({ calls: 'all' as const, tasks: readsAll(principal) ? ('all' as const) : ('own' as const) });
const sortCells = (a: Cell, b: Cell) => a.provider.localeCompare(b.provider) || String(a.model).localeCompare(String(b.model));

export async function providerDashboard(deps: Deps, principal: Principal, range: string): Promise<DashboardView> {
  const w = windowOf(deps, range);
  const reader = new Reader(deps, w);
  const all = [...(await cells(reader, principal)).values()].sort(sortCells);
  const totals = emptyCell('', null);
  for (const c of all) mergeCell(totals, c);
  return {
    time_range: range,
    start: new Date(w.start).toISOString(),
    end: new Date(w.end + RESOLUTION_MS[w.resolution]).toISOString(),
    resolution: w.resolution,
    scope: scopeOf(principal),
    providers: all.map((c) => ({ provider_id: c.provider, model: c.model, ...figuresOf(c) })),
    totals: figuresOf(totals),
    items_read: reader.itemsRead,
  };
}

export async function providerSeries(deps: Deps, principal: Principal, providerId: string, range: string, bucket?: Resolution): Promise<ProviderSeriesView> {
  await requireProvider(deps, providerId);
  const span = rangeMs(range);
  const res: Resolution = bucket ?? (span <= 7 * 86_400_000 ? 'hour' : 'day');
  const w = windowOf(deps, range, res);
  const step = RESOLUTION_MS[res];
  if ((w.end - w.start) / step > 1000) {
    throw validationError([{ path: 'bucket', message: `more than 1000 ${res} buckets in ${range}; choose a coarser bucket` }]);
  }
  const reader = new Reader(deps, w);
  const taskLabels: Labels = { provider: providerId, ...(readsAll(principal) ? {} : { user: principal.userId }) };
  const [byModel, calls, latency, finished, tin, tout, cost] = await Promise.all([
    cells(reader, principal, providerId),
    reader.groups('provider.calls', ['outcome'], { provider: providerId }),
    reader.groups('provider.latency_ms', [], { provider: providerId }),
    reader.groups('task.finished', [], taskLabels),
    reader.groups('task.tokens_in', [], taskLabels),
    reader.groups('task.tokens_out', [], taskLabels),
    reader.groups('task.cost_usd', [], taskLabels),
  ]);
  const at = (gs: RollupGroup[], t: number) => {
    const out = emptyRollup();
    for (const g of gs) {
      const r = g.buckets.get(t);
      if (r) mergeRollup(out, r);
    }
    return out;
  };
  const series: ProviderSeriesView['series'] = [];
  for (let t = w.start; t <= w.end; t += step) {
    let requests = 0;
    let ended = 0;
    let completed = 0;
    for (const g of calls) {
      const n = g.buckets.get(t)?.count ?? 0;
      requests += n;
      if (ENDED.includes(String(g.labels.outcome))) ended += n;
      if (g.labels.outcome === 'completed') completed += n;
    }
    const lat = at(latency, t);
    series.push({
      timestamp: new Date(t).toISOString(),
      requests,
      success_rate: ended ? completed / ended : null,
      latency_p50_ms: aggregateOf(lat, 'p50', 0),
      latency_p95_ms: aggregateOf(lat, 'p95', 0),
      tasks_finished: at(finished, t).count,
      tokens_in: at(tin, t).sum,
      tokens_out: at(tout, t).sum,
      cost_usd: at(cost, t).sum,
    });
  }
  const models = [...byModel.values()].sort(sortCells);
  const totals = emptyCell(providerId, null);
  for (const c of models) mergeCell(totals, c);
  return {
    provider_id: providerId,
    time_range: range,
    bucket: res,
    start: new Date(w.start).toISOString(),
    end: new Date(w.end + step).toISOString(),
    scope: scopeOf(principal),
    totals: figuresOf(totals),
    models: models.map((c) => ({ provider_id: c.provider, model: c.model, ...figuresOf(c) })),
    series,
    items_read: reader.itemsRead,
  };
}

export async function costOptimization(deps: Deps, principal: Principal, q: { time_range: string; min_samples: number; max_success_drop: number }): Promise<CostOptimizationView> {
  const w = windowOf(deps, q.time_range);
  const reader = new Reader(deps, w);
  const labels: Labels = readsAll(principal) ? {} : { user: principal.userId };
  const [finished, cost] = await Promise.all([
    reader.groups('task.finished', ['task_type', 'provider', 'model', 'status'], labels),
    reader.groups('task.cost_usd', ['task_type', 'provider', 'model'], labels),
  ]);
  const byKey = new Map<string, TaskCell>();
  const cellOf = (g: RollupGroup) => {
    const { task_type, provider, model } = g.labels;
    if (!task_type || !provider) return undefined;
    const k = JSON.stringify([task_type, provider, model ?? null]);
    let c = byKey.get(k);
    if (!c) byKey.set(k, (c = { task_type, provider, model: model ?? null, finished: 0, completed: 0, cost: 0 }));
    return c;
  };
  for (const g of finished) {
    const c = cellOf(g);
    if (!c) continue;
    const n = totalOf(g).count;
    c.finished += n;
    if (g.labels.status === 'completed') c.completed += n;
  }
  for (const g of cost) {
    const c = cellOf(g);
    if (c) c.cost += totalOf(g).sum;
  }
  const observedDays = rangeMs(q.time_range) / 86_400_000;
  const out = costSuggestions([...byKey.values()], { minSamples: q.min_samples, maxSuccessDrop: q.max_success_drop, observedDays });
  return {
    time_range: q.time_range,
    min_samples: q.min_samples,
    max_success_drop: q.max_success_drop,
    scope: readsAll(principal) ? 'all' : 'own',
    method:
      'For each task type, every provider/model with at least min_samples finished tasks is a candidate. A suggestion moves the type from a candidate to another whose cost per successful task is lower ' +
      'and whose success rate is at most max_success_drop lower. expected_monthly_saving_usd = monthly_tasks × success_rate(from) × (cost per success(from) − cost per success(to)), monthly_tasks = observed tasks × 30 / days observed. ' +
      'The best target per source is given.',
    ...out,
    items_read: reader.itemsRead,
  };
}

export async function performanceComparison(deps: Deps, principal: Principal, q: { time_range: string; min_samples: number }): Promise<ComparisonView> {
  const w = windowOf(deps, q.time_range);
  const reader = new Reader(deps, w);
  const all = [...(await cells(reader, principal)).values()].sort(sortCells);
  const table = all.map((c) => {
    const f = figuresOf(c);
    return { provider_id: c.provider, model: c.model, ...f, health_score: healthScore(f), eligible: f.requests >= q.min_samples };
  });
  return { time_range: q.time_range, min_samples: q.min_samples, scope: scopeOf(principal), table, rankings: rankings(table, q.min_samples), health_formula: HEALTH_FORMULA, items_read: reader.itemsRead };
}
