import '../local/quiet-sdk.js';
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ulid } from 'ulid';
import { startLocalRuntime, type LocalRuntime } from '../local/runtime.js';
import { permissionsOf } from '../shared/platform/permissions.js';
import type { Principal } from '../shared/platform/principal.js';
import { addValue, bucketStart, emptyRollup, exactQuantile, mergeRollup, pointItem, rollupItem, MetricsStore, RESOLUTION_MS, type Resolution, type Rollup } from '../shared/platform/metrics/store.js';
import { exportAnalytics } from '../shared/analytics/export.js';
import { writeItems } from '../shared/platform/store/batch-write.js';
import { benchUser, pool, quantile, request } from './tasks.js';
import { fixed, printTable } from './lib/table.js';
import { dynamodbCpuSeconds } from './lib/cpu.js';

/**
 * Issue 11's figures:
 * - the query of a 30-day p95 over one metric with 30 days of minute rollups loaded (and the hour and day
 *   rollups they roll up into), over HTTP: p50/p99 latency and the items it read (aims: p99 < 100 ms
 *   locally, < 1,000 items); the answer is checked against the exact p95 of the loaded values;
 * - ingest throughput of task completions on the local provider with the change feed (and so the
 *   metrics consumer) on and off (off: no stream, so no live feed either): the same tasks at the same concurrency on runtimes started one after
 *   the other (aim: overhead < 10 %), and with the stream read by the live feed only, which shows how
 *   much is DynamoDB Local's own stream and the live feed, and what the metrics consumer adds to it. Each
 *   run is a process of its own (`ingestRun`). Runs of one configuration differ by 10 % or
 *   more on a shared machine, so the three configurations run in `ingestRounds` interleaved rounds (the
 *   order rotating) and the overhead is taken between their medians. Each run also says the CPU of
 *   its process and of DynamoDB Local while tasks ran, and, with the metrics on, the metric items
 *   written per task (counted off the runtime's client until every task's metrics are in): figures
 *   that move far less from run to run than throughput does;
 * - export of 100,000 points through the export code path (`exportAnalytics`, as the route runs it):
 *   time, peak RSS of this process, bytes, for CSV and XLSX. The aim (RSS < 200 MB) is held against
 *   the export's own growth of the RSS: this process also holds a whole runtime and everything the
 *   benches before loaded, which an export function's process would not.
 * `benchAnalytics(runtime)` is called by `bench/run.ts`; `npx tsx --expose-gc bench/analytics.ts` runs it alone.
 */
export const ANALYTICS_BENCH = {
  queryDays: 30,
  valuesPerMinute: 6,
  queries: 200,
  ingestTasks: 300,
  ingestConcurrency: 20,
  warmupTasks: 20,
  ingestRounds: 3,
  exportPoints: 100_000,
};

interface Figure {
  what: string;
  value: string;
  aim?: { label: string; met: boolean };
}

const DAY_MS = 86_400_000;


/** A deterministic latency-like value: a daily wave, a slow trend and a long tail. */
const valueAt = (minute: number, k: number) => 100 + 40 * Math.sin((2 * Math.PI * minute) / 1440) + (minute % 97) * 0.5 + (k === 0 && minute % 13 === 0 ? 400 : k * 7);

// ---------------------------------------------------------------- (a) 30-day p95

async function benchQuery(runtime: LocalRuntime, token: string) {
  const { deps } = runtime;
  const metric = `bench.q${ulid().toLowerCase().slice(-10)}.latency_ms`;
  const now = Date.now();
  const firstMinute = bucketStart(now - ANALYTICS_BENCH.queryDays * DAY_MS, 'hour');
  const lastMinute = bucketStart(now, 'minute');
  const rollups: Record<Resolution, Map<number, Rollup>> = { minute: new Map(), hour: new Map(), day: new Map() };
  const values: number[] = [];
  for (let t = firstMinute, m = 0; t <= lastMinute; t += RESOLUTION_MS.minute, m++) {
    const r = emptyRollup();
    for (let k = 0; k < ANALYTICS_BENCH.valuesPerMinute; k++) {
      const v = valueAt(m, k);
      addValue(r, v);
      values.push(v);
    }
    rollups.minute.set(t, r);
    for (const res of ['hour', 'day'] as const) {
      const b = bucketStart(t, res);
      mergeRollup(rollups[res].get(b) ?? (rollups[res].set(b, emptyRollup()), rollups[res].get(b)!), r);
    }
  }
  const items = (['minute', 'hour', 'day'] as const).flatMap((res) => [...rollups[res]].map(([b, r]) => rollupItem(metric, '*', res, b, r)));
  const loadStart = performance.now();
  await writeItems(deps.store, items.map((item) => ({ put: item })));
  const loadSeconds = (performance.now() - loadStart) / 1000;

  const body = { metric_type: metric, time_range: `${ANALYTICS_BENCH.queryDays}d`, aggregation: 'p95' };
  for (let i = 0; i < 10; i++) await request(`${runtime.url}/api/v1/analytics/query`, 'POST', token, body);
  const latencies: number[] = [];
  let last: any;
  for (let i = 0; i < ANALYTICS_BENCH.queries; i++) {
    const t0 = performance.now();
    const res = await request(`${runtime.url}/api/v1/analytics/query`, 'POST', token, body);
    latencies.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`query answered ${res.status}: ${JSON.stringify(res.body)}`);
    last = res.body.data;
  }
  const exact = exactQuantile(values.sort((a, b) => a - b), 0.95)!;
  const answered = last.series[0].value as number;
  return {
    minuteItems: rollups.minute.size,
    items: items.length,
    loadSeconds,
    resolution: last.resolution as string,
    itemsRead: last.items_read as number,
    count: last.series[0].count as number,
    points: values.length,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    answered,
    exact,
    error: Math.abs(answered - exact) / exact,
  };
}

// ---------------------------------------------------------------- (b) ingest with the feed on and off

type IngestConfiguration = boolean | 'stream-only';
type IngestRun = Awaited<ReturnType<typeof ingestRunHere>>;
/** The environment variable that makes this file one ingest run in a child process. */
const INGEST_CHILD = 'BENCH_ANALYTICS_INGEST';
const RESULT_MARK = 'ingest-result ';

/**
 * One ingest run in a process of its own. In one process, two runtimes share the handlers' deps (the
 * latest started one's: `installDeps`), so the caller's runtime would run its sweeper, collector and
 * evaluator against the run's table, and state left by earlier runs (heap, caches) would slow later ones.
 */
function ingestRun(changeFeed: IngestConfiguration): Promise<IngestRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
      env: { ...process.env, [INGEST_CHILD]: JSON.stringify(changeFeed) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('exit', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (code !== 0 || !line) return reject(new Error(`ingest run (${changeFeed}) exited ${code}: ${stderr.slice(-800)}`));
      const run = JSON.parse(line.slice(RESULT_MARK.length)) as IngestRun;
      console.log(`ingest with the change feed ${changeFeed === true ? 'on' : changeFeed === false ? 'off' : changeFeed}: ${run.tasks} tasks in ${fixed(run.seconds, 2)} s`);
      resolve(run);
    });
  });
}

type MetricWrites = { rollups: number; points: number; registry: number };

/**
 * Counts the items the metrics store writes (rollups; raw points and their guards; series registry,
 * catalog and compaction state), off every write the runtime's DynamoDB client sends.
 */
function countMetricWrites(runtime: LocalRuntime): MetricWrites {
  const counts: MetricWrites = { rollups: 0, points: 0, registry: 0 };
  const kindOf = (pk: unknown): keyof MetricWrites | undefined => {
    const key = typeof pk === 'string' ? pk : ((pk as { S?: string } | undefined)?.S ?? '');
    if (key.startsWith('MROLL#')) return 'rollups';
    if (key.startsWith('METRIC#') || key.startsWith('METRIC_EVENT#')) return 'points';
    return /^(MSERIES#|MCATALOG|MCOMPACT)/.test(key) ? 'registry' : undefined;
  };
  type Keyed = { Item?: { pk?: unknown }; Key?: { pk?: unknown } };
  runtime.deps.store.raw.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as {
        TransactItems?: { Put?: Keyed; Update?: Keyed; Delete?: Keyed; ConditionCheck?: Keyed }[];
        RequestItems?: Record<string, { PutRequest?: Keyed; DeleteRequest?: Keyed }[]>;
      } & Keyed;
      const keys: unknown[] = [];
      if (context.commandName === 'TransactWriteItemsCommand') for (const t of input.TransactItems ?? []) keys.push((t.Put?.Item ?? t.Update?.Key ?? t.Delete?.Key)?.pk);
      else if (context.commandName === 'BatchWriteItemCommand') for (const rs of Object.values(input.RequestItems ?? {})) for (const r of rs) keys.push((r.PutRequest?.Item ?? r.DeleteRequest?.Key)?.pk);
      else if (context.commandName === 'PutItemCommand') keys.push(input.Item?.pk);
      else if (context.commandName === 'UpdateItemCommand' || context.commandName === 'DeleteItemCommand') keys.push(input.Key?.pk);
      for (const k of keys) {
        const kind = kindOf(k);
        if (kind) counts[kind]++;
      }
      return next(args);
    },
    { step: 'initialize', name: 'benchMetricWrites' },
  );
  return counts;
}

async function ingestRunHere(changeFeed: IngestConfiguration) {
  const runtime = await startLocalRuntime({ port: 0, dataDir: null, log: () => undefined, changeFeed });
  const writes = countMetricWrites(runtime);
  try {
    const { token } = await benchUser(runtime);
    // Finished tasks are counted from the task counters (one read every 200 ms), the same way in every
    // configuration: with the change feed off the table has no stream, so no task events are sent.
    const finishedCount = async () => {
      const res = await request(`${runtime.url}/api/v1/tasks/stats/summary`, 'GET', token);
      if (res.status !== 200) throw new Error(`stats failed: ${res.status} ${JSON.stringify(res.body)}`);
      const byStatus = res.body.data.by_status as Record<string, number>;
      return (byStatus.completed ?? 0) + (byStatus.failed ?? 0);
    };
    const create = async (i: number) => {
      const res = await request(`${runtime.url}/api/v1/tasks`, 'POST', token, {
        type: 'bug_fix',
        provider_id: 'local',
        payload: { description: `Ingest bench task ${i}: the export drops the last row`, error_message: 'expected 100 rows, got 99' },
      });
      if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.data.task_id as string;
    };
    const allDone = async (count: number) => {
      const deadline = performance.now() + 300_000;
      let finished = 0;
      while ((finished = await finishedCount()) < count) {
        if (performance.now() > deadline) throw new Error(`only ${finished} of ${count} tasks finished within 5 minutes`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    // Warm-up: the same path, not measured.
    await pool(ANALYTICS_BENCH.warmupTasks, ANALYTICS_BENCH.ingestConcurrency, create);
    await allDone(ANALYTICS_BENCH.warmupTasks);

    const cpu0 = process.cpuUsage();
    const dynamo0 = dynamodbCpuSeconds(runtime);
    const t0 = performance.now();
    const ids = await pool(ANALYTICS_BENCH.ingestTasks, ANALYTICS_BENCH.ingestConcurrency, create);
    await allDone(ANALYTICS_BENCH.warmupTasks + ANALYTICS_BENCH.ingestTasks);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const dynamoSeconds = dynamodbCpuSeconds(runtime) - dynamo0;

    // With the feed on: how long after the last completion the metrics have every finished task.
    let metricsLagMs: number | null = null;
    let recorded: number | null = null;
    if (changeFeed === true) {
      const store = new MetricsStore(runtime.deps.store);
      const wanted = ANALYTICS_BENCH.warmupTasks + ANALYTICS_BENCH.ingestTasks;
      const end = performance.now();
      for (;;) {
        const read = await store.readRollups({ metric: 'task.finished', resolution: 'day', start: bucketStart(Date.now() - DAY_MS, 'day'), end: bucketStart(Date.now(), 'day') });
        recorded = [...read.groups[0].buckets.values()].reduce((s, r) => s + r.count, 0);
        if (recorded >= wanted || performance.now() - end > 60_000) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      metricsLagMs = performance.now() - end;
    }
    const allTasks = ANALYTICS_BENCH.warmupTasks + ANALYTICS_BENCH.ingestTasks;
    const perTask = (n: number) => n / allTasks;
    return {
      changeFeed,
      tasks: ids.length,
      seconds,
      throughput: ids.length / seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      // null where it cannot be read (no /proc, or an endpoint this runtime did not start): the result crosses as JSON.
      dynamoCpuSeconds: Number.isFinite(dynamoSeconds) ? dynamoSeconds : null,
      metricsLagMs,
      recorded,
      metricWritesPerTask: { rollups: perTask(writes.rollups), points: perTask(writes.points), registry: perTask(writes.registry) },
    };
  } finally {
    await runtime.stop();
  }
}

const metricWritesText = (w: MetricWrites) => `${fixed(w.rollups + w.points + w.registry, 1)} (${fixed(w.rollups, 1)} + ${fixed(w.points, 1)} + ${fixed(w.registry, 1)})`;

// ---------------------------------------------------------------- (c) export of 100,000 points

async function benchExport(runtime: LocalRuntime) {
  const { deps } = runtime;
  const metric = `bench.x${ulid().toLowerCase().slice(-10)}.duration_ms`;
  const now = Date.now();
  const n = ANALYTICS_BENCH.exportPoints;
  const recordedAt = new Date(now);
  const items = Array.from({ length: n }, (_, i) =>
    pointItem(
      { metric, value: Math.round(valueAt(i, i % 6) * 100) / 100, at: new Date(now - 20 * 3_600_000 + Math.floor((i * 20 * 3_600_000) / n)), labels: { provider: ['local', 'openai', 'anthropic'][i % 3], task_type: i % 2 ? 'bug_fix' : 'pr_review' }, sourceId: `bench:${metric}:${i}` },
      recordedAt,
      deps.config.metricsRetentionDays,
    ),
  );
  const loadStart = performance.now();
  await writeItems(deps.store, items.map((item) => ({ put: item })));
  const loadSeconds = (performance.now() - loadStart) / 1000;
  items.length = 0;

  const principal: Principal = { userId: 'bench-export', username: 'bench-export', roles: ['admin'], permissions: permissionsOf(['admin']), sessionId: 'bench' };
  const rows = [];
  for (const format of ['csv', 'xlsx'] as const) {
    (globalThis as { gc?: () => void }).gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    const t0 = performance.now();
    const out = await exportAnalytics(deps, principal, { format, time_range: '24h', metric_types: [metric] });
    const ms = performance.now() - t0;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    if (out.points !== n) throw new Error(`the ${format} export holds ${out.points} points, not ${n}`);
    rows.push({ format, ms, bytes: out.bytes, before, peak, stored: out.kind === 'stored' });
  }
  return { loadSeconds, rows };
}

// ---------------------------------------------------------------- all

const mb = (bytes: number) => bytes / 1048576;

export async function benchAnalytics(runtime: LocalRuntime): Promise<Figure[]> {
  const { token } = await benchUser(runtime);
  const q = await benchQuery(runtime, token);
  printTable(
    `30-day p95 over one metric (POST /api/v1/analytics/query, ${ANALYTICS_BENCH.queries} queries; ${q.minuteItems} minute rollups of ${q.points} points loaded with their hour and day rollups, ${q.items} items in ${fixed(q.loadSeconds)} s)`,
    ['resolution', 'items read', 'p50', 'p99', 'p95 answered', 'exact p95', 'error'],
    [[q.resolution, String(q.itemsRead), `${fixed(q.p50)} ms`, `${fixed(q.p99)} ms`, fixed(q.answered, 2), fixed(q.exact, 2), `${fixed(q.error * 100, 2)} %`]],
  );

  type Run = IngestRun;
  const configurations = [true, 'stream-only', false] as const;
  const runs = new Map<(typeof configurations)[number], Run[]>(configurations.map((c) => [c, []]));
  for (let round = 0; round < ANALYTICS_BENCH.ingestRounds; round++) {
    // The order rotates, so that no configuration always runs first (or last) in a round.
    for (let i = 0; i < configurations.length; i++) {
      const configuration = configurations[(i + round) % configurations.length]!;
      runs.get(configuration)!.push(await ingestRun(configuration));
    }
  }
  const medianRun = (c: (typeof configurations)[number]): Run => {
    const sorted = [...runs.get(c)!].sort((a, b) => a.throughput - b.throughput);
    return sorted[Math.floor(sorted.length / 2)]!;
  };
  // `stream-only`: the stream read by the live feed (task events) but handed to no metrics consumer. Against
  // `off` (no stream: no feed, no task events) it shows what DynamoDB Local's stream and the live feed
  // cost (every write also writes a stream record there, on the one thread all requests share; on AWS a
  // stream costs the write path nothing); against `on`, what the metrics consumer adds.
  const [on, streamOnly, off] = configurations.map(medianRun) as [Run, Run, Run];
  const overhead = (streamOnly.throughput - on.throughput) / streamOnly.throughput;
  const streamShare = (off.throughput - streamOnly.throughput) / off.throughput;
  const total = (off.throughput - on.throughput) / off.throughput;
  const label = (c: Run['changeFeed']) => (c === 'stream-only' ? 'stream and live feed, no metrics' : c ? 'on (live feed and metrics)' : 'off (no stream)');
  printTable(
    `Ingest of task completions, local provider (${ANALYTICS_BENCH.ingestTasks} tasks at concurrency ${ANALYTICS_BENCH.ingestConcurrency} after ${ANALYTICS_BENCH.warmupTasks} warm-up tasks; a fresh process and runtime each; ${ANALYTICS_BENCH.ingestRounds} interleaved rounds)`,
    ['change feed', 'tasks/s, each round', 'median tasks/s', 'median run: time', 'CPU of this process', 'CPU of DynamoDB Local', 'metrics complete after the last task', 'metric items written per task'],
    [on, streamOnly, off].map((r) => [
      label(r.changeFeed),
      runs
        .get(r.changeFeed)!
        .map((x) => fixed(x.throughput, 1))
        .join(' / '),
      fixed(r.throughput, 1),
      `${fixed(r.seconds, 2)} s`,
      `${fixed(r.cpuSeconds, 1)} s`,
      r.dynamoCpuSeconds === null ? 'n/a' : `${fixed(r.dynamoCpuSeconds, 1)} s`,
      r.metricsLagMs === null ? '-' : `${fixed(r.metricsLagMs)} ms (${r.recorded} task.finished)`,
      r.metricsLagMs === null ? '-' : metricWritesText(r.metricWritesPerTask),
    ]),
  );
  console.log(
    `overhead of the metrics consumer (between medians, against the stream and live feed alone): ${fixed(overhead * 100)} % of throughput, ${fixed(((on.cpuSeconds - streamOnly.cpuSeconds) / streamOnly.cpuSeconds) * 100)} % more CPU; ` +
      `of DynamoDB Local's stream and the live feed (against no stream): ${fixed(streamShare * 100)} %; of both: ${fixed(total * 100)} %`,
  );

  const x = await benchExport(runtime);
  printTable(
    `Export of ${ANALYTICS_BENCH.exportPoints} points (exportAnalytics, one metric; points loaded in ${fixed(x.loadSeconds)} s)`,
    ['format', 'time', 'bytes', 'RSS before', 'peak RSS', 'growth', 'delivered'],
    x.rows.map((r) => [r.format, `${fixed(r.ms / 1000, 2)} s`, `${fixed(mb(r.bytes), 1)} MB`, `${fixed(mb(r.before))} MB`, `${fixed(mb(r.peak))} MB`, `${fixed(mb(r.peak - r.before))} MB`, r.stored ? 'object storage (URL)' : 'inline']),
  );

  const figures: Figure[] = [
    { what: 'analytics metric items written per task (rollups, raw points and guards, registry)', value: metricWritesText(on.metricWritesPerTask) },
    { what: `analytics 30-day p95 query p50 / p99`, value: `${fixed(q.p50)} / ${fixed(q.p99)} ms`, aim: { label: 'p99 < 100 ms', met: q.p99 < 100 } },
    { what: 'analytics 30-day p95 query items read', value: String(q.itemsRead), aim: { label: '< 1,000', met: q.itemsRead < 1000 } },
    { what: `analytics ingest tasks/s (median of ${ANALYTICS_BENCH.ingestRounds}), on / stream and live feed / no stream`, value: `${fixed(on.throughput, 1)} / ${fixed(streamOnly.throughput, 1)} / ${fixed(off.throughput, 1)}` },
    { what: 'analytics ingest overhead of the metrics consumer', value: `${fixed(overhead * 100)} %`, aim: { label: '< 10 %', met: overhead < 0.1 } },
    { what: "analytics ingest overhead of DynamoDB Local's stream and the live feed", value: `${fixed(streamShare * 100)} %` },
  ];
  for (const r of x.rows) {
    figures.push({ what: `analytics export of ${ANALYTICS_BENCH.exportPoints} points, ${r.format}: time, bytes`, value: `${fixed(r.ms / 1000, 2)} s, ${fixed(mb(r.bytes), 1)} MB` });
    figures.push({
      what: `analytics export of ${ANALYTICS_BENCH.exportPoints} points, ${r.format}: peak RSS growth (of ${fixed(mb(r.peak))} MB)`,
      value: `${fixed(mb(r.peak - r.before))} MB`,
      aim: { label: '< 200 MB', met: mb(r.peak - r.before) < 200 },
    });
  }
  return figures;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href && process.env[INGEST_CHILD]) {
  const run = await ingestRunHere(JSON.parse(process.env[INGEST_CHILD]) as IngestConfiguration);
  console.log(RESULT_MARK + JSON.stringify(run));
  process.exit(0);
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const runtime = await startLocalRuntime({ port: 0, dataDir: null, log: () => undefined });
  try {
    const figures = await benchAnalytics(runtime);
    printTable('Analytics figures', ['figure', 'value', 'aim'], figures.map((f) => [f.what, f.value, f.aim ? `${f.aim.met ? 'ok' : 'MISS'} (${f.aim.label})` : '']));
  } finally {
    await runtime.stop();
  }
}
