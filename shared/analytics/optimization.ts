/**
 * Pure rules of provider analytics: re-routing suggestions, rankings and a provider health score.
 * No I/O: the figures come from the metrics store (shared/analytics/providers.ts).
 */
import type { CostOptimizationView, ProviderFigures } from './providers-model.js';

/** Finished tasks of one task type on one provider/model in the window. */
export interface TaskCell {
  task_type: string;
  provider: string;
  model: string | null;
  finished: number;
  completed: number;
  cost: number;
}

/** A p95 latency at or under this scores full marks in the health score. */
export const HEALTH_LATENCY_TARGET_MS = 10_000;
export const HEALTH_FORMULA = `health = 100 × success_rate × min(1, ${HEALTH_LATENCY_TARGET_MS} / p95 latency ms); null without calls`;

export function healthScore(f: Pick<ProviderFigures, 'success_rate' | 'latency_ms'>): number | null {
  if (f.success_rate === null) return null;
  const p95 = f.latency_ms.p95;
  const speed = p95 === null ? 1 : Math.min(1, HEALTH_LATENCY_TARGET_MS / Math.max(p95, 1));
  return Math.round(1000 * f.success_rate * speed) / 10;
}

const round = (v: number, digits = 6) => Math.round(v * 10 ** digits) / 10 ** digits;

export function costSuggestions(
  cells: TaskCell[],
  opts: { minSamples: number; maxSuccessDrop: number; observedDays: number },
): Pick<CostOptimizationView, 'suggestions' | 'considered'> {
  const byType = new Map<string, TaskCell[]>();
  for (const c of cells) byType.set(c.task_type, [...(byType.get(c.task_type) ?? []), c]);
  const suggestions: CostOptimizationView['suggestions'] = [];
  const considered: CostOptimizationView['considered'] = [];
  for (const [taskType, list] of [...byType.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const skipped = list
      .filter((c) => c.finished < opts.minSamples || c.completed === 0)
      .map((c) => ({
        provider_id: c.provider,
        model: c.model,
        tasks_finished: c.finished,
        reason: c.finished < opts.minSamples ? `${c.finished} finished tasks, fewer than ${opts.minSamples}` : 'no completed task: no cost per success',
      }));
    const candidates = list
      .filter((c) => c.finished >= opts.minSamples && c.completed > 0)
      .map((c) => ({
        provider_id: c.provider,
        model: c.model,
        tasks_finished: c.finished,
        success_rate: round(c.completed / c.finished),
        cost_per_task_usd: round(c.cost / c.finished, 8),
        cost_per_successful_task_usd: round(c.cost / c.completed, 8),
      }))
      .sort((a, b) => a.cost_per_successful_task_usd - b.cost_per_successful_task_usd);
    considered.push({ task_type: taskType, candidates, skipped });
    for (const from of candidates) {
      const monthlyTasks = (from.tasks_finished * 30) / opts.observedDays;
      let best: { to: (typeof candidates)[number]; saving: number } | undefined;
      for (const to of candidates) {
        if (to === from || to.cost_per_successful_task_usd >= from.cost_per_successful_task_usd) continue;
        if (to.success_rate < from.success_rate - opts.maxSuccessDrop) continue;
        const saving = monthlyTasks * from.success_rate * (from.cost_per_successful_task_usd - to.cost_per_successful_task_usd);
        if (!best || saving > best.saving) best = { to, saving };
      }
      if (best && best.saving > 0) {
        suggestions.push({
          task_type: taskType,
          from,
          to: best.to,
          monthly_tasks: round(monthlyTasks, 2),
          expected_monthly_saving_usd: round(best.saving, 6),
          saving_percent: round((100 * (from.cost_per_successful_task_usd - best.to.cost_per_successful_task_usd)) / from.cost_per_successful_task_usd, 2),
        });
      }
    }
  }
  suggestions.sort((a, b) => b.expected_monthly_saving_usd - a.expected_monthly_saving_usd);
  return { suggestions, considered };
}

type Row = ProviderFigures & { health_score: number | null };

export function rankings(table: Row[], minSamples: number) {
  const rank = (rows: Row[], value: (r: Row) => number | null, sample: (r: Row) => number, asc: boolean) =>
    rows
      .filter((r) => sample(r) >= minSamples && value(r) !== null)
      .map((r) => ({ provider_id: r.provider_id, model: r.model, value: value(r)!, sample_size: sample(r) }))
      .sort((a, b) => (asc ? a.value - b.value : b.value - a.value) || b.sample_size - a.sample_size)
      .map((r, i) => ({ rank: i + 1, ...r }));
  return {
    fastest: rank(table, (r) => r.latency_ms.p50, (r) => r.latency_ms.count, true),
    most_reliable: rank(table, (r) => r.success_rate, (r) => r.requests, false),
    cheapest_per_success: rank(table, (r) => r.cost_per_successful_task_usd, (r) => r.tasks_finished, true),
    healthiest: rank(table, (r) => r.health_score, (r) => r.requests, false),
  };
}
