/**
 * Which metric points a change of the table stands for: pure rules, no I/O. Each point's `sourceId`
 * names the change it comes from (the item, its version or revision, and the metric), so the same
 * change recorded twice (a redelivered stream record) is counted once.
 */
import type { Change } from '../platform/feed.js';
import { LABEL_VALUE, type Labels, type MetricPoint } from '../platform/metrics/store.js';

/** The items whose changes become points: tasks and their sessions, workflow runs and steps, schedule firings, logins, connections. */
export const METRIC_SOURCE_PREFIXES = ['TASK#', 'EXECUTION#', 'SCHEDULE#', 'SESSION#', 'LOGIN#', 'CONN#'] as const;

/** Outcomes of a schedule firing once it is settled (a claim is `starting` until then). */
const FIRING_SETTLED = new Set(['started', 'skipped', 'failed']);

/** Task statuses after which a task has finished. */
const FINISHED = new Set(['completed', 'failed', 'cancelled']);
const STEP_FINISHED = new Set(['completed', 'failed', 'cancelled', 'skipped']);

/** A label value as the store takes it: disallowed characters become `_`, at most 128 characters. */
export function labelValue(v: unknown): string | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  const text = String(v).replace(/[^A-Za-z0-9_.:/@+-]/g, '_').slice(0, 128);
  return LABEL_VALUE.test(text) ? text : undefined;
}

function labels(entries: Record<string, unknown>): Labels {
  const out: Labels = {};
  for (const [k, v] of Object.entries(entries)) {
    const value = labelValue(v);
    if (value !== undefined) out[k] = value;
  }
  return out;
}

const time = (v: unknown) => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? new Date(v) : undefined);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function pointsOfChange(change: Change): MetricPoint[] {
  const { pk, sk, newImage: after, oldImage: before } = change;
  if (!after || change.kind === 'REMOVE') return [];
  const points: MetricPoint[] = [];
  // A change's points take their times from the change itself: the same change, redelivered, gives the same time.
  const add = (metric: string, value: number | undefined, at: Date | undefined, l: Labels, source: string, fixedTime = true) => {
    if (value === undefined) return;
    points.push({ metric, value, at: at ?? change.at, labels: l, sourceId: `${source}:${metric}`, fixedTime });
  };

  // ------------------------------------------------ tasks
  if (pk.startsWith('TASK#') && sk === 'TASK') {
    const id = `task:${after.task_id}:v${after.version}`;
    const base = { task_type: after.type, provider: after.provider_id, model: after.model, agent: after.agent_id, user: after.created_by };
    if (change.kind === 'INSERT') add('task.created', 1, time(after.created_at), labels({ task_type: after.type, agent: after.agent_id, provider: after.provider_id, user: after.created_by }), id);
    const moved = before?.status !== after.status;
    if (moved && after.status === 'running') {
      const started = time(after.started_at);
      const waitedFrom = time(after.queued_at) ?? time(after.created_at);
      add('task.started', 1, started, labels(base), id);
      if (started && waitedFrom) add('task.queue_wait_ms', Math.max(0, started.getTime() - waitedFrom.getTime()), started, labels(base), id);
    }
    if (moved && FINISHED.has(String(after.status))) {
      const at = time(after.completed_at) ?? time(after.updated_at);
      const l = labels({ ...base, status: after.status, error: (after.error as { code?: string } | null | undefined)?.code });
      add('task.finished', 1, at, l, id);
      add('task.duration_ms', num(after.duration_ms) ?? undefined, at, l, id);
      add('task.attempts', num(after.attempts), at, l, id);
      add('task.tokens_in', num(after.tokens_in), at, l, id);
      add('task.tokens_out', num(after.tokens_out), at, l, id);
      add('task.cost_usd', num(after.cost_usd), at, l, id);
    }
    return points;
  }

  // ------------------------------------------------ provider calls (one session per attempt)
  if (pk.startsWith('TASK#') && sk.startsWith('SESSION#') && change.kind === 'INSERT') {
    const error = after.error as { code?: string } | null | undefined;
    const l = labels({ provider: after.provider_id, model: after.model, outcome: after.outcome, error: error?.code });
    const id = `session:${after.session_id}`;
    const at = time(after.finished_at);
    add('provider.calls', 1, at, l, id);
    add('provider.latency_ms', num(after.latency_ms), at, l, id);
    return points;
  }

  // ------------------------------------------------ workflow runs and steps
  if (pk.startsWith('EXECUTION#') && sk === 'META') {
    const id = `execution:${after.execution_id}:${after.status}`;
    const base = { workflow: after.workflow_id, user: after.created_by };
    if (change.kind === 'INSERT') add('workflow.executions_started', 1, time(after.created_at), labels(base), id);
    if (before?.status !== after.status && FINISHED.has(String(after.status))) {
      const at = time(after.completed_at) ?? change.at;
      const l = labels({ ...base, status: after.status });
      add('workflow.executions_finished', 1, at, l, id);
      add('workflow.execution_duration_ms', num(after.duration_ms), at, l, id);
    }
    return points;
  }
  if (pk.startsWith('EXECUTION#') && sk.startsWith('STEP#')) {
    if (before?.status === after.status || !STEP_FINISHED.has(String(after.status))) return points;
    const id = `step:${after.execution_id}:${after.step_id}:r${after.rev}`;
    const at = time(after.completed_at) ?? change.at;
    const l = labels({ workflow: after.workflow_id, step: after.step_id, status: after.status });
    add('workflow.steps_finished', 1, at, l, id);
    add('workflow.step_duration_ms', num(after.duration_ms), at, l, id);
    return points;
  }

  // ------------------------------------------------ schedule firings: how late each was taken
  if (pk.startsWith('SCHEDULE#') && sk.startsWith('FIRING#')) {
    if (before?.outcome === after.outcome || !FIRING_SETTLED.has(String(after.outcome))) return points;
    const due = time(after.scheduled_for);
    const fired = time(after.fired_at);
    if (due && fired) {
      // One point per firing, whichever settled change of it comes first (a later one may carry another time).
      add('schedule.firing_lag_ms', Math.max(0, fired.getTime() - due.getTime()), fired, labels({ schedule: after.schedule_id, outcome: after.outcome }), `firing:${after.schedule_id}:${after.scheduled_for}`, false);
    }
    return points;
  }

  // ------------------------------------------------ logins and WebSocket connections
  if (pk.startsWith('SESSION#') && sk === 'SESSION' && change.kind === 'INSERT') {
    add('auth.logins', 1, time(after.created_at), labels({ outcome: 'success', user: after.user_id }), `login:${after.session_id}`);
    return points;
  }
  if (pk.startsWith('LOGIN#') && sk === 'FAILURES' && Number(after.failures ?? 0) > Number(before?.failures ?? 0)) {
    add('auth.logins', 1, change.at, labels({ outcome: 'failure' }), `stream:${change.eventId}`);
    return points;
  }
  if (pk.startsWith('CONN#') && sk === 'CONN' && change.kind === 'INSERT') {
    add('realtime.connections', 1, change.at, labels({ user: after.user_id }), `stream:${change.eventId}`);
    return points;
  }
  return points;
}
