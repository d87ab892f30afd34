import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { median } from './table.js';

/**
 * Lambda bundles as the CDK stack builds them (minified ESM for Node 20, `@aws-sdk/*` left to the
 * runtime, the same `require` banner), and their cold init time: how long a fresh `node` process
 * takes to import one, which is what a Lambda cold start adds on top of the runtime's own start.
 */

export interface BundleFigure {
  name: string;
  file: string;
  bytes: number;
  /** The `@aws-sdk/*` packages it imports statically, i.e. at init (the Lambda runtime provides them). */
  sdkImports: string[];
}

/** Every `functions/<name>/handler.ts`. */
export function functionEntries(root: string): { name: string; entry: string }[] {
  const dir = path.join(root, 'functions');
  return readdirSync(dir)
    .filter((name) => existsSync(path.join(dir, name, 'handler.ts')))
    .sort()
    .map((name) => ({ name, entry: path.join(dir, name, 'handler.ts') }));
}

/**
 * Builds every function's bundle into `outDir`. `sdk: 'external'` (as deployed) leaves `@aws-sdk/*` to
 * the runtime; `'bundled'` inlines the SDK clients the code imports (tree-shaken, lazily imported ones too).
 */
export async function buildBundles(root: string, outDir: string, options: { target: string; banner: string; sdk?: 'external' | 'bundled' }): Promise<BundleFigure[]> {
  mkdirSync(outDir, { recursive: true });
  const out: BundleFigure[] = [];
  for (const { name, entry } of functionEntries(root)) {
    const file = path.join(outDir, `${name}.mjs`);
    const result = await build({
      entryPoints: [entry],
      metafile: true,
      outfile: file,
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'node',
      target: options.target,
      external: options.sdk === 'bundled' ? [] : ['@aws-sdk/*'],
      mainFields: ['module', 'main'],
      banner: { js: options.banner },
      sourcemap: false,
      logLevel: 'error',
    });
    const imports = Object.values(result.metafile.outputs).flatMap((o) => o.imports);
    const sdkImports = [...new Set(imports.filter((i) => i.external && i.kind === 'import-statement' && i.path.startsWith('@aws-sdk/')).map((i) => i.path))].sort();
    out.push({ name, file, bytes: statSync(file).size, sdkImports });
  }
  return out;
}

/** Milliseconds a fresh process spends importing these modules (loading and top-level code). */
function importOnce(specifiers: string[], cwd: string, env: Record<string, string>): Promise<number> {
  const imports = specifiers.map((s) => `await import(${JSON.stringify(s)});`).join(' ');
  // Until the macrotask after the imports: what the modules started at init (a lazily loaded tracer) has run too.
  const script = `const t0 = performance.now(); ${imports} await new Promise((r) => setImmediate(r)); process.stdout.write(String(performance.now() - t0));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('exit', (code) => {
      const ms = Number(stdout.trim());
      if (code === 0 && Number.isFinite(ms)) resolve(ms);
      else reject(new Error(`importing ${specifiers.map((s) => path.basename(s)).join(', ')} failed (exit ${code}): ${stderr.trim().split('\n').slice(0, 3).join(' | ')}`));
    });
  });
}

/**
 * Median over `runs` fresh processes, run one after another so that they do not compete. A bundle is
 * given as its file; bare specifiers (`@aws-sdk/client-dynamodb`) resolve from `cwd`.
 */
export async function coldInit(modules: string | string[], runs: number, env: Record<string, string>, cwd = process.cwd()): Promise<{ medianMs: number; samples: number[] }> {
  const specifiers = (Array.isArray(modules) ? modules : [modules]).map((m) => (path.isAbsolute(m) ? pathToFileURL(m).href : m));
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) samples.push(await importOnce(specifiers, cwd, env));
  return { medianMs: median(samples), samples };
}
