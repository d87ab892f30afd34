import '../local/quiet-sdk.js';
import './lib/quiet-logs.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { LocalRuntime } from '../local/runtime.js';
import { benchBundles, benchHttp, ROOT, startBenchRuntime, type Figure } from './foundation.js';
import { mark, printTable } from './lib/table.js';

/**
 * `npm run bench`: the foundation's figures, then those of the areas that provide a bench module
 * (`bench/tasks.ts` exporting `benchTasks(runtime)`, `bench/workflows.ts` exporting
 * `benchWorkflows(runtime)`, … `bench/analytics.ts` exporting `benchAnalytics(runtime)`), all against one local runtime started here, in memory.
 */

interface AreaBench {
  file: string;
  exportName: string;
}
const AREAS: AreaBench[] = [
  { file: 'breakdown.ts', exportName: 'benchBreakdown' },
  { file: 'creates.ts', exportName: 'benchCreates' },
  { file: 'tasks.ts', exportName: 'benchTasks' },
  { file: 'workflows.ts', exportName: 'benchWorkflows' },
  { file: 'resources.ts', exportName: 'benchResources' },
  { file: 'monitoring.ts', exportName: 'benchMonitoring' },
  { file: 'analytics.ts', exportName: 'benchAnalytics' },
];

const started = Date.now();
const figures: Figure[] = [];
const problems: string[] = [];

console.log(`Supervisor bench — node ${process.version}, ${new Date().toISOString()}`);
console.log('Figures from a shared machine: compare runs of the same machine, not across machines.');

figures.push(...(await benchBundles()));

let runtime: LocalRuntime | undefined;
try {
  runtime = await startBenchRuntime();
  figures.push(...(await benchHttp(runtime)));
  for (const area of AREAS) {
    const file = path.join(ROOT, 'bench', area.file);
    if (!existsSync(file)) {
      console.log(`\n(bench/${area.file} is not there yet: skipped)`);
      continue;
    }
    const mod = (await import(`./${area.file.replace(/\.ts$/, '.js')}`)) as Record<string, unknown>;
    const fn = mod[area.exportName];
    if (typeof fn !== 'function') {
      problems.push(`bench/${area.file} does not export ${area.exportName}`);
      continue;
    }
    console.log(`\n== ${area.exportName} ==`);
    try {
      await (fn as (runtime: LocalRuntime) => Promise<unknown>)(runtime);
    } catch (err) {
      problems.push(`${area.exportName} failed: ${(err as Error).stack ?? err}`);
    }
  }
} catch (err) {
  problems.push(`bench failed: ${(err as Error).stack ?? err}`);
} finally {
  await runtime?.stop();
}

const aimed = figures.filter((f) => f.aim);
printTable(
  'Against the aims: bundles, cold init, health and /auth/me (each area bench marks its own above)',
  ['figure', 'value', ''],
  aimed.map((f) => [f.what, f.value, mark(f.aim)]),
);
const missed = aimed.filter((f) => !f.aim!.met).length;
console.log(`\n${aimed.length - missed} of ${aimed.length} aims met; bench took ${Math.round((Date.now() - started) / 1000)} s`);
for (const p of problems) console.error(`problem: ${p}`);
process.exit(problems.length ? 1 : 0);
