/**
 * Monitoring use cases: alert rules, the evaluator (Prometheus states per rule and label set, read
 * from the metrics store's minute rollups), alerts, configuration, start/stop and the health view.
 *
 * Exactly once: every state change of a label set is a write conditional on the version it was read
 * at, in one transaction with the alert writes it implies (a firing also checks the rule's version,
 * so a deleted or changed rule cannot fire). Two evaluators racing: one wins each transition, the
 * other writes nothing and notifies nothing. Notifications follow the winning write.
 */
import { newUlid } from '../platform/ids.js';
import type { Deps } from '../platform/runtime.js';
import type { Principal } from '../platform/principal.js';
import { conflict, notFound, validationError } from '../platform/errors.js';
import { epochSeconds } from '../platform/store/client.js';
import { aggregateOf, bucketStart, emptyRollup, mergeRollup, MetricsStore, type RollupResult } from '../platform/metrics/store.js';
import { runCheck, overallStatus } from '../health/checks.js';
import { eventBus } from '../platform/use/events.js';
import { taskStatusCounts } from '../tasks/gauges.js';
import { runningExecutionCount } from '../workflows/gauges.js';
import { MonitoringRepository, ruleKey, type AlertRecord, type ConfigRecord, type RuleRecord, type StateRecord } from './repo.js';
import { holds, INACTIVE, step, type SeriesState } from './rules.js';
import { BusNotifier, streamAlert, type AlertNotifier } from './notifier.js';
import { pushMonitoringUpdate } from './stream.js';
import {
  PLATFORM_METRICS,
  SEVERITIES,
  type AlertView,
  type AlertsQuery,
  type CreateRuleBody,
  type EvaluatorView,
  type MonitoringConfig,
  type RuleView,
} from './model.js';

const DAY_MS = 86_400_000;
const repoOf = (deps: Pick<Deps, 'store'>) => new MonitoringRepository(deps.store);
/** The metrics store, read only here (the analytics area records into it). */
const metricsStore = (deps: Pick<Deps, 'store' | 'config'>) => new MetricsStore(deps.store, { rawRetentionDays: deps.config.metricsRetentionDays });

export const DEFAULT_CONFIG: MonitoringConfig = { evaluation_interval_seconds: 60, retention_days: 30, default_channels: [], enabled: true };

/** Rules seeded at first start, on metrics the platform records. */
export const DEFAULT_RULES: CreateRuleBody[] = [
  {
    name: 'Task queue backlog',
    description: 'More than 50 tasks have waited in the queue on average over 10 minutes, for 5 minutes',
    metric: 'system.tasks_queued',
    aggregation: 'avg',
    window_seconds: 600,
    condition: 'gt',
    threshold: 50,
    for_seconds: 300,
    keep_firing_for_seconds: 300,
    severity: 'warning',
    channels: [],
    enabled: true,
  },
  {
    name: 'Task dead-lettered',
    description: 'A task failed because its queue message went to the dead-letter queue in the last 15 minutes',
    metric: 'task.finished',
    labels: { error: 'dead_lettered' },
    aggregation: 'count',
    window_seconds: 900,
    condition: 'gt',
    threshold: 0,
    for_seconds: 0,
    keep_firing_for_seconds: 300,
    severity: 'critical',
    channels: [],
    enabled: true,
  },
  {
    name: 'Task failures',
    description: 'More than 10 tasks failed in 15 minutes',
    metric: 'task.finished',
    labels: { status: 'failed' },
    aggregation: 'count',
    window_seconds: 900,
    condition: 'gt',
    threshold: 10,
    for_seconds: 300,
    keep_firing_for_seconds: 600,
    severity: 'warning',
    channels: [],
    enabled: true,
  },
  {
    name: 'Provider call failures',
    description: 'More than 10 provider calls failed in 15 minutes, per provider',
    metric: 'provider.calls',
    labels: { outcome: 'failed' },
    group_by: ['provider'],
    aggregation: 'count',
    window_seconds: 900,
    condition: 'gt',
    threshold: 10,
    for_seconds: 300,
    keep_firing_for_seconds: 600,
    severity: 'warning',
    channels: [],
    enabled: true,
  },
  {
    name: 'Agent quota nearly used',
    description: 'An agent has used more than 90 % of its request or token quota for the window (sampled every minute), per agent',
    metric: 'system.agent_quota_utilization',
    group_by: ['agent'],
    aggregation: 'max',
    window_seconds: 300,
    condition: 'gt',
    threshold: 90,
    for_seconds: 0,
    keep_firing_for_seconds: 300,
    severity: 'warning',
    channels: [],
    enabled: true,
  },
  {
    name: 'Schedule firing lag',
    description: 'A schedule firing was taken more than 60 s after it was due in the last 15 minutes, per schedule',
    metric: 'schedule.firing_lag_ms',
    group_by: ['schedule'],
    aggregation: 'max',
    window_seconds: 900,
    condition: 'gt',
    threshold: 60_000,
    for_seconds: 0,
    keep_firing_for_seconds: 600,
    severity: 'warning',
    channels: [],
    enabled: true,
  },
];

function ruleRecord(body: CreateRuleBody, id: string, nowIso: string, builtin: boolean): RuleRecord {
  return {
    rule_id: id,
    name: body.name,
    description: body.description ?? null,
    metric: body.metric,
    labels: body.labels ?? {},
    group_by: body.group_by ?? [],
    aggregation: body.aggregation,
    window_seconds: body.window_seconds,
    condition: body.condition,
    threshold: body.threshold,
    for_seconds: body.for_seconds,
    keep_firing_for_seconds: body.keep_firing_for_seconds ?? 0,
    severity: body.severity,
    channels: body.channels ?? [],
    enabled: body.enabled ?? true,
    builtin,
    created_at: nowIso,
    updated_at: nowIso,
    version: 1,
  };
}

// ---------------------------------------------------------------- first start

/** Stores the default configuration and seeds the default rules, once (the first caller wins; all or nothing). */
export async function ensureMonitoring(deps: Deps): Promise<ConfigRecord> {
  const repo = repoOf(deps);
  const existing = await repo.getConfig();
  if (existing) return existing;
  const nowIso = deps.clock.now().toISOString();
  const config: ConfigRecord = { ...DEFAULT_CONFIG, updated_at: null, updated_by: null, version: 1 };
  await repo.createRules(
    DEFAULT_RULES.map((r) => ruleRecord(r, newUlid(), nowIso, true)),
    [repo.configItem(config)],
  );
  return (await repo.getConfig()) ?? config;
}

// ---------------------------------------------------------------- rules

async function checkMetric(deps: Deps, metric: string, group_by: string[], labels: Record<string, string>): Promise<void> {
  const known = new Set<string>([...PLATFORM_METRICS, ...(await metricsStore(deps).metrics())]);
  if (!known.has(metric)) {
    throw validationError([{ path: 'metric', message: `unknown metric; the metrics store knows: ${[...known].sort().join(', ')}` }]);
  }
  const clash = group_by.find((k) => k in labels);
  if (clash) throw validationError([{ path: 'group_by', message: `"${clash}" is also a label filter` }]);
}

export async function createRule(deps: Deps, body: CreateRuleBody): Promise<RuleView> {
  await ensureMonitoring(deps);
  await checkMetric(deps, body.metric, body.group_by ?? [], body.labels ?? {});
  const rule = ruleRecord(body, newUlid(), deps.clock.now().toISOString(), false);
  if (!(await repoOf(deps).createRules([rule]))) throw conflict(`A rule named "${body.name}" already exists`);
  return ruleViewOf(rule, []);
}

export async function replaceRule(deps: Deps, ruleId: string, body: CreateRuleBody): Promise<RuleView> {
  const repo = repoOf(deps);
  const before = await repo.getRule(ruleId);
  if (!before) throw notFound('Alert rule');
  await checkMetric(deps, body.metric, body.group_by ?? [], body.labels ?? {});
  const after: RuleRecord = { ...ruleRecord(body, ruleId, before.created_at, before.builtin), updated_at: deps.clock.now().toISOString(), version: before.version + 1 };
  const outcome = await repo.replaceRule(before, after);
  if (outcome === 'name_taken') throw conflict(`A rule named "${body.name}" already exists`);
  if (outcome === 'changed') throw conflict('The rule changed meanwhile; read it again');
  // Another series now: the alerts of the old one end.
  const sameSeries = before.metric === after.metric && JSON.stringify(before.labels) === JSON.stringify(after.labels) && before.group_by.join() === after.group_by.join();
  if (!sameSeries || !after.enabled) await closeRuleAlerts(deps, after, 'rule_changed', !sameSeries);
  return ruleViewOf(after, await repo.states(ruleId));
}

export async function deleteRule(deps: Deps, ruleId: string): Promise<{ rule_id: string; deleted: true; resolved_alerts: number }> {
  const repo = repoOf(deps);
  const rule = await repo.getRule(ruleId);
  if (!rule) throw notFound('Alert rule');
  const resolved = await closeRuleAlerts(deps, rule, 'rule_deleted', false);
  if (!(await repo.deleteRule(rule, await repo.states(ruleId)))) throw notFound('Alert rule');
  if (resolved) await pushMonitoringUpdate(deps);
  return { rule_id: ruleId, deleted: true, resolved_alerts: resolved };
}

/** Resolves a rule's firing alerts (and resets its label sets); `dropStates` deletes the states too. */
async function closeRuleAlerts(deps: Deps, rule: RuleRecord, reason: 'rule_deleted' | 'rule_changed', dropStates: boolean): Promise<number> {
  const repo = repoOf(deps);
  const config = await ensureMonitoring(deps);
  const now = deps.clock.now();
  let resolved = 0;
  for (const s of await repo.states(rule.rule_id)) {
    if (s.state === 'inactive' && !dropStates) continue;
    const next: StateRecord = { ...s, ...INACTIVE, changed_at: now.toISOString() };
    const writes = s.state === 'firing' && s.alert_id ? [{ Update: repo.alertResolve(s.alert_id, now.toISOString(), s.last_value, reason, expiryOf(now, config)) }] : [];
    if (await repo.transition(next, s.version, writes)) {
      if (writes.length) {
        resolved++;
        await notify(deps, new BusNotifier(deps), 'alert.resolved', s.alert_id!, rule, config);
      }
    }
  }
  return resolved;
}

export async function listRules(deps: Deps): Promise<RuleView[]> {
  await ensureMonitoring(deps);
  const repo = repoOf(deps);
  const rules = await repo.listRules();
  return Promise.all(rules.map(async (r) => ruleViewOf(r, await repo.states(r.rule_id))));
}

const STATE_RANK = { inactive: 0, pending: 1, firing: 2 } as const;

function ruleViewOf(rule: RuleRecord, states: StateRecord[]): RuleView {
  const { version: _v, ...fields } = rule;
  const top = states.reduce<StateRecord | undefined>((best, s) => (!best || STATE_RANK[s.state] > STATE_RANK[best.state] ? s : best), undefined);
  const latest = states.reduce<StateRecord | undefined>((l, s) => (!l || s.changed_at > l.changed_at ? s : l), undefined);
  return {
    ...fields,
    state: top?.state ?? 'inactive',
    last_value: (top && top.state !== 'inactive' ? top : latest)?.last_value ?? null,
    last_changed_at: latest?.changed_at ?? null,
    series: states.map((s) => ({ labels: s.labels, state: s.state, value: s.last_value, active_since: s.active_since, alert_id: s.alert_id, changed_at: s.changed_at })),
  };
}

// ---------------------------------------------------------------- evaluation

export interface EvaluationReport {
  at: string;
  rules: number;
  series: number;
  transitions: { pending: number; firing: number; resolved: number; cleared: number };
  /** Transitions another evaluator applied first (nothing written here). */
  raced: number;
  duration_ms: number;
}

const expiryOf = (now: Date, config: Pick<MonitoringConfig, 'retention_days'>) => epochSeconds(new Date(now.getTime() + config.retention_days * DAY_MS));

type SeriesValue = { labels: Record<string, string | null>; value: number | null };
type SeriesValues = Map<string, SeriesValue>;

const windowStart = (rule: Pick<RuleRecord, 'window_seconds'>, now: Date) => bucketStart(now.getTime() - rule.window_seconds * 1000, 'minute');
const readKey = (rule: Pick<RuleRecord, 'metric' | 'labels' | 'group_by'>) => JSON.stringify([rule.metric, sortLabels(rule.labels), rule.group_by]);

/**
 * The rollups a cycle reads: once per metric, label filter and grouping, over the longest window of the
 * rules that share them (each rule then takes its own window's buckets).
 */
function rollupReader(deps: Deps, rules: RuleRecord[], now: Date) {
  const earliest = new Map<string, number>();
  for (const r of rules) earliest.set(readKey(r), Math.min(earliest.get(readKey(r)) ?? Infinity, windowStart(r, now)));
  const reads = new Map<string, Promise<RollupResult>>();
  const end = bucketStart(now, 'minute');
  return (rule: RuleRecord): Promise<RollupResult> => {
    const key = readKey(rule);
    let read = reads.get(key);
    if (!read) reads.set(key, (read = metricsStore(deps).readRollups({ metric: rule.metric, resolution: 'minute', start: earliest.get(key) ?? windowStart(rule, now), end, labels: rule.labels, groupBy: rule.group_by })));
    return read;
  };
}

/** The value of each label set of a rule over its window at `now`. */
function valuesOf(read: RollupResult, rule: RuleRecord, now: Date): SeriesValues {
  const start = windowStart(rule, now);
  const out: SeriesValues = new Map();
  for (const g of read.groups) {
    const merged = emptyRollup();
    for (const [at, r] of g.buckets) if (at >= start) mergeRollup(merged, r);
    const labels = { ...rule.labels, ...g.labels };
    out.set(JSON.stringify(sortLabels(labels)), { labels, value: aggregateOf(merged, rule.aggregation, rule.window_seconds) });
  }
  return out;
}

const sortLabels = <T>(l: Record<string, T>) => Object.fromEntries(Object.keys(l).sort().map((k) => [k, l[k]]));

/**
 * Evaluates every enabled rule (or those named) at `now`. Safe to run concurrently with itself:
 * each transition is written once (see the file's comment). A label set whose state and value did not
 * change is not written.
 */
export async function evaluateRules(deps: Deps, options: { now?: Date; notifier?: AlertNotifier; ruleIds?: string[]; concurrency?: number } = {}): Promise<EvaluationReport> {
  const started = performance.now();
  const now = options.now ?? deps.clock.now();
  const config = await ensureMonitoring(deps);
  const repo = repoOf(deps);
  const notifier = options.notifier ?? new BusNotifier(deps);
  const rules = (await repo.listRules()).filter((r) => r.enabled && (!options.ruleIds || options.ruleIds.includes(r.rule_id)));
  const report: EvaluationReport = { at: now.toISOString(), rules: rules.length, series: 0, transitions: { pending: 0, firing: 0, resolved: 0, cleared: 0 }, raced: 0, duration_ms: 0 };
  const readRollups = rollupReader(deps, rules, now);
  const cycle: Cycle = { deps, repo, now, config, notifier, report };
  const queue = [...rules];
  const worker = async () => {
    for (let rule = queue.shift(); rule; rule = queue.shift()) {
      const [read, states] = await Promise.all([readRollups(rule), repo.states(rule.rule_id)]);
      await evaluateRule(cycle, rule, valuesOf(read, rule, now), states);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 8) }, worker));
  report.duration_ms = Math.round(performance.now() - started);
  // The stream's snapshot after the run (sent only where it changed and the subscriber's interval passed).
  await pushMonitoringUpdate(deps);
  return report;
}

interface Cycle {
  deps: Deps;
  repo: MonitoringRepository;
  now: Date;
  config: ConfigRecord;
  notifier: AlertNotifier;
  report: EvaluationReport;
}

async function evaluateRule(cycle: Cycle, rule: RuleRecord, values: SeriesValues, states: StateRecord[]): Promise<void> {
  const byKey = new Map(states.map((s) => [JSON.stringify(sortLabels(s.labels)), s]));
  for (const key of new Set([...values.keys(), ...byKey.keys()])) {
    cycle.report.series++;
    if (!(await evaluateSeries(cycle, rule, values.get(key), byKey.get(key)))) cycle.report.raced++;
  }
}

/**
 * One label set: its next state, written (with the alert writes it implies) only when something changed.
 * False when another evaluator changed it first (nothing written, nothing notified).
 */
async function evaluateSeries(cycle: Cycle, rule: RuleRecord, seen: SeriesValue | undefined, current: StateRecord | undefined): Promise<boolean> {
  const { deps, repo, now, config, notifier, report } = cycle;
  const nowIso = now.toISOString();
  const value = seen?.value ?? null;
  const labels = seen?.labels ?? current!.labels;
  const currentState: SeriesState = current ?? INACTIVE;
  const { next, transition } = step(currentState, {
    holds: holds(rule.condition, value, rule.threshold),
    now,
    value,
    forSeconds: rule.for_seconds,
    keepFiringForSeconds: rule.keep_firing_for_seconds,
    newAlertId: () => newUlid(),
  });
  // Nothing to record for a label set that never left inactive and has no data.
  if (!current && transition === 'none' && value === null) return true;
  if (current && transition === 'none' && next === currentState && value === current.last_value) return true;
  const record: StateRecord = {
    rule_id: rule.rule_id,
    labels,
    state: next.state,
    active_since: next.active_since,
    cleared_since: next.cleared_since,
    alert_id: next.alert_id,
    value_at_pending: next.value_at_pending,
    last_value: value,
    changed_at: nowIso,
    version: current?.version ?? 0,
  };
  let writes: NonNullable<Parameters<MonitoringRepository['transition']>[2]> = [];
  let fired: AlertRecord | undefined;
  if (transition === 'firing') {
    fired = {
      alert_id: next.alert_id!,
      rule_id: rule.rule_id,
      rule_name: rule.name,
      metric: rule.metric,
      labels,
      severity: rule.severity,
      status: 'firing',
      value,
      threshold: rule.threshold,
      condition: rule.condition,
      started_at: next.active_since!,
      fired_at: nowIso,
      resolved_at: null,
      resolved_reason: null,
      acknowledged_at: null,
      acknowledged_by: null,
      transitions: [
        { state: 'pending', at: next.active_since!, value: next.value_at_pending },
        { state: 'firing', at: nowIso, value },
      ],
      deliveries: [],
    };
    writes = [
      { Put: repo.alertPut(fired) },
      // A rule deleted or changed since it was read cannot fire.
      {
        ConditionCheck: {
          TableName: deps.store.table,
          Key: ruleKey(rule.rule_id),
          ConditionExpression: '#v = :v',
          ExpressionAttributeNames: { '#v': 'version' },
          ExpressionAttributeValues: { ':v': rule.version },
        },
      },
    ];
  } else if (transition === 'resolved') {
    writes = [{ Update: repo.alertResolve(currentState.alert_id!, nowIso, value, 'condition_cleared', expiryOf(now, config)) }];
  }
  if (!(await repo.transition(record, current?.version ?? 0, writes))) return false;
  if (transition !== 'none') report.transitions[transition]++;
  if (transition === 'firing') await notify(deps, notifier, 'alert.fired', next.alert_id!, rule, config, fired);
  if (transition === 'resolved') await notify(deps, notifier, 'alert.resolved', currentState.alert_id!, rule, config);
  return true;
}

/** Hands a transition this process owns to the notifier, once, and records the delivery on the alert. */
async function notify(deps: Deps, notifier: AlertNotifier, event: 'alert.fired' | 'alert.resolved', alertId: string, rule: Pick<RuleRecord, 'channels'>, config: MonitoringConfig, written?: AlertRecord): Promise<void> {
  const repo = repoOf(deps);
  // A fired alert was just written by this process: as stored, no need to read it back.
  const alert = written ?? (await repo.getAlert(alertId));
  if (!alert) return;
  const channels = rule.channels.length ? rule.channels : config.default_channels;
  const at = deps.clock.now().toISOString();
  if (event === 'alert.resolved' && alert.acknowledged_at) {
    // No notification to the channels; the live stream still shows the state change.
    await streamAlert(deps, event, alertViewOf(alert));
    await repo.addDelivery(alertId, { event, channels, status: 'suppressed', at, detail: 'acknowledged' });
    return;
  }
  const out = await notifier.notify({ event, alert: alertViewOf(alert), channels });
  await repo.addDelivery(alertId, { event, channels, status: out.status, at, detail: out.detail });
}

// ---------------------------------------------------------------- the scheduled run

export interface EvaluatorRun {
  ran: boolean;
  reason?: 'stopped' | 'too_soon';
  report?: EvaluationReport;
}

/**
 * One scheduled run: nothing when monitoring is stopped or a run was claimed within the configured
 * interval (a redelivered schedule, a second timer); otherwise evaluates every rule and records the run.
 */
export async function runEvaluator(deps: Deps, options: { notifier?: AlertNotifier } = {}): Promise<EvaluatorRun> {
  const config = await ensureMonitoring(deps);
  if (!config.enabled) {
    // Evaluation is stopped; the stream's subscribers still see the platform change.
    await pushMonitoringUpdate(deps);
    return { ran: false, reason: 'stopped' };
  }
  const repo = repoOf(deps);
  const now = deps.clock.now();
  if (!(await repo.claimRun(now, config.evaluation_interval_seconds * 800))) return { ran: false, reason: 'too_soon' };
  const started = performance.now();
  try {
    const report = await evaluateRules(deps, { now, notifier: options.notifier });
    await repo.recordRun({ at: now.toISOString(), durationMs: report.duration_ms, rules: report.rules, error: null });
    return { ran: true, report };
  } catch (err) {
    await repo.recordRun({ at: now.toISOString(), durationMs: Math.round(performance.now() - started), rules: 0, error: (err as Error).name ?? 'Error' });
    throw err;
  }
}

// ---------------------------------------------------------------- alerts

function alertViewOf(a: AlertRecord): AlertView {
  const { expires_at: _e, ...view } = a;
  return view;
}

export async function listAlerts(deps: Deps, q: AlertsQuery, startKey?: Record<string, unknown>) {
  if (q.from && q.to && q.from > q.to) throw validationError([{ path: 'from', message: 'must not be after `to`' }]);
  const page = await repoOf(deps).listAlerts({ limit: q.limit, startKey, status: q.status, severity: q.severity, ruleId: q.rule_id, from: q.from, to: q.to });
  return { items: page.items.map(alertViewOf), lastKey: page.lastKey };
}

export async function acknowledgeAlert(deps: Deps, principal: Principal, alertId: string): Promise<{ alert: AlertView; changed: boolean }> {
  const repo = repoOf(deps);
  const changed = await repo.acknowledge(alertId, principal.userId, deps.clock.now().toISOString());
  const alert = await repo.getAlert(alertId);
  if (!alert) throw notFound('Alert');
  if (changed) {
    await new BusNotifier(deps).notify({ event: 'alert.acknowledged', alert: alertViewOf(alert), channels: [] });
    await pushMonitoringUpdate(deps);
  }
  return { alert: alertViewOf(alert), changed };
}

// ---------------------------------------------------------------- configuration and control

function configViewOf(c: ConfigRecord) {
  const { version: _v, ...view } = c;
  return view;
}

export async function getMonitoringConfig(deps: Deps) {
  return configViewOf(await ensureMonitoring(deps));
}

export async function updateMonitoringConfig(deps: Deps, principal: Principal, body: MonitoringConfig) {
  const current = await ensureMonitoring(deps);
  const next: ConfigRecord = { ...body, updated_at: deps.clock.now().toISOString(), updated_by: principal.userId, version: current.version };
  if (!(await repoOf(deps).putConfig(next, current.version))) throw conflict('The configuration changed meanwhile; read it again');
  return configViewOf(next);
}

/** Starts or stops the evaluator (stored, so it survives restarts); idempotent. */
export async function setEvaluatorEnabled(deps: Deps, principal: Principal, enabled: boolean) {
  const current = await ensureMonitoring(deps);
  let changed = false;
  if (current.enabled !== enabled) {
    const next: ConfigRecord = { ...current, enabled, updated_at: deps.clock.now().toISOString(), updated_by: principal.userId };
    changed = await repoOf(deps).putConfig(next, current.version);
    if (!changed) {
      const again = await ensureMonitoring(deps);
      if (again.enabled !== enabled) throw conflict('The configuration changed meanwhile; try again');
    }
  }
  return { enabled, changed, evaluator: await evaluatorState(deps) };
}

export async function evaluatorState(deps: Deps): Promise<EvaluatorView> {
  const [config, run] = await Promise.all([ensureMonitoring(deps), repoOf(deps).getEvaluator()]);
  const interval = config.evaluation_interval_seconds;
  const last = run?.last_run_at ?? null;
  return {
    enabled: config.enabled,
    interval_seconds: interval,
    last_run_at: last,
    last_duration_ms: run?.last_duration_ms ?? null,
    last_rules_evaluated: run?.last_rules_evaluated ?? null,
    last_error: run?.last_error ?? null,
    errors_total: run?.errors_total ?? 0,
    runs_total: run?.runs_total ?? 0,
    next_run_at: config.enabled ? new Date(Math.max(deps.clock.now().getTime(), last ? Date.parse(last) + interval * 1000 : 0)).toISOString() : null,
  };
}

// ---------------------------------------------------------------- health

export async function monitoringHealth(deps: Deps) {
  const repo = repoOf(deps);
  const [table, bus] = await Promise.all([
    runCheck('table', true, async () => void (await repo.getConfig())),
    runCheck('event_bus', false, () => eventBus(deps).check()),
  ]);
  const [evaluator, rules, firing, counts, running, recent] = await Promise.all([
    evaluatorState(deps),
    repo.listRules(),
    allAlerts(repo, ['firing']),
    taskStatusCounts(deps),
    runningExecutionCount(deps),
    repo.listAlerts({ limit: 10 }),
  ]);
  const states = (await Promise.all(rules.map((r) => repo.states(r.rule_id)))).flat();
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, firing.filter((a) => a.severity === s).length]));
  const stale = evaluator.enabled && evaluator.last_run_at !== null && deps.clock.now().getTime() - Date.parse(evaluator.last_run_at) > 3 * evaluator.interval_seconds * 1000 + 60_000;
  const evaluatorComponent = {
    name: 'evaluator',
    status: !evaluator.enabled ? 'stopped' : evaluator.last_error || stale ? 'degraded' : 'healthy',
    latency_ms: evaluator.last_duration_ms,
    detail: evaluator.last_error ?? (stale ? 'no run within three intervals' : null),
  };
  const components = [table, bus].map((c) => ({ name: c.name, status: c.status, latency_ms: c.latency_ms, detail: c.error ?? null }));
  let status = overallStatus([table, bus]);
  if (status === 'healthy' && evaluatorComponent.status === 'degraded') status = 'degraded';
  return {
    status,
    components: [...components, evaluatorComponent],
    alerts: {
      firing: bySeverity,
      pending: states.filter((s) => s.state === 'pending').length,
      firing_total: firing.length,
      acknowledged: firing.filter((a) => a.acknowledged_at).length,
    },
    recent_alerts: recent.items.map(alertViewOf),
    utilisation: { tasks_queued: counts.queued, tasks_pending: counts.pending, tasks_running: counts.running, workflows_running: running },
    rules: { total: rules.length, enabled: rules.filter((r) => r.enabled).length },
    evaluator,
  };
}

async function allAlerts(repo: MonitoringRepository, status: string[]): Promise<AlertRecord[]> {
  const out: AlertRecord[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await repo.listAlerts({ limit: 100, status, startKey });
    out.push(...page.items);
    startKey = page.lastKey;
  } while (startKey && out.length < 1000);
  return out;
}
