/**
 * The monitoring stream (`/api/v1/monitoring/stream`, or `?stream=monitoring` on AWS; the `monitoring`
 * channel): a `monitoring.update` snapshot when it changes, at most once per subscriber refresh
 * interval, filtered by the subscriber's `alert_severities`; alert events as they happen (see
 * notifier.ts). Reads only the table and posts to connections, so the WebSocket message function can
 * send a new subscriber its first snapshot without the evaluator's ports.
 */
import type { Deps } from '../platform/runtime.js';
import { publishSnapshot } from '../realtime/publisher.js';
import { taskStatusCounts } from '../tasks/gauges.js';
import { MonitoringRepository, type AlertRecord } from './repo.js';
import { SEVERITIES, type Severity } from './model.js';

export const MONITORING_CHANNEL = 'monitoring';
export const MONITORING_UPDATE = 'monitoring.update';
/** Firing alerts a snapshot lists (counts cover them all). */
const SNAPSHOT_ALERTS = 50;

/** The severities a subscriber asked for (`update_preferences.alert_severities`); all when it named none. */
export function severitiesOf(preferences: Record<string, unknown>): readonly Severity[] {
  const asked = preferences.alert_severities;
  return Array.isArray(asked) && asked.length ? SEVERITIES.filter((s) => asked.includes(s)) : SEVERITIES;
}

export interface MonitoringState {
  enabled: boolean;
  last_error: string | null;
  firing: AlertRecord[];
  tasks: { queued: number; pending: number; running: number };
}

/** What every snapshot is built from, read once per push. */
export async function monitoringState(deps: Pick<Deps, 'store'>): Promise<MonitoringState> {
  const repo = new MonitoringRepository(deps.store);
  const [config, evaluator, counts] = await Promise.all([repo.getConfig(), repo.getEvaluator(), taskStatusCounts(deps)]);
  const firing: AlertRecord[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await repo.listAlerts({ limit: 100, status: ['firing'], startKey });
    firing.push(...page.items);
    startKey = page.lastKey;
  } while (startKey && firing.length < 1000);
  return {
    enabled: config?.enabled ?? true,
    last_error: evaluator?.last_error ?? null,
    firing,
    tasks: { queued: counts.queued, pending: counts.pending, running: counts.running },
  };
}

/** One subscriber's snapshot: only the severities it follows. No clock in it, so an unchanged state is not resent. */
export function snapshotFor(state: MonitoringState, preferences: Record<string, unknown>) {
  const severities = severitiesOf(preferences);
  const firing = state.firing.filter((a) => severities.includes(a.severity));
  return {
    severities,
    alerts: {
      firing: Object.fromEntries(severities.map((s) => [s, firing.filter((a) => a.severity === s).length])),
      firing_total: firing.length,
      acknowledged: firing.filter((a) => a.acknowledged_at).length,
    },
    firing_alerts: firing
      .sort((a, b) => SEVERITIES.indexOf(b.severity) - SEVERITIES.indexOf(a.severity) || b.fired_at.localeCompare(a.fired_at))
      .slice(0, SNAPSHOT_ALERTS)
      .map((a) => ({ alert_id: a.alert_id, rule_id: a.rule_id, rule_name: a.rule_name, severity: a.severity, labels: a.labels, value: a.value, fired_at: a.fired_at, acknowledged_at: a.acknowledged_at })),
    utilisation: { tasks_queued: state.tasks.queued, tasks_pending: state.tasks.pending, tasks_running: state.tasks.running },
    evaluator: { enabled: state.enabled, last_error: state.last_error },
  };
}

/**
 * Sends `monitoring.update` to the stream's subscribers whose snapshot changed (at most once per their
 * refresh interval; `force`: these connections at once). Never throws.
 */
export async function pushMonitoringUpdate(deps: Deps, options: { force?: string[] } = {}): Promise<number> {
  const load = async () => {
    const state = await monitoringState(deps);
    return (prefs: Record<string, unknown>) => snapshotFor(state, prefs);
  };
  return publishSnapshot(deps, MONITORING_CHANNEL, MONITORING_UPDATE, load, options);
}
