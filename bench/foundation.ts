import '../local/quiet-sdk.js';
import './lib/quiet-logs.js';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ulid } from 'ulid';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { startLocalRuntime, type LocalRuntime } from '../local/runtime.js';
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
export const AIMS = { bundleKb: 250, initMs: 60, meThroughputRatio: 0.7, meP99Ratio: 1.5, healthThroughputRatio: 0.5 };

export interface Figure {
  what: string;
  value: string;
  aim?: Aim;
}

/** Bundle size and median cold init of every `functions/<name>/handler.ts`. */
export async function benchBundles(options: { initRuns?: number } = {}): Promise<Figure[]> {
  const runs = options.initRuns ?? 10;
  const bundles = await buildBundles(ROOT, path.join(ROOT, '.bench'), { target: BUNDLE_TARGET, banner: ESM_REQUIRE_BANNER });
  // What the stack sets on every function; nothing is reached at import time.
  const env = { AWS_REGION: 'us-east-1', STAGE: 'bench', TABLE_NAME: 'supervisor-bench', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', LOG_LEVEL: 'ERROR' };
  const rows: string[][] = [];
  const figures: Figure[] = [];
  // The SDK clients a bundle imports are the runtime's, not the bundle's: their share is measured apart.
  const sdkShare = new Map<string, string>();
  for (const b of bundles) {
    const key = b.sdkImports.join(' ');
    if (!key || sdkShare.has(key)) continue;
    try {
      sdkShare.set(key, `${fixed((await coldInit(b.sdkImports, runs, env, ROOT)).medianMs)} ms`);
    } catch {
      sdkShare.set(key, 'n/a');
    }
  }
  for (const b of bundles) {
    const kb = b.bytes / 1024;
    const sizeAim = { label: `< ${AIMS.bundleKb} KB`, met: kb < AIMS.bundleKb };
    let initCell: string;
    let initAim: Aim | undefined;
    try {
      const { medianMs, samples } = await coldInit(b.file, runs, env);
      initAim = { label: `< ${AIMS.initMs} ms`, met: medianMs < AIMS.initMs };
      initCell = `${fixed(medianMs)} ms (${fixed(Math.min(...samples))}–${fixed(Math.max(...samples))})`;
      figures.push({ what: `${b.name} cold init (median of ${runs})`, value: `${fixed(medianMs)} ms`, aim: initAim });
    } catch (err) {
      initCell = `failed: ${(err as Error).message}`;
      initAim = { label: `< ${AIMS.initMs} ms`, met: false };
      figures.push({ what: `${b.name} cold init`, value: 'failed', aim: initAim });
    }
    figures.push({ what: `${b.name} bundle`, value: `${fixed(kb)} KB`, aim: sizeAim });
    const sdk = b.sdkImports.length ? `${sdkShare.get(b.sdkImports.join(' '))} (${b.sdkImports.map((s) => s.replace('@aws-sdk/', '')).join(', ')})` : '–';
    rows.push([b.name, `${fixed(kb)} KB`, mark(sizeAim), initCell, mark(initAim), sdk]);
  }
  printTable(
    `Lambda bundles (esbuild: bundle, minify, ESM, node, ${BUNDLE_TARGET}, @aws-sdk/* external; in .bench/) and cold init (median of ${runs} fresh node processes importing the bundle)`,
    ['function', 'size', '', 'init (min–max)', '', 'of which importing the SDK alone'],
    rows,
  );
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

/** Latency and throughput at 50 connections for 10 s: the runtime's health and me, and a bare server. */
export async function benchHttp(runtime: LocalRuntime, options: { connections?: number; durationSeconds?: number } = {}): Promise<Figure[]> {
  const connections = options.connections ?? 50;
  const durationSeconds = options.durationSeconds ?? 10;
  const { token, userId } = await accessToken(runtime);
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
  const failures = [health, me].filter((f) => f.non2xx + f.errors > 0);
  for (const f of failures) console.log(`  note: ${f.url} had ${f.non2xx} non-2xx answers and ${f.errors} errors`);
  return [
    { what: 'GET /api/v1/health throughput vs bare node:http', value: `${fixed(ratio, 2)} ×`, aim: ratioAim },
    { what: 'GET /api/v1/health p50 / p99', value: `${health.p50Ms} / ${health.p99Ms} ms` },
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
