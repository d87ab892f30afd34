/**
 * The metrics collector: every minute (an EventBridge rule on AWS, a timer in the local runtime) it
 * samples gauges into the metrics store and compacts the store's closed hours and days. Each sample's
 * source id is the metric and its minute, so a retried or doubled run records each gauge once per
 * minute; compaction may repeat or overlap (see `MetricsStore.compact`).
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { Deps } from '../platform/runtime.js';
import { bucketStart, type CompactionReport, type MetricPoint } from '../platform/metrics/store.js';
import { quotaStatus } from '../agents/service.js';
import { taskStatusCounts } from '../tasks/gauges.js';
import { runningExecutionCount } from '../workflows/gauges.js';
import { metricsStore } from './repo.js';
import { logger } from '../platform/logger.js';

/** The host process's own figures, sampled by the local runtime only (a Lambda's process is the collector's own). */
export interface ProcessSample {
  cpu_percent: number;
  rss_mb: number;
  heap_used_mb: number;
  event_loop_lag_ms: number;
}

export interface CollectReport {
  at: string;
  recorded: number;
  samples: Record<string, number>;
}

export async function collectGauges(deps: Deps, options: { process?: ProcessSample } = {}): Promise<CollectReport> {
  const now = deps.clock.now();
  const minute = new Date(bucketStart(now, 'minute'));
  const storeStarted = performance.now();
  await deps.store.doc.send(new GetCommand({ TableName: deps.store.table, Key: { pk: 'MCATALOG', sk: '-' }, ConsistentRead: true }));
  const storeLatency = performance.now() - storeStarted;
  const [counts, running] = await Promise.all([taskStatusCounts(deps), runningExecutionCount(deps)]);
  const samples: Record<string, number> = {
    'system.tasks_pending': counts.pending,
    'system.tasks_queued': counts.queued,
    'system.tasks_running': counts.running,
    'system.workflows_running': running,
    'system.store_latency_ms': Math.round(storeLatency * 100) / 100,
  };
  if (options.process) {
    samples['system.process_cpu_percent'] = options.process.cpu_percent;
    samples['system.process_rss_mb'] = options.process.rss_mb;
    samples['system.process_heap_used_mb'] = options.process.heap_used_mb;
    samples['system.event_loop_lag_ms'] = options.process.event_loop_lag_ms;
  }
  const store = metricsStore(deps);
  const points: MetricPoint[] = Object.entries(samples).map(([metric, value]) => ({ metric, value, at: minute, labels: {}, sourceId: `collector:${metric}:${minute.toISOString()}`, fixedTime: true }));
  // Quota use per agent with a limit: the larger of its request and token shares of the window, in percent.
  for (const agent of (await quotaStatus(deps)).agents) {
    const shares = (['requests', 'tokens'] as const).flatMap((k) => (agent.limit[k] ? [(agent.used[k] / agent.limit[k]) * 100] : []));
    if (!shares.length) continue;
    const metric = 'system.agent_quota_utilization';
    const value = Math.round(Math.max(...shares) * 100) / 100;
    points.push({ metric, value, at: minute, labels: { agent: agent.agent_id, provider: agent.provider_id }, sourceId: `collector:${metric}:${agent.agent_id}:${minute.toISOString()}`, fixedTime: true });
    samples[`${metric}{agent=${agent.agent_id}}`] = value;
  }
  const recorded = (await store.recordMany(points, now)).filter(Boolean).length;
  return { at: minute.toISOString(), recorded, samples };
}

/** Time a collector run leaves itself before its function's timeout, to stop compaction between buckets. */
const COMPACTION_MARGIN_MS = 10_000;

/**
 * One run of the collector: the gauges and compaction, side by side; each runs whether or not the other
 * fails, and the first failure is thrown after both. `remainingMs` (the Lambda's time left) bounds compaction, which
 * leaves what it did not reach to the next run.
 */
export async function runCollector(deps: Deps, options: { process?: ProcessSample; remainingMs?: () => number } = {}): Promise<CollectReport & { compacted: CompactionReport }> {
  const deadline = options.remainingMs ? performance.now() + options.remainingMs() - COMPACTION_MARGIN_MS : undefined;
  const [gauges, compacted] = await Promise.allSettled([collectGauges(deps, options), metricsStore(deps).compact(deps.clock.now(), { deadline })]);
  if (gauges.status === 'rejected') throw gauges.reason;
  if (compacted.status === 'rejected') throw compacted.reason;
  if (compacted.value.skippedHours) logger.warn('metrics compaction passed over hours whose minutes had expired', { ...compacted.value });
  return { ...gauges.value, compacted: compacted.value };
}
