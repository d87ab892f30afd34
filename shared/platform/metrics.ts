import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Config } from './config.js';
import { logger } from './logger.js';

/**
 * Business metrics as CloudWatch Embedded Metric Format: one JSON log line per figure, which
 * CloudWatch turns into a metric. No API call and no grant, so writing one costs a log line; the
 * callers write them after the state change they count (never before, never instead of it). Only
 * written where `POWERTOOLS_METRICS_NAMESPACE` is set (every function on AWS, `Supervisor/<stage>`);
 * the local runtime writes none. Each figure carries the `service` dimension (the function).
 */
export const METRICS = {
  tasksCreated: 'TasksCreated',
  tasksCompleted: 'TasksCompleted',
  tasksFailed: 'TasksFailed',
  tasksCancelled: 'TasksCancelled',
  tasksDeadLettered: 'TasksDeadLettered',
  /** Run time of a task that ended (from its start), in milliseconds. */
  taskRunTime: 'TaskRunTime',
  /** Cost of a task that ended, in micro-dollars (CloudWatch units have no currency). */
  taskCostMicroUsd: 'TaskCostMicroUsd',
} as const;
export type MetricName = (typeof METRICS)[keyof typeof METRICS];

export const metricsNamespace = (stage: string): string => `Supervisor/${stage}`;

export interface MetricPoint {
  name: MetricName;
  unit: 'Count' | 'Milliseconds';
  value: number;
}

const instances = new Map<string, Metrics>();

/**
 * Writes these figures as one EMF line. Never throws: a metric that cannot be written must not fail
 * the change it counts (it is logged instead).
 */
export function recordMetrics(config: Pick<Config, 'metricsNamespace'>, points: readonly MetricPoint[]): void {
  const namespace = config.metricsNamespace;
  if (!namespace || points.length === 0) return;
  try {
    let metrics = instances.get(namespace);
    if (!metrics) {
      metrics = new Metrics({ namespace });
      instances.set(namespace, metrics);
    }
    for (const p of points) {
      if (Number.isFinite(p.value)) metrics.addMetric(p.name, p.unit === 'Count' ? MetricUnit.Count : MetricUnit.Milliseconds, p.value);
    }
    metrics.publishStoredMetrics();
  } catch (err) {
    logger.error('metrics not written', { error: err as Error });
  }
}
