import '../local/quiet-sdk.js';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { ulid } from 'ulid';
import WebSocket from 'ws';
import { startLocalRuntime, type LocalRuntime } from '../local/runtime.js';
import { AuthService } from '../shared/auth/service.js';
import { UserRepository } from '../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../shared/auth/sessions-repo.js';
import { MetricsStore } from '../shared/platform/metrics/store.js';
import { createRule, deleteRule, evaluateRules } from '../shared/monitoring/service.js';
import { fixed, median, printTable } from './lib/table.js';

/**
 * Issue 12's figures: one evaluation cycle of 200 rules over minute rollups (aim: under 2 s), and the
 * delay from a breach (its metric point written) to `alert.fired` on a monitoring stream WebSocket,
 * the evaluation that sees it included (the schedule adds up to one evaluation interval on top).
 * `benchMonitoring(runtime)` is called by `bench/run.ts`; `npx tsx bench/monitoring.ts` runs it alone.
 */
export const MONITORING_BENCH = { rules: 200, metrics: 20, minutes: 15, cycles: 3, breaches: 5, aimMs: 2000 };

async function viewerToken(runtime: LocalRuntime): Promise<string> {
  const { deps } = runtime;
  const username = `bench-monitoring-${ulid().toLowerCase()}`;
  const password = 'bench-monitoring-password';
  await new AuthService(deps, { users: new UserRepository(deps.store), sessions: new SessionRepository(deps.store), attempts: new LoginAttemptRepository(deps.store) }).createUser({ username, password, roles: ['viewer'] });
  const res = await fetch(`${runtime.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  if (res.status !== 200) throw new Error(`bench login failed: ${res.status}`);
  return ((await res.json()) as { data: { access_token: string } }).data.access_token;
}

const rule = (name: string, metric: string, threshold: number) => ({
  name,
  metric,
  labels: {},
  group_by: ['region'],
  aggregation: 'p95' as const,
  window_seconds: 600,
  condition: 'gt' as const,
  threshold,
  for_seconds: 0,
  keep_firing_for_seconds: 60,
  severity: 'warning' as const,
  channels: [],
  enabled: true,
});

export async function benchMonitoring(runtime: LocalRuntime): Promise<{ what: string; value: string }[]> {
  const { deps } = runtime;
  const tag = ulid().toLowerCase().slice(-8);
  const metrics = new MetricsStore(deps.store);
  const now = Date.now();
  // Minute rollups: each metric has points in every minute of the window, in three regions.
  const names = Array.from({ length: MONITORING_BENCH.metrics }, (_, i) => `bench.mon${tag}.m${i}`);
  const points = names.flatMap((metric, i) =>
    Array.from({ length: MONITORING_BENCH.minutes * 3 }, (_, k) => ({
      metric,
      value: (k * 7 + i) % 100,
      at: new Date(now - (Math.floor(k / 3) + 1) * 60_000 + 5_000),
      labels: { region: ['eu', 'us', 'ap'][k % 3] },
      sourceId: `bench:${tag}:${i}:${k}`,
    })),
  );
  await metrics.recordMany(points);
  const ruleIds: string[] = [];
  for (let i = 0; i < MONITORING_BENCH.rules; i++) ruleIds.push((await createRule(deps, rule(`bench ${tag} ${i}`, names[i % names.length], (i * 13) % 100))).rule_id);

  // The first cycle fires every label set over its threshold at once (an alert storm: each alert written,
  // streamed, published and delivered to plugins); the next ones are the steady state the aim is about,
  // a minute apart as the schedule runs them, so each window has slid and most values have changed.
  const cycles: number[] = [];
  let series = 0;
  let fired = 0;
  for (let c = 0; c < MONITORING_BENCH.cycles + 1; c++) {
    const t0 = performance.now();
    const report = await evaluateRules(deps, { ruleIds, now: new Date(now + c * 60_000) });
    cycles.push(performance.now() - t0);
    series = report.series;
    fired += report.transitions.firing;
  }
  const storm = cycles.shift()!;
  for (const id of ruleIds) await deleteRule(deps, id);

  // Breach → alert.fired on the stream.
  const token = await viewerToken(runtime);
  const ws = new WebSocket(`${runtime.wsUrl}/api/v1/monitoring/stream?token=${encodeURIComponent(token)}`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const firedAt = new Map<string, number>();
  ws.on('message', (raw) => {
    const m = JSON.parse(raw.toString()) as { type: string; data: { rule_id?: string } };
    if (m.type === 'alert.fired' && m.data.rule_id) firedAt.set(m.data.rule_id, performance.now());
  });
  const delays: number[] = [];
  for (let b = 0; b < MONITORING_BENCH.breaches; b++) {
    const metric = `bench.breach${tag}.b${b}`;
    await metrics.record({ metric, value: 1, at: new Date(Date.now() - 60_000), labels: { region: 'eu' }, sourceId: `bench:${tag}:seed:${b}` });
    const { rule_id } = await createRule(deps, rule(`bench breach ${tag} ${b}`, metric, 50));
    const t0 = performance.now();
    await metrics.record({ metric, value: 99, at: new Date(), labels: { region: 'eu' }, sourceId: `bench:${tag}:breach:${b}` });
    await evaluateRules(deps, { ruleIds: [rule_id] });
    const deadline = Date.now() + 10_000;
    while (!firedAt.has(rule_id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    if (firedAt.has(rule_id)) delays.push(firedAt.get(rule_id)! - t0);
    await deleteRule(deps, rule_id);
  }
  ws.close();

  const worst = Math.max(...cycles);
  printTable(`alert evaluation: ${MONITORING_BENCH.rules} rules over minute rollups (${series} label sets)`, ['cycle', 'runs', 'median ms', 'max ms', 'aim'], [
    ['steady (a minute later each)', String(cycles.length), fixed(median(cycles)), fixed(worst), `< ${MONITORING_BENCH.aimMs} ms ${worst < MONITORING_BENCH.aimMs ? 'ok' : 'MISS'}`],
    [`first (${fired} alerts fire at once)`, '1', fixed(storm), fixed(storm), '-'],
  ]);
  printTable('breach → alert.fired on the monitoring stream (the evaluation included)', ['breaches', 'received', 'median ms', 'max ms'], [
    [String(MONITORING_BENCH.breaches), String(delays.length), delays.length ? fixed(median(delays)) : '-', delays.length ? fixed(Math.max(...delays)) : '-'],
  ]);
  return [
    { what: `evaluation cycle, ${MONITORING_BENCH.rules} rules`, value: `${fixed(median(cycles))} ms median, ${fixed(worst)} ms max; ${fixed(storm)} ms when ${fired} alerts fire at once` },
    { what: 'breach → alert.fired on the WebSocket', value: delays.length ? `${fixed(median(delays))} ms median (+ up to one evaluation interval)` : 'not received' },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const runtime = await startLocalRuntime({ port: 0, dataDir: null, log: () => undefined });
  try {
    await benchMonitoring(runtime);
  } finally {
    await runtime.stop();
  }
}
