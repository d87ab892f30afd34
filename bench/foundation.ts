import '../local/quiet-sdk.js';
import './lib/quiet-logs.js';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ulid } from 'ulid';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { startLocalRuntime, type LocalRuntime } from '../local/runtime.js';
import { lambdaContext } from '../local/lambda-context.js';
import { BUNDLE_TARGET, ESM_REQUIRE_BANNER } from '../lib/constructs/supervisor-function.js';
import { successBody } from '../shared/platform/api/envelope.js';
import { VERSION } from '../shared/platform/version.js';
import { AuthService } from '../shared/auth/service.js';
import { UserRepository } from '../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../shared/auth/sessions-repo.js';
import { buildBundles, coldInit } from './lib/bundles.js';
import { load, startBareServer, type LoadFigure } from './lib/load.js';
import { fixed, mark, printTable, type Aim } from './lib/table.js';

/**
 * The foundation's figures (issue 2 §8): bundle size and cold init per function, and the local
 * runtime's latency and throughput under load next to a bare node:http server in the same run.
 */

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Aims of the fast-paths issue (bundles, init) and of the foundation (health, me). */
export const AIMS = { bundleKb: 150, initMs: 100, ownInitMs: 25, meThroughputRatio: 0.7, meP99Ratio: 1.5, healthThroughputRatio: 0.5 };

export interface Figure {
  what: string;
  value: string;
  aim?: Aim;
}

/**
 * Bundle size and median cold init of every `functions/<name>/handler.ts`, built twice: with the SDK
 * left to the runtime (as deployed) and with the SDK bundled, so that the choice between them rests on
 * figures. "Own code" is the full init less importing the SDK clients alone.
 */
export async function benchBundles(options: { initRuns?: number } = {}): Promise<Figure[]> {
  const runs = options.initRuns ?? 10;
  const external = await buildBundles(ROOT, path.join(ROOT, '.bench'), { target: BUNDLE_TARGET, banner: ESM_REQUIRE_BANNER });
  const bundled = await buildBundles(ROOT, path.join(ROOT, '.bench', 'sdk-bundled'), { target: BUNDLE_TARGET, banner: ESM_REQUIRE_BANNER, sdk: 'bundled' });
  // What the stack sets on every function, and Lambda's AWS_EXECUTION_ENV, under which the tracer loads; nothing is reached at import time.
  const env = {
    AWS_REGION: 'us-east-1',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    STAGE: 'bench',
    TABLE_NAME: 'supervisor-bench',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    LOG_LEVEL: 'ERROR',
  };
  const rows: string[][] = [];
  const figures: Figure[] = [];
  // The SDK clients a bundle imports are the runtime's, not the bundle's: their share is measured apart.
  const sdkShare = new Map<string, number | undefined>();
  for (const b of external) {
    const key = b.sdkImports.join(' ');
    if (!key || sdkShare.has(key)) continue;
    sdkShare.set(key, await coldInit(b.sdkImports, runs, env, ROOT).then((r) => r.medianMs, () => undefined));
  }
  const initOf = (file: string) => coldInit(file, runs, env).then((r) => r.medianMs, () => undefined);
  const ms = (v: number | undefined) => (v === undefined ? 'failed' : `${fixed(v)} ms`);
  let bundledFaster = 0;
  const deltas: number[] = [];
  for (const b of external) {
    const withSdk = bundled.find((x) => x.name === b.name)!;
    const kb = b.bytes / 1024;
    const init = await initOf(b.file);
    const initBundled = await initOf(withSdk.file);
    const sdk = b.sdkImports.length ? sdkShare.get(b.sdkImports.join(' ')) : 0;
    const own = init === undefined || sdk === undefined ? undefined : Math.max(0, init - sdk);
    const sizeAim = { label: `< ${AIMS.bundleKb} KB`, met: kb < AIMS.bundleKb };
    const initAim = { label: `< ${AIMS.initMs} ms`, met: init !== undefined && init < AIMS.initMs };
    const ownAim = { label: `< ${AIMS.ownInitMs} ms`, met: own !== undefined && own < AIMS.ownInitMs };
    if (init !== undefined && initBundled !== undefined) {
      deltas.push(initBundled - init);
      if (initBundled < init) bundledFaster++;
    }
    figures.push({ what: `${b.name} bundle`, value: `${fixed(kb)} KB`, aim: sizeAim });
    figures.push({ what: `${b.name} cold init, SDK external (median of ${runs})`, value: ms(init), aim: initAim });
    figures.push({ what: `${b.name} cold init of own code`, value: ms(own), aim: ownAim });
    figures.push({ what: `${b.name} cold init, SDK bundled (${fixed(withSdk.bytes / 1024)} KB)`, value: ms(initBundled) });
    rows.push([b.name, `${fixed(kb)} KB`, mark(sizeAim), ms(init), mark(initAim), ms(own), mark(ownAim), `${fixed(withSdk.bytes / 1024)} KB`, ms(initBundled)]);
  }
  printTable(
    `Lambda bundles (esbuild: bundle, minify, ESM, node, ${BUNDLE_TARGET}; in .bench/) and cold init (median of ${runs} fresh node processes importing the bundle, as in Lambda with tracing on)`,
    ['function', 'size (SDK external)', '', 'init', '', 'own code (init − SDK alone)', '', 'size (SDK bundled)', 'init'],
    rows,
  );
  const sdkFigures = [...sdkShare].map(([key, v]) => `${key.replaceAll('@aws-sdk/', '')}: ${ms(v)}`).join('; ');
  console.log(`Importing the SDK clients alone: ${sdkFigures}.`);
  deltas.sort((a, b) => a - b);
  const medianDelta = deltas.length ? deltas[Math.floor(deltas.length / 2)] : NaN;
  console.log(
    `SDK bundled instead of external: faster for ${bundledFaster} of ${deltas.length} functions, median change ${fixed(medianDelta)} ms ` +
      `(the stack deploys it external${medianDelta < -10 ? ': bundling it would now be faster' : ''}).`,
  );
  figures.push({ what: 'cold init, SDK bundled instead of external (median change over functions)', value: `${fixed(medianDelta)} ms, faster for ${bundledFaster} of ${deltas.length}` });
  return figures;
}

/** A user of the runtime under test and its access token. */
async function accessToken(runtime: LocalRuntime): Promise<{ token: string; userId: string }> {
  const deps = runtime.deps;
  const service = new AuthService(deps, {
    users: new UserRepository(deps.store),
    sessions: new SessionRepository(deps.store),
    attempts: new LoginAttemptRepository(deps.store),
  });
  const username = `bench-${ulid().toLowerCase()}`;
  const password = 'bench-user-password';
  const user = await service.createUser({ username, password, roles: ['user'] });
  const res = await fetch(`${runtime.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  if (res.status !== 200) throw new Error(`bench login failed: ${res.status} ${await res.text()}`);
  return { token: ((await res.json()) as { data: { access_token: string } }).data.access_token, userId: user.user_id };
}

/**
 * Time per call of the health function's handler alone (the middleware stack and the operation, no HTTP):
 * invoked one after another with the event the local runtime builds, after a warm-up, while the runtime
 * is otherwise idle. Wall time, not the process's CPU: that counts the runtime's background work too.
 */
async function healthHandlerUs(calls = 20_000): Promise<number> {
  const { handler } = await import('../functions/health/handler.js');
  const event = () => {
    const now = new Date();
    const http = { method: 'GET', path: '/api/v1/health', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' };
    return {
      version: '2.0',
      routeKey: 'GET /api/v1/health',
      rawPath: '/api/v1/health',
      rawQueryString: '',
      headers: { host: '127.0.0.1', 'user-agent': 'bench', accept: '*/*' },
      requestContext: { accountId: 'local', apiId: 'local', domainName: '127.0.0.1', domainPrefix: '127', http, requestId: randomUUID(), routeKey: 'GET /api/v1/health', stage: '$default', time: now.toUTCString(), timeEpoch: now.getTime() },
      isBase64Encoded: false,
    } as unknown as Parameters<typeof handler>[0];
  };
  // The handler never waits for I/O here: a pause now and then lets the runtime's own timers and sockets run.
  const invoke = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await handler(event(), lambdaContext('supervisor-health', 30_000));
      if (i % 1_000 === 999) await new Promise((r) => setImmediate(r));
    }
  };
  await invoke(2_000);
  const t0 = performance.now();
  await invoke(calls);
  return ((performance.now() - t0) * 1000) / calls;
}

/** Latency and throughput at 50 connections for 10 s: the runtime's health and me, and a bare server. */
export async function benchHttp(runtime: LocalRuntime, options: { connections?: number; durationSeconds?: number } = {}): Promise<Figure[]> {
  const connections = options.connections ?? 50;
  const durationSeconds = options.durationSeconds ?? 10;
  const { token, userId } = await accessToken(runtime);
  const handlerUs = await healthHandlerUs();
  const bare = await startBareServer(() =>
    successBody({ status: 'ok', version: VERSION, stage: runtime.deps.config.stage, timestamp: new Date().toISOString() }, 'Service is alive'),
  );
  // The baseline of /auth/me: a bare server making one consistent GetItem of the user on the same DynamoDB Local.
  const { store } = runtime.deps;
  const bareRead = await startBareServer(async () => {
    const out = await store.doc.send(new GetCommand({ TableName: store.table, Key: { pk: `USER#${userId}`, sk: 'PROFILE' }, ConsistentRead: true }));
    return successBody({ user_id: out.Item?.user_id }, 'OK');
  });
  // DynamoDB Local is a JVM: /auth/me gets a longer warm-up so that its JIT has compiled the hot paths.
  const run = (url: string, headers?: Record<string, string>, warmupSeconds = 2) => load(url, { connections, durationSeconds, headers, warmupSeconds });
  let bareHealth: LoadFigure;
  let health: LoadFigure;
  let bareMe: LoadFigure;
  let me: LoadFigure;
  try {
    bareHealth = await run(`${bare.url}/api/v1/health`);
    health = await run(`${runtime.url}/api/v1/health`);
    bareMe = await run(`${bareRead.url}/auth/me`, {}, 5);
    me = await run(`${runtime.url}/auth/me`, { authorization: `Bearer ${token}` }, 5);
  } finally {
    await bare.close();
    await bareRead.close();
  }
  const ratio = health.requestsPerSecond / bareHealth.requestsPerSecond;
  const ratioAim = { label: `≥ ${AIMS.healthThroughputRatio} × bare`, met: ratio >= AIMS.healthThroughputRatio };
  const meRatio = me.requestsPerSecond / bareMe.requestsPerSecond;
  const meP99Ratio = me.p99Ms / Math.max(1, bareMe.p99Ms);
  const meAim = { label: `≥ ${AIMS.meThroughputRatio} × bare read, p99 ≤ ${AIMS.meP99Ratio} ×`, met: meRatio >= AIMS.meThroughputRatio && meP99Ratio <= AIMS.meP99Ratio };
  const row = (name: string, f: LoadFigure, note: string) => [
    name,
    `${f.p50Ms} ms`,
    `${f.p99Ms} ms`,
    `${Math.round(f.requestsPerSecond)}/s`,
    String(f.total),
    String(f.non2xx + f.errors),
    note,
  ];
  printTable(
    `Local runtime under load (autocannon, ${connections} connections, ${durationSeconds} s each, after a warm-up of 2 s, 5 s for /auth/me; request log off)`,
    ['endpoint', 'p50', 'p99', 'throughput', 'requests', 'non-2xx/errors', ''],
    [
      row('bare node:http, same JSON', bareHealth, 'baseline'),
      row('GET /api/v1/health', health, `${fixed(ratio, 2)} × bare  ${mark(ratioAim)}`),
      row('bare node:http + one GetItem', bareMe, 'baseline'),
      row(`GET /auth/me (token check cached ${runtime.deps.config.authCacheSeconds} s)`, me, `${fixed(meRatio, 2)} × bare read, p99 ${fixed(meP99Ratio, 2)} ×  ${mark(meAim)}`),
    ],
  );
  // The runtime answers by running the function's handler on top of an HTTP layer: even if that layer cost
  // no more than the whole bare server, the handler's own time would cap the ratio at about this (the
  // handler's figure is wall time on an idle runtime, the bare server's the process's CPU).
  const ceiling = bareHealth.cpuUsPerRequest / (bareHealth.cpuUsPerRequest + handlerUs);
  console.log(
    `  CPU per request: bare ${fixed(bareHealth.cpuUsPerRequest)} µs, runtime health ${fixed(health.cpuUsPerRequest)} µs; the health handler alone (middleware stack and operation, no HTTP, idle runtime) ${fixed(handlerUs)} µs a call, ` +
      `so with an HTTP layer as cheap as the bare server's, CPU-bound health could reach at most ${fixed(ceiling, 2)} × bare`,
  );
  const failures = [health, me].filter((f) => f.non2xx + f.errors > 0);
  for (const f of failures) console.log(`  note: ${f.url} had ${f.non2xx} non-2xx answers and ${f.errors} errors`);
  return [
    { what: 'GET /api/v1/health throughput vs bare node:http', value: `${fixed(ratio, 2)} ×`, aim: ratioAim },
    { what: 'GET /api/v1/health p50 / p99', value: `${health.p50Ms} / ${health.p99Ms} ms` },
    { what: 'CPU per health request: bare / runtime / the handler alone', value: `${fixed(bareHealth.cpuUsPerRequest)} / ${fixed(health.cpuUsPerRequest)} / ${fixed(handlerUs)} µs (ceiling ${fixed(ceiling, 2)} × bare)` },
    { what: 'GET /auth/me throughput and p99 vs bare node:http + GetItem', value: `${fixed(meRatio, 2)} ×, p99 ${me.p99Ms} ms (${fixed(meP99Ratio, 2)} ×)`, aim: meAim },
    { what: 'GET /auth/me p50 / throughput', value: `${me.p50Ms} ms / ${Math.round(me.requestsPerSecond)}/s` },
  ];
}

export async function startBenchRuntime(): Promise<LocalRuntime> {
  return startLocalRuntime({ port: 0, dataDir: null, log: () => undefined });
}

/** `npx tsx bench/foundation.ts`: the foundation's figures alone. */
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await benchBundles();
  const runtime = await startBenchRuntime();
  try {
    await benchHttp(runtime);
  } finally {
    await runtime.stop();
  }
}
