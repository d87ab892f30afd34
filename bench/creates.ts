import '../local/quiet-sdk.js';
import { availableParallelism } from 'node:os';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { startLocalRuntime, type LocalRuntime } from '../local/runtime.js';
import { TaskRepository } from '../shared/tasks/repo.js';
import { summarize } from '../shared/tasks/stats.js';
import { benchUser } from './tasks.js';
import { load, type LoadFigure } from './lib/load.js';
import { dynamodbCpuSeconds } from './lib/cpu.js';
import { fixed, mark, printTable, type Aim } from './lib/table.js';

/**
 * Create throughput and sustained throughput (issue 10), with autocannon in its own process:
 * - `POST /api/v1/tasks` at 1 and at 50 clients for 10 s each, the worker paused (as a disabled event
 *   source mapping) so that the figure is the API's; then the worker drains what was created, which
 *   gives its rate with a full queue;
 * - a sustained run: creates at a fixed rate for `BENCH_SUSTAINED_SECONDS` (180 by default) with the
 *   worker running, the backlog (tasks created and not yet finished) sampled every 10 s.
 * `benchCreates(runtime)` is called by `bench/run.ts`; `npx tsx bench/creates.ts` runs it alone.
 */

export const CREATES_BENCH = {
  burstSeconds: 10,
  clients: [1, 50] as const,
  sustainedSeconds: Number(process.env.BENCH_SUSTAINED_SECONDS ?? 180),
  sustainedRate: 60,
  sampleEverySeconds: 10,
};

const AIMS = { createP50Ms: 30, createsPerSecond: 150, createP99Ms: 500, sustainedPerSecond: 60 };

interface Figure {
  what: string;
  value: string;
  aim?: Aim;
}

const BODY = JSON.stringify({ type: 'custom', provider_id: 'local', payload: { prompt: 'Bench: summarise the change in one line' } });

/** Tasks created and not finished, from the statistics counters (one query of 16 shards). */
async function backlog(runtime: LocalRuntime): Promise<{ open: number; finished: number }> {
  const stats = summarize(await new TaskRepository(runtime.deps.store).statsShards());
  const s = stats.by_status;
  return { open: s.pending + s.queued + s.running, finished: s.completed + s.failed + s.cancelled };
}

/**
 * CPU seconds so far: this process (the runtime: HTTP server, worker, feed) and DynamoDB Local's JVM; and
 * the event loop's utilisation so far (the share of time it was busy, not waiting for I/O), which says
 * whether the one loop that runs the HTTP server, the worker and the feeds is what limits throughput.
 */
function cpuSeconds(runtime: LocalRuntime): { runtime: number; dynamodb: number; loop: EventLoopUtilization } {
  const own = process.cpuUsage();
  return { runtime: (own.user + own.system) / 1e6, dynamodb: dynamodbCpuSeconds(runtime), loop: performance.eventLoopUtilization() };
}

/** Cores used between two readings `seconds` apart. */
const coresBetween = (a: ReturnType<typeof cpuSeconds>, b: ReturnType<typeof cpuSeconds>, seconds: number) =>
  `runtime ${fixed((b.runtime - a.runtime) / seconds, 2)}, DynamoDB Local ${fixed((b.dynamodb - a.dynamodb) / seconds, 2)} cores; ` +
  `event loop busy ${fixed(performance.eventLoopUtilization(b.loop, a.loop).utilization * 100)} %`;

/**
 * CPU milliseconds per unit of work between two readings (the runtime's and DynamoDB Local's), and the
 * most units per second that CPU allows: every core of the machine busy with this work alone (autocannon's
 * own CPU left out), and the runtime's share on no more than about one core, its one event loop. A rate aim
 * above that ceiling needs less CPU per unit, not a different arrangement of the same work.
 */
function cpuPer(a: ReturnType<typeof cpuSeconds>, b: ReturnType<typeof cpuSeconds>, units: number): CpuPerUnit {
  return cpuPerUnit(((b.runtime - a.runtime) * 1000) / Math.max(1, units), ((b.dynamodb - a.dynamodb) * 1000) / Math.max(1, units));
}
interface CpuPerUnit {
  runtimeMs: number;
  dynamodbMs: number;
  /** Units per second with every core busy with them and the runtime's share on one core. */
  ceiling: number;
}
const cpuPerUnit = (runtimeMs: number, dynamodbMs: number): CpuPerUnit => ({
  runtimeMs,
  dynamodbMs,
  ceiling: Math.min((availableParallelism() * 1000) / (runtimeMs + dynamodbMs), 1000 / runtimeMs),
});
const cpuText = (c: CpuPerUnit) => `${fixed(c.runtimeMs + c.dynamodbMs)} ms (runtime ${fixed(c.runtimeMs)}, DynamoDB Local ${fixed(c.dynamodbMs)})`;

/** Counts the runtime's DynamoDB calls by operation (all of them: the worker's, the feed's, the sweeper's). */
function countCalls(runtime: LocalRuntime): { take(): Record<string, number>; stop(): void } {
  let counts: Record<string, number> = {};
  const name = 'benchCreatesCount';
  runtime.deps.store.raw.middlewareStack.add(
    (next, context) => (args) => {
      const op = String(context.commandName ?? 'unknown').replace(/Command$/, '');
      counts[op] = (counts[op] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name },
  );
  return {
    take: () => {
      const out = counts;
      counts = {};
      return out;
    },
    stop: () => void runtime.deps.store.raw.middlewareStack.remove(name),
  };
}

const perTask = (counts: Record<string, number>, tasks: number) =>
  `${fixed(Object.values(counts).reduce((a, b) => a + b, 0) / Math.max(1, tasks))} (${Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([op, n]) => `${op} ${fixed(n / Math.max(1, tasks))}`)
    .join(', ')})`;

/** Starts the worker again and waits until nothing is open; answers the tasks finished per second. */
async function drain(runtime: LocalRuntime): Promise<{ perSecond: number; seconds: number; tasks: number; cores: string; cpu: CpuPerUnit; callsPerTask: string }> {
  const start = await backlog(runtime);
  const cpu0 = cpuSeconds(runtime);
  const t0 = Date.now();
  const calls = countCalls(runtime);
  runtime.queue.start();
  let now = start;
  while (now.open > 0 && Date.now() - t0 < 600_000) {
    await new Promise((r) => setTimeout(r, 500));
    now = await backlog(runtime);
  }
  const seconds = (Date.now() - t0) / 1000;
  const tasks = now.finished - start.finished;
  const counted = calls.take();
  calls.stop();
  const cpu1 = cpuSeconds(runtime);
  return { perSecond: tasks / seconds, seconds, tasks, cores: coresBetween(cpu0, cpu1, seconds), cpu: cpuPer(cpu0, cpu1, tasks), callsPerTask: perTask(counted, tasks) };
}

export async function benchCreates(runtime: LocalRuntime): Promise<Figure[]> {
  const { token } = await benchUser(runtime);
  const headers = { authorization: `Bearer ${token}` };
  const url = `${runtime.url}/api/v1/tasks`;
  const bursts: { clients: number; figure: LoadFigure; cpu: CpuPerUnit; drained: Awaited<ReturnType<typeof drain>> }[] = [];
  for (const clients of CREATES_BENCH.clients) {
    await drain(runtime);
    runtime.queue.pause();
    // The CPU of every create of the burst, its warm-up's too (counted off the backlog: the worker is paused).
    const before = { cpu: cpuSeconds(runtime), open: (await backlog(runtime)).open };
    const figure = await load(url, { connections: clients, durationSeconds: CREATES_BENCH.burstSeconds, headers, method: 'POST', body: BODY, warmupSeconds: 2 });
    const cpu = cpuPer(before.cpu, cpuSeconds(runtime), (await backlog(runtime)).open - before.open);
    bursts.push({ clients, figure, cpu, drained: await drain(runtime) });
  }

  // Sustained: a fixed rate with the worker on; the backlog is sampled while autocannon runs.
  await drain(runtime);
  const samples: { at: number; open: number; finished: number }[] = [];
  const t0 = Date.now();
  const cpu0 = cpuSeconds(runtime);
  const first = await backlog(runtime);
  const sampler = setInterval(() => {
    void backlog(runtime).then((b) => samples.push({ at: Math.round((Date.now() - t0) / 1000), open: b.open, finished: b.finished - first.finished }));
  }, CREATES_BENCH.sampleEverySeconds * 1000);
  let sustained: LoadFigure;
  try {
    sustained = await load(url, {
      connections: 20,
      durationSeconds: CREATES_BENCH.sustainedSeconds,
      headers,
      method: 'POST',
      body: BODY,
      overallRate: CREATES_BENCH.sustainedRate,
    });
  } finally {
    clearInterval(sampler);
  }
  const end = await backlog(runtime);
  const seconds = (Date.now() - t0) / 1000;
  const sustainedCores = coresBetween(cpu0, cpuSeconds(runtime), seconds);
  const completedPerSecond = (end.finished - first.finished) / seconds;
  // Growing: over the run's second half the backlog rose by more than a quarter of what one interval creates.
  const lastHalf = samples.slice(Math.floor((samples.length - 1) / 2)).map((s) => s.open);
  const growing = lastHalf.length >= 2 && lastHalf[lastHalf.length - 1] - lastHalf[0] > (CREATES_BENCH.sustainedRate * CREATES_BENCH.sampleEverySeconds) / 4;
  const tail = await drain(runtime);

  const rows = bursts.map(({ clients, figure, cpu, drained }) => {
    const aim: Aim =
      clients === 1
        ? { label: `p50 ≤ ${AIMS.createP50Ms} ms`, met: figure.p50Ms <= AIMS.createP50Ms }
        : { label: `≥ ${AIMS.createsPerSecond}/s, p99 ≤ ${AIMS.createP99Ms} ms`, met: figure.requestsPerSecond >= AIMS.createsPerSecond && figure.p99Ms <= AIMS.createP99Ms };
    return { clients, figure, cpu, drained, aim };
  });
  printTable(
    `POST /api/v1/tasks (autocannon, ${CREATES_BENCH.burstSeconds} s each after 2 s of warm-up, worker paused), then the worker drains them`,
    ['clients', 'p50', 'p99', 'creates/s', 'non-2xx/errors', '', 'drained', 'worker rate', 'CPU while draining'],
    rows.map(({ clients, figure, drained, aim }) => [
      String(clients),
      `${figure.p50Ms} ms`,
      `${figure.p99Ms} ms`,
      fixed(figure.requestsPerSecond),
      String(figure.non2xx + figure.errors),
      mark(aim),
      `${drained.tasks} in ${fixed(drained.seconds)} s`,
      `${fixed(drained.perSecond)} tasks/s`,
      drained.cores,
    ]),
  );
  const sustainedAim: Aim = { label: `≥ ${AIMS.sustainedPerSecond} tasks/s, no growing backlog`, met: completedPerSecond >= AIMS.sustainedPerSecond * 0.95 && !growing };
  console.log(`  DynamoDB calls per task while draining ${rows.at(-1)!.drained.tasks} tasks (the worker's, and the change feed's and sweeper's meanwhile): ${rows.at(-1)!.drained.callsPerTask}`);
  printTable(
    `Sustained: ${CREATES_BENCH.sustainedRate} creates/s for ${CREATES_BENCH.sustainedSeconds} s with the worker on (backlog = created, not finished; every ${CREATES_BENCH.sampleEverySeconds} s)`,
    ['at', 'backlog', 'finished since start'],
    samples.map((s) => [`${s.at} s`, String(s.open), String(s.finished)]),
  );
  console.log(
    `  creates answered ${fixed(sustained.requestsPerSecond)}/s (p50 ${sustained.p50Ms} ms, p99 ${sustained.p99Ms} ms, ${sustained.non2xx + sustained.errors} non-2xx/errors); ` +
      `finished ${fixed(completedPerSecond)} tasks/s; backlog ${growing ? 'grew' : 'held'}; CPU ${sustainedCores}; the rest drained in ${fixed(tail.seconds)} s  ${mark(sustainedAim)}`,
  );
  // What this machine's CPU allows at most, from the CPU each create and each run took above (the 50-client burst and its drain).
  const busiest = rows.at(-1)!;
  const lifecycle = cpuPerUnit(busiest.cpu.runtimeMs + busiest.drained.cpu.runtimeMs, busiest.cpu.dynamodbMs + busiest.drained.cpu.dynamodbMs);
  printTable(
    `CPU per unit of work and the most per second it allows (all ${availableParallelism()} cores busy with it alone, the runtime's share on one)`,
    ['work', 'CPU per unit', 'at most', 'aim'],
    [
      ['one create (50-client burst)', cpuText(busiest.cpu), `${fixed(busiest.cpu.ceiling)} creates/s`, `${AIMS.createsPerSecond}/s`],
      ['one run (the drain after it)', cpuText(busiest.drained.cpu), `${fixed(busiest.drained.cpu.ceiling)} tasks/s`, ''],
      ['create and run', cpuText(lifecycle), `${fixed(lifecycle.ceiling)} tasks/s`, `${AIMS.sustainedPerSecond}/s sustained`],
    ],
  );
  return [
    ...rows.map(({ clients, figure, aim }) => ({
      what: `POST /api/v1/tasks at ${clients} client${clients === 1 ? '' : 's'}: p50 / p99 / creates per second`,
      value: `${figure.p50Ms} / ${figure.p99Ms} ms / ${fixed(figure.requestsPerSecond)}/s`,
      aim,
    })),
    { what: 'worker drain rate with a full queue (local provider), CPU', value: `${fixed(rows.at(-1)!.drained.perSecond)} tasks/s; ${rows.at(-1)!.drained.cores}` },
    { what: 'CPU per create / per run, and the most tasks/s this machine allows', value: `${cpuText(busiest.cpu)} / ${cpuText(busiest.drained.cpu)}; at most ${fixed(lifecycle.ceiling)} tasks/s` },
    { what: `sustained ${CREATES_BENCH.sustainedRate} creates/s for ${CREATES_BENCH.sustainedSeconds} s: finished per second, backlog`, value: `${fixed(completedPerSecond)} tasks/s, backlog ${growing ? 'grew' : 'held'} (last ${samples.at(-1)?.open ?? end.open})`, aim: sustainedAim },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const runtime = await startLocalRuntime({ port: 0, dataDir: null, log: () => undefined });
  try {
    await benchCreates(runtime);
  } finally {
    await runtime.stop();
  }
}
