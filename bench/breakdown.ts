import '../local/quiet-sdk.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { startLocalRuntime, type LocalRuntime } from '../local/runtime.js';
import { benchUser, request } from './tasks.js';
import { fixed, median, printTable } from './lib/table.js';

/**
 * Where one request's time goes (issue 10): for `POST /api/v1/tasks` and `GET /auth/me`, requests sent
 * one at a time, each measured inside the runtime's HTTP server from the request's arrival to the end of
 * its answer:
 * - the DynamoDB calls it made (the request's own and those it set off, followed through its async
 *   context), by operation, with count and time per request;
 * - the time in our own code: the request's time while none of its DynamoDB calls was outstanding;
 * - this process's CPU per request.
 * The task queue's consumer is stopped while tasks are created, so that the worker running them adds no
 * calls and no CPU to the figures; it is started again afterwards.
 * `benchBreakdown(runtime)` is called by `bench/run.ts`; `npx tsx bench/breakdown.ts` runs it alone.
 */

export const BREAKDOWN_BENCH = { warmup: 20, requests: 100 };

interface Figure {
  what: string;
  value: string;
}

interface Call {
  command: string;
  start: number;
  end: number;
}

interface Trace {
  calls: Call[];
  start: number;
  end?: number;
}

const traces = new AsyncLocalStorage<Trace>();

/** Time within [start, end] covered by at least one call. */
function covered(calls: Call[], start: number, end: number): number {
  const spans = calls.map((c) => [Math.max(start, c.start), Math.min(end, c.end)] as const).filter(([a, b]) => b > a);
  spans.sort((x, y) => x[0] - y[0]);
  let total = 0;
  let [from, to] = [0, 0];
  for (const [a, b] of spans) {
    if (a > to) {
      total += to - from;
      [from, to] = [a, b];
    } else to = Math.max(to, b);
  }
  return total + (to - from);
}

/**
 * Runs every HTTP request the process serves inside a trace of its own (the runtime's server is in this
 * process), and times each DynamoDB call of the runtime's store in the trace it belongs to.
 */
function instrument(runtime: LocalRuntime): { take(): Trace[]; restore(): void } {
  const done: Trace[] = [];
  const emit = http.Server.prototype.emit as (this: http.Server, event: string, ...args: unknown[]) => boolean;
  http.Server.prototype.emit = function (this: http.Server, event: string, ...args: unknown[]) {
    if (event !== 'request') return emit.call(this, event, ...args);
    const trace: Trace = { calls: [], start: performance.now() };
    (args[1] as http.ServerResponse).once('finish', () => {
      trace.end = performance.now();
      done.push(trace);
    });
    return traces.run(trace, () => emit.call(this, event, ...args));
  } as typeof http.Server.prototype.emit;
  const name = 'benchBreakdownTiming';
  runtime.deps.store.raw.middlewareStack.add(
    (next, context) => async (args) => {
      const trace = traces.getStore();
      if (!trace) return next(args);
      const call: Call = { command: String(context.commandName ?? 'unknown').replace(/Command$/, ''), start: performance.now(), end: 0 };
      try {
        return await next(args);
      } finally {
        call.end = performance.now();
        trace.calls.push(call);
      }
    },
    { step: 'initialize', name },
  );
  return {
    take: () => done.splice(0),
    restore: () => {
      http.Server.prototype.emit = emit as typeof http.Server.prototype.emit;
      runtime.deps.store.raw.middlewareStack.remove(name);
    },
  };
}

interface Breakdown {
  label: string;
  requests: number;
  p50Ms: number;
  meanMs: number;
  dynamoMs: number;
  ownMs: number;
  cpuMs: number;
  byOperation: { command: string; perRequest: number; msPerRequest: number }[];
}

function summarise(label: string, traces: Trace[], cpuMicros: number): Breakdown {
  const n = traces.length;
  const times = traces.map((t) => t.end! - t.start);
  const byOperation = new Map<string, { count: number; ms: number }>();
  let dynamo = 0;
  for (const t of traces) {
    for (const c of t.calls) {
      const entry = byOperation.get(c.command) ?? { count: 0, ms: 0 };
      entry.count++;
      entry.ms += c.end - c.start;
      byOperation.set(c.command, entry);
    }
    dynamo += covered(t.calls, t.start, t.end!);
  }
  const mean = times.reduce((s, x) => s + x, 0) / n;
  return {
    label,
    requests: n,
    p50Ms: median(times),
    meanMs: mean,
    dynamoMs: dynamo / n,
    ownMs: mean - dynamo / n,
    cpuMs: cpuMicros / 1000 / n,
    byOperation: [...byOperation.entries()].map(([command, e]) => ({ command, perRequest: e.count / n, msPerRequest: e.ms / n })).sort((a, b) => b.msPerRequest - a.msPerRequest),
  };
}

async function measure(label: string, tracer: ReturnType<typeof instrument>, send: (i: number) => Promise<void>): Promise<Breakdown> {
  for (let i = 0; i < BREAKDOWN_BENCH.warmup; i++) await send(i);
  tracer.take();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < BREAKDOWN_BENCH.requests; i++) await send(i);
  const cpu = process.cpuUsage(cpu0);
  return summarise(label, tracer.take(), cpu.user + cpu.system);
}

export async function benchBreakdown(runtime: LocalRuntime): Promise<Figure[]> {
  const { token } = await benchUser(runtime);
  const tracer = instrument(runtime);
  const results: Breakdown[] = [];
  try {
    results.push(
      await measure('GET /auth/me', tracer, async () => {
        const res = await request(`${runtime.url}/auth/me`, 'GET', token);
        if (res.status !== 200) throw new Error(`me failed: ${res.status}`);
      }),
    );
    runtime.queue.pause();
    try {
      results.push(
        await measure('POST /api/v1/tasks', tracer, async (i) => {
          const res = await request(`${runtime.url}/api/v1/tasks`, 'POST', token, { type: 'custom', provider_id: 'local', payload: { prompt: `Breakdown bench task ${i}` } });
          if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
        }),
      );
    } finally {
      runtime.queue.start();
    }
  } finally {
    tracer.restore();
  }
  printTable(
    `Where a request's time goes (${BREAKDOWN_BENCH.requests} requests one at a time after ${BREAKDOWN_BENCH.warmup} of warm-up, timed inside the runtime's server; create with the worker stopped)`,
    ['request', 'p50', 'mean', 'waiting on DynamoDB', 'own code', 'CPU per request', 'DynamoDB calls per request (count × time)'],
    results.map((r) => [
      r.label,
      `${fixed(r.p50Ms)} ms`,
      `${fixed(r.meanMs)} ms`,
      `${fixed(r.dynamoMs)} ms`,
      `${fixed(r.ownMs)} ms`,
      `${fixed(r.cpuMs)} ms`,
      r.byOperation.map((o) => `${o.command} ${fixed(o.perRequest)} × ${fixed(o.msPerRequest / o.perRequest)} ms`).join(', '),
    ]),
  );
  return results.flatMap((r) => [
    { what: `${r.label}: p50, DynamoDB wait / own code / CPU per request`, value: `${fixed(r.p50Ms)} ms; ${fixed(r.dynamoMs)} / ${fixed(r.ownMs)} / ${fixed(r.cpuMs)} ms` },
    { what: `${r.label}: DynamoDB calls per request`, value: fixed(r.byOperation.reduce((s, o) => s + o.perRequest, 0)) },
  ]);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const runtime = await startLocalRuntime({ port: 0, dataDir: null, log: () => undefined });
  try {
    const figures = await benchBreakdown(runtime);
    printTable('Breakdown figures', ['figure', 'value'], figures.map((f) => [f.what, f.value]));
  } finally {
    await runtime.stop();
  }
}
