/**
 * Builds every Lambda function's bundle as the stack does (esbuild: ESM, minified, the Lambda runtime's
 * Node target, `@aws-sdk/*` left out, the `require` banner), one `<label>.mjs` per function into the
 * given directory, for `run-bundles.mjs` to load and invoke under any Node binary.
 *   npx tsx test/smoke/build-bundles.ts <out-dir>
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { FUNCTION_PORTS } from '../../shared/platform/infra.js';
import { BUNDLE_TARGET, ESM_REQUIRE_BANNER } from '../../lib/constructs/supervisor-function.js';
import { BACKGROUND_ENTRIES, PROJECT_ROOT } from '../../lib/supervisor-stack.js';
import { FUNCTION_GROUPS } from '../../shared/platform/api/route.js';
import { existsSync } from 'node:fs';

/** `ws-message` → functions/ws/handler.ts export `message`; `tasks` → functions/tasks/handler.ts `handler`. */
export function entryOf(label: string): { file: string; exported: string } {
  const ws = /^ws-(.+)$/.exec(label);
  return ws ? { file: 'functions/ws/handler.ts', exported: ws[1] } : { file: `functions/${label}/handler.ts`, exported: 'handler' };
}

/** Every function the stack deploys: the API groups that have a handler, the background ones, the WebSocket handlers. */
export function deployedLabels(): string[] {
  const background = BACKGROUND_ENTRIES.filter((e) => e !== 'ws');
  const groups = FUNCTION_GROUPS.filter((g) => existsSync(join(PROJECT_ROOT, 'functions', g, 'handler.ts')));
  const ws = Object.keys(FUNCTION_PORTS).filter((l) => l.startsWith('ws-'));
  return [...groups, ...background, ...ws];
}

export async function buildBundles(outDir: string): Promise<string[]> {
  mkdirSync(outDir, { recursive: true });
  const labels = deployedLabels();
  for (const label of labels) {
    const { file, exported } = entryOf(label);
    await build({
      stdin: { contents: `export { ${exported} as handler } from './${file}';`, resolveDir: PROJECT_ROOT, loader: 'ts' },
      bundle: true,
      minify: true,
      platform: 'node',
      format: 'esm',
      target: BUNDLE_TARGET,
      mainFields: ['module', 'main'],
      external: ['@aws-sdk/*'],
      banner: { js: ESM_REQUIRE_BANNER },
      outfile: join(outDir, `${label}.mjs`),
      logLevel: 'error',
    });
  }
  writeFileSync(join(outDir, 'labels.json'), JSON.stringify(labels));
  return labels;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: tsx test/smoke/build-bundles.ts <out-dir>');
    process.exit(2);
  }
  const labels = await buildBundles(resolve(out));
  console.log(`built ${labels.length} bundles (target ${BUNDLE_TARGET}) into ${out}`);
}
