import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { call, adminSession, openSocket, userWithRole, type Session } from '../../support/client.js';
import { ApiGatewayConnections } from '../../../shared/platform/aws/connections.js';
import { LocalEventBus } from '../../../local/event-bus.js';
import { Store } from '../../../shared/platform/store/client.js';
import { getConfig } from '../../../shared/platform/config.js';
import { systemClock } from '../../../shared/platform/ports.js';
import type { Deps } from '../../../shared/platform/runtime.js';
import { MetricsStore, bucketStart } from '../../../shared/platform/metrics/store.js';
import { evaluateRules, runEvaluator } from '../../../shared/monitoring/service.js';
import { pushMonitoringUpdate } from '../../../shared/monitoring/stream.js';
import { MonitoringRepository } from '../../../shared/monitoring/repo.js';
import type { AlertNotification, AlertNotifier } from '../../../shared/monitoring/notifier.js';

/** Records what the evaluator hands over (the bus and WebSocket notifier is exercised through the runtime's own calls). */
class RecordingNotifier implements AlertNotifier {
  readonly sent: AlertNotification[] = [];
  async notify(n: AlertNotification) {
    this.sent.push(n);
    return { status: 'published' as const, detail: null };
  }
}

const suffix = () => Math.random().toString(36).slice(2, 10).replace(/[^a-z]/g, 'x');
const MINUTE = 60_000;

describe('monitoring: rules, evaluator and alerts', () => {
  let admin: Session;
  let operator: Session;
  let viewer: Session;
  let user: Session;
  let store: Store;
  let deps: Deps;
  let metrics: MetricsStore;
  /** Minute buckets in the past, so that the runtime's own timer (stopped anyway) never sees them as now. */
  const B0 = bucketStart(Date.now(), 'minute') - 20 * MINUTE;
  const at = (k: number, s = 30) => new Date(B0 + k * MINUTE + s * 1000);

  async function feed(metric: string, values: number[]) {
    for (const [k, v] of values.entries()) await metrics.record({ metric, value: v, at: at(k, 10), labels: { region: 'eu' }, sourceId: `test:${metric}:${k}` });
  }

  function ruleBody(metric: string, extra: Record<string, unknown> = {}) {
    return {
      name: `rule ${metric}`,
      metric,
      aggregation: 'max',
      window_seconds: 60,
      condition: 'gt',
      threshold: 10,
      for_seconds: 120,
      keep_firing_for_seconds: 120,
      severity: 'critical',
      channels: ['ops-webhook'],
      enabled: true,
      ...extra,
    };
  }

  beforeAll(async () => {
    admin = await adminSession();
    [operator, viewer, user] = await Promise.all([userWithRole('operator', admin), userWithRole('viewer', admin), userWithRole('user', admin)]);
    store = new Store({ tableName: 'supervisor', endpoint: inject('dynamodbEndpoint') });
    deps = { config: getConfig(), store, clock: systemClock } as unknown as Deps;
    metrics = new MetricsStore(store);
    // The runtime's timer evaluates at the real time: stopped, so only this file's clock drives the rules.
    expect((await call('POST', '/api/v1/monitoring/stop', { token: operator.token })).status).toBe(200);
  });

  afterAll(async () => {
    await call('POST', '/api/v1/monitoring/start', { token: operator.token });
    store.raw.destroy();
  });

  it('seeds the default rules at first start', async () => {
    const res = await call('GET', '/api/v1/monitoring/alerts/rules', { token: viewer.token });
    expect(res.status).toBe(200);
    const names = res.body.data.items.filter((r: any) => r.builtin).map((r: any) => r.name);
    expect(names).toEqual(expect.arrayContaining(['Task queue backlog', 'Task dead-lettered', 'Task failures', 'Provider call failures', 'Agent quota nearly used', 'Schedule firing lag']));
  });

  it('refuses bad rules with 422 and duplicate names with 409; only alerts:manage may write', async () => {
    const metric = `mon.bad${suffix()}`;
    const unknown = await call('POST', '/api/v1/monitoring/alerts/rules', { token: operator.token, body: ruleBody(metric) });
    expect(unknown.status).toBe(422);
    expect(JSON.stringify(unknown.body)).toContain('task.finished');
    for (const bad of [
      { ...ruleBody('task.finished'), condition: 'above' },
      { ...ruleBody('task.finished'), window_seconds: 5 },
      { ...ruleBody('task.finished'), severity: 'page' },
      { ...ruleBody('task.finished'), surprise: true },
      { ...ruleBody('task.finished'), threshold: 'ten' },
    ]) {
      const res = await call('POST', '/api/v1/monitoring/alerts/rules', { token: operator.token, body: bad });
      expect(res.status, JSON.stringify(bad)).toBe(422);
    }
    const name = `dup ${suffix()}`;
    const first = await call('POST', '/api/v1/monitoring/alerts/rules', { token: operator.token, body: ruleBody('task.finished', { name }) });
    expect(first.status).toBe(201);
    const again = await call('POST', '/api/v1/monitoring/alerts/rules', { token: operator.token, body: ruleBody('task.finished', { name: name.toUpperCase() }) });
    expect(again.status).toBe(409);
    for (const s of [viewer, user]) {
      expect((await call('POST', '/api/v1/monitoring/alerts/rules', { token: s.token, body: ruleBody('task.finished', { name: `x ${suffix()}` }) })).status).toBe(403);
      expect((await call('DELETE', `/api/v1/monitoring/alerts/rules/${first.body.data.rule_id}`, { token: s.token })).status).toBe(403);
      expect((await call('POST', '/api/v1/monitoring/stop', { token: s.token })).status).toBe(403);
    }
    expect((await call('GET', '/api/v1/monitoring/alerts/rules')).status).toBe(401);
    expect((await call('GET', '/api/v1/monitoring/alerts', { token: user.token })).status).toBe(200);
    expect((await call('DELETE', `/api/v1/monitoring/alerts/rules/${first.body.data.rule_id}`, { token: operator.token })).status).toBe(200);
  });

  it('pending → firing after for_seconds → resolved after keep_firing_for; flapping fires once; a new breach opens a new alert', async () => {
    const metric = `mon.flap${suffix()}`;
    // max over the last two minute buckets: holds at k0-k3, not at k4, holds k5-k6 (flap), not from k7.
    const values = [50, 50, 50, 0, 0, 50, 0, 0, 0, 0, 50, 50, 50];
    await feed(metric, values);
    const created = await call('POST', '/api/v1/monitoring/alerts/rules', { token: operator.token, body: ruleBody(metric) });
    expect(created.status).toBe(201);
    const ruleId = created.body.data.rule_id;
    const notifier = new RecordingNotifier();
    const states: string[] = [];
    for (let k = 0; k < values.length; k++) {
      await evaluateRules(deps, { now: at(k), notifier, ruleIds: [ruleId] });
      const rules = await call('GET', '/api/v1/monitoring/alerts/rules', { token: viewer.token });
      const rule = rules.body.data.items.find((r: any) => r.rule_id === ruleId);
      states.push(rule.state);
      if (k === 2) expect(rule.last_value).toBe(50);
    }
    expect(states).toEqual([
      'pending', 'pending', 'firing', // held for 120 s
      'firing', 'firing', 'firing', 'firing', // k4 clears, k5 holds again: keep_firing_for 120 s starts over
      'firing', 'firing', // k7 clears: keep_firing_for counts from the first evaluation that found it cleared
      'inactive', // k9: cleared since k7, 120 s → resolved
      'pending', 'pending', 'firing', // a new breach: a new alert
    ]);
    expect(notifier.sent.map((n) => n.event)).toEqual(['alert.fired', 'alert.resolved', 'alert.fired']);
    expect(notifier.sent[0].channels).toEqual(['ops-webhook']);
    const [first, , second] = notifier.sent.map((n) => n.alert.alert_id);
    expect(second).not.toBe(first);

    const list = await call('GET', `/api/v1/monitoring/alerts?rule_id=${ruleId}`, { token: viewer.token });
    expect(list.status).toBe(200);
    const alerts = list.body.data.items;
    expect(alerts).toHaveLength(2);
    const old = alerts.find((a: any) => a.alert_id === first);
    expect(old).toMatchObject({ status: 'resolved', resolved_reason: 'condition_cleared', started_at: at(0).toISOString(), fired_at: at(2).toISOString(), resolved_at: at(9).toISOString() });
    expect(old.transitions.map((t: any) => [t.state, t.value])).toEqual([['pending', 50], ['firing', 50], ['resolved', 0]]);
    expect(old.deliveries.map((d: any) => [d.event, d.status])).toEqual([['alert.fired', 'published'], ['alert.resolved', 'published']]);
    const firing = await call('GET', `/api/v1/monitoring/alerts?rule_id=${ruleId}&status=firing&severity=critical`, { token: viewer.token });
    expect(firing.body.data.items.map((a: any) => a.alert_id)).toEqual([second]);

    // Acknowledging keeps the state, is idempotent, and suppresses the resolution's notification.
    expect((await call('POST', `/api/v1/monitoring/alerts/${second}/acknowledge`, { token: viewer.token })).status).toBe(403);
    const ack = await call('POST', `/api/v1/monitoring/alerts/${second}/acknowledge`, { token: operator.token });
    expect(ack.status).toBe(200);
    expect(ack.body.data).toMatchObject({ status: 'firing', acknowledged_by: expect.any(String) });
    const ackAgain = await call('POST', `/api/v1/monitoring/alerts/${second}/acknowledge`, { token: operator.token });
    expect(ackAgain.body.data.acknowledged_at).toBe(ack.body.data.acknowledged_at);

    // Deleting the rule resolves its open alert.
    const del = await call('DELETE', `/api/v1/monitoring/alerts/rules/${ruleId}`, { token: operator.token });
    expect(del.status).toBe(200);
    expect(del.body.data.resolved_alerts).toBe(1);
    const after = await call('GET', `/api/v1/monitoring/alerts?rule_id=${ruleId}&status=firing`, { token: viewer.token });
    expect(after.body.data.items).toHaveLength(0);
    const resolved = (await call('GET', `/api/v1/monitoring/alerts?rule_id=${ruleId}`, { token: viewer.token })).body.data.items.find((a: any) => a.alert_id === second);
    expect(resolved).toMatchObject({ status: 'resolved', resolved_reason: 'rule_deleted' });
    expect(resolved.deliveries.at(-1)).toMatchObject({ event: 'alert.resolved', status: 'suppressed' });
    expect((await call('DELETE', `/api/v1/monitoring/alerts/rules/${ruleId}`, { token: operator.token })).status).toBe(404);
  });

  it('two evaluators racing fire once and notify once', async () => {
    const metric = `mon.race${suffix()}`;
    await feed(metric, [99]);
    const created = await call('POST', '/api/v1/monitoring/alerts/rules', { token: operator.token, body: ruleBody(metric, { for_seconds: 0, group_by: ['region'] }) });
    expect(created.status).toBe(201);
    const ruleId = created.body.data.rule_id;
    const notifier = new RecordingNotifier();
    const reports = await Promise.all(Array.from({ length: 4 }, () => evaluateRules(deps, { now: at(0), notifier, ruleIds: [ruleId] })));
    expect(reports.reduce((n, r) => n + r.transitions.firing, 0)).toBe(1);
    expect(notifier.sent).toHaveLength(1);
    expect(notifier.sent[0].alert.labels).toEqual({ region: 'eu' });
    const alerts = await call('GET', `/api/v1/monitoring/alerts?rule_id=${ruleId}`, { token: viewer.token });
    expect(alerts.body.data.items).toHaveLength(1);
    expect((await call('DELETE', `/api/v1/monitoring/alerts/rules/${ruleId}`, { token: operator.token })).body.data.resolved_alerts).toBe(1);
  });

  it('an evaluation that changes nothing writes nothing', async () => {
    const metric = `mon.quiet${suffix()}`;
    await feed(metric, [99, 99, 99, 50]);
    const created = await call('POST', '/api/v1/monitoring/alerts/rules', { token: operator.token, body: ruleBody(metric, { for_seconds: 0, group_by: ['region'] }) });
    const ruleId = created.body.data.rule_id;
    const repo = new MonitoringRepository(store);
    const notifier = new RecordingNotifier();
    expect((await evaluateRules(deps, { now: at(1), notifier, ruleIds: [ruleId] })).transitions.firing).toBe(1);
    const [fired] = await repo.states(ruleId);
    expect(fired).toMatchObject({ state: 'firing', last_value: 99, changed_at: at(1).toISOString(), version: 1 });
    // Still firing at the same value a minute later: the state is not written again.
    await evaluateRules(deps, { now: at(2), notifier, ruleIds: [ruleId] });
    expect(await repo.states(ruleId)).toEqual([fired]);
    // A new value is: the rule's view shows the last value seen.
    await evaluateRules(deps, { now: at(4), notifier, ruleIds: [ruleId] });
    expect((await repo.states(ruleId))[0]).toMatchObject({ state: 'firing', alert_id: fired.alert_id, last_value: 50, changed_at: at(4).toISOString(), version: 2 });
    // No data from k5: the condition no longer holds, and keep_firing_for counts from there.
    await evaluateRules(deps, { now: at(6), notifier, ruleIds: [ruleId] });
    expect((await repo.states(ruleId))[0]).toMatchObject({ state: 'firing', last_value: null, cleared_since: at(6).toISOString(), version: 3 });
    await evaluateRules(deps, { now: at(7), notifier, ruleIds: [ruleId] });
    expect((await repo.states(ruleId))[0]).toMatchObject({ version: 3 });
    await evaluateRules(deps, { now: at(8), notifier, ruleIds: [ruleId] });
    expect((await repo.states(ruleId))[0]).toMatchObject({ state: 'inactive', alert_id: null, version: 4 });
    expect(notifier.sent.map((n) => n.event)).toEqual(['alert.fired', 'alert.resolved']);
    expect((await call('DELETE', `/api/v1/monitoring/alerts/rules/${ruleId}`, { token: operator.token })).status).toBe(200);
  });

  it('stop really stops the evaluator and start resumes it; both idempotent; config validated', async () => {
    const stopped = await call('POST', '/api/v1/monitoring/stop', { token: operator.token });
    expect(stopped.body.data).toMatchObject({ enabled: false, changed: false });
    expect(await runEvaluator(deps)).toEqual({ ran: false, reason: 'stopped' });
    const config = await call('GET', '/api/v1/monitoring/config', { token: viewer.token });
    expect(config.body.data).toMatchObject({ enabled: false, evaluation_interval_seconds: expect.any(Number) });
    const started = await call('POST', '/api/v1/monitoring/start', { token: operator.token });
    expect(started.body.data).toMatchObject({ enabled: true, changed: true });
    expect((await call('POST', '/api/v1/monitoring/start', { token: operator.token })).body.data.changed).toBe(false);
    const run = await runEvaluator(deps, { notifier: new RecordingNotifier() });
    expect(run.reason).not.toBe('stopped');
    // A second run right after is skipped: a redelivered schedule does not evaluate twice.
    expect(await runEvaluator(deps, { notifier: new RecordingNotifier() })).toEqual({ ran: false, reason: 'too_soon' });
    expect((await call('POST', '/api/v1/monitoring/stop', { token: operator.token })).body.data.changed).toBe(true);

    const bad = await call('PUT', '/api/v1/monitoring/config', { token: operator.token, body: { ...config.body.data, evaluation_interval_seconds: 0 } });
    expect(bad.status).toBe(422);
    const { updated_at: _u, updated_by: _b, ...body } = config.body.data;
    const put = await call('PUT', '/api/v1/monitoring/config', { token: operator.token, body: { ...body, retention_days: 14, default_channels: ['ops'] } });
    expect(put.status).toBe(200);
    expect(put.body.data).toMatchObject({ retention_days: 14, default_channels: ['ops'], updated_by: expect.any(String) });
    expect((await call('PUT', '/api/v1/monitoring/config', { token: viewer.token, body })).status).toBe(403);
  });

  it('the WebSocket receives the transitions in order, a snapshot on change, and only the severities it follows', async () => {
    const metric = `mon.ws${suffix()}`;
    // Holds at k0-k3 (fires at k2), clears from k4 (resolved at k5), holds again k6-k8 (fires at k8).
    const values = [50, 50, 50, 0, 0, 0, 50, 50, 50];
    await feed(metric, values);
    const created = await call('POST', '/api/v1/monitoring/alerts/rules', { token: operator.token, body: ruleBody(metric, { keep_firing_for_seconds: 60 }) });
    expect(created.status).toBe(201);
    const ruleId = created.body.data.rule_id;
    // The evaluator as the runtime runs it: the bus and the runtime's own @connections endpoint.
    const live = { ...deps, connections: new ApiGatewayConnections(inject('connectionsUrl')), events: new LocalEventBus() } as Deps;

    const all = await openSocket('/api/v1/monitoring/stream', viewer.token);
    const warningsOnly = await openSocket('/api/v1/monitoring/stream', viewer.token);
    try {
      // The first message brings the first snapshot (API Gateway cannot send during $connect).
      all.send({ action: 'ping' });
      const first = await all.waitFor((m) => m.type === 'monitoring.update');
      all.send({ action: 'update_preferences', preferences: { refresh_interval_seconds: 1 } });
      await all.waitFor((m) => m.type === 'preferences_updated');
      expect(first).toMatchObject({ channel: 'monitoring', data: { severities: ['info', 'warning', 'critical', 'emergency'], alerts: { firing_total: expect.any(Number) }, utilisation: { tasks_queued: expect.any(Number) } } });
      warningsOnly.send({ action: 'update_preferences', preferences: { alert_severities: ['warning'], refresh_interval_seconds: 1 } });
      await warningsOnly.waitFor((m) => m.type === 'monitoring.update' && m.data.severities.join() === 'warning');

      for (let k = 0; k < values.length; k++) await evaluateRules(live, { now: at(k), ruleIds: [ruleId] });
      const fired = await all.waitFor((m) => m.type === 'alert.fired' && m.data.rule_id === ruleId);
      // Snapshots are throttled to the subscriber's interval (1 s here): the next push after it lists the firing alert.
      await new Promise((r) => setTimeout(r, 1100));
      await pushMonitoringUpdate(live);
      await all.waitFor((m) => m.type === 'monitoring.update' && m.data.firing_alerts.some((a: any) => a.rule_id === ruleId && a.severity === 'critical'));
      const firedAgain = (await call('GET', `/api/v1/monitoring/alerts?rule_id=${ruleId}&status=firing`, { token: viewer.token })).body.data.items[0];
      expect((await call('POST', `/api/v1/monitoring/alerts/${firedAgain.alert_id}/acknowledge`, { token: operator.token })).status).toBe(200);
      expect((await call('DELETE', `/api/v1/monitoring/alerts/rules/${ruleId}`, { token: operator.token })).body.data.resolved_alerts).toBe(1);

      const mine = (m: any) => m.type.startsWith('alert.') && m.data.rule_id === ruleId;
      await all.waitFor((m) => mine(m) && m.type === 'alert.resolved' && m.data.alert_id === firedAgain.alert_id);
      const seen = all.messages.filter(mine).map((m) => [m.type, m.data.alert_id === fired.data.alert_id ? 'first' : 'second', m.data.status]);
      expect(seen).toEqual([
        ['alert.fired', 'first', 'firing'],
        ['alert.resolved', 'first', 'resolved'],
        ['alert.fired', 'second', 'firing'],
        ['alert.acknowledged', 'second', 'firing'],
        ['alert.resolved', 'second', 'resolved'],
      ]);
      // The warning-only subscriber saw none of this critical rule's events, and no snapshot listing it.
      expect(warningsOnly.messages.filter(mine)).toEqual([]);
      // (The snapshot sent before its preferences applied follows every severity: other alerts may be firing.)
      const afterPreferences = warningsOnly.messages.slice(warningsOnly.messages.findIndex((m) => m.type === 'monitoring.update' && m.data.severities.join() === 'warning'));
      expect(afterPreferences.filter((m) => m.type === 'monitoring.update').every((m) => m.data.firing_alerts.every((a: any) => a.severity === 'warning'))).toBe(true);
      // A snapshot is sent only when it changed: two in a row are never equal.
      const updates = all.messages.filter((m) => m.type === 'monitoring.update').map((m) => JSON.stringify(m.data));
      for (let i = 1; i < updates.length; i++) expect(updates[i]).not.toBe(updates[i - 1]);
    } finally {
      await Promise.all([all.close(), warningsOnly.close()]);
    }
  });

  it('health: components, alert counts, utilisation and the evaluator', async () => {
    const res = await call('GET', '/api/v1/monitoring/health', { token: viewer.token });
    expect(res.status).toBe(200);
    const h = res.body.data;
    expect(h.components.map((c: any) => c.name)).toEqual(['table', 'event_bus', 'evaluator']);
    expect(h.components[0].status).toBe('healthy');
    expect(Object.keys(h.alerts.firing)).toEqual(['info', 'warning', 'critical', 'emergency']);
    expect(h.utilisation).toMatchObject({ tasks_queued: expect.any(Number), tasks_running: expect.any(Number) });
    expect(h.rules.total).toBeGreaterThanOrEqual(4);
    expect(h.evaluator.runs_total).toBeGreaterThanOrEqual(1);
  });
});
