import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * package.json's `engines.node` is true: every Node version it admits satisfies what each installed
 * package declares, except the packages listed here with what covers the gap.
 */
const COVERED: Record<string, string> = {
  // Local runtime only (never in a Lambda bundle); declares >=22 for Promise.withResolvers, which
  // local/state-machine.ts installs before loading it. The scan below keeps that the only gap.
  'node_modules/aws-local-stepfunctions': 'Promise.withResolvers polyfilled in local/state-machine.ts',
};

/** APIs Node 21+ added that a package declaring >=22 might rely on. */
const NEWER_THAN_20 = [
  'Promise.withResolvers',
  'Promise.try',
  'Array.fromAsync',
  'Object.groupBy',
  'Map.groupBy',
  'Iterator.from',
  'RegExp.escape',
  'Error.isError',
  'Float16Array',
  'process.getBuiltinModule',
  '.symmetricDifference(',
  '.isSubsetOf(',
  '.isSupersetOf(',
  '.isDisjointFrom(',
  'Uint8Array.fromBase64',
  'navigator.',
];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
// npm's own range logic (semver comes with the toolchain: npm, vitest and eslint depend on it).
const semver = require('semver') as { subset(sub: string, dom: string): boolean; satisfies(version: string, range: string): boolean };

describe('engines', () => {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
  const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean }>;
  };

  it('every Node version package.json admits satisfies every installed package, or the gap is covered', () => {
    const gaps: string[] = [];
    for (const [name, entry] of Object.entries(lock.packages)) {
      const range = !name || Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      // Platform bindings not installed here (other OS or CPU) are not part of this install.
      if (!range || (entry.optional && !existsSync(path.join(root, name)))) continue;
      if (!semver.subset(pkg.engines.node, range) && !COVERED[name]) gaps.push(`${name} needs node ${range}`);
    }
    expect(gaps).toEqual([]);
  });

  it('this machine runs a Node version package.json admits', () => {
    expect(semver.satisfies(process.versions.node, pkg.engines.node), `${process.versions.node} vs ${pkg.engines.node}`).toBe(true);
  });

  it('aws-local-stepfunctions uses no Node 21+ API but the polyfilled Promise.withResolvers', async () => {
    const dir = path.join(root, 'node_modules', 'aws-local-stepfunctions', 'build');
    const used = new Set<string>();
    for (const file of ['main.node.esm.js', 'main.node.cjs']) {
      const source = readFileSync(path.join(dir, file), 'utf8');
      for (const api of NEWER_THAN_20) if (source.includes(api)) used.add(api);
    }
    expect([...used]).toEqual(['Promise.withResolvers']);
    // Loading the stand-in installs it when the running Node lacks it.
    await import('../../local/state-machine.js');
    // (typed by hand: the project's lib is ES2023, which predates it)
    const withResolvers = (Promise as unknown as { withResolvers<T>(): { promise: Promise<T>; resolve(value: T): void } }).withResolvers;
    expect(typeof withResolvers).toBe('function');
    const { promise, resolve } = withResolvers.call(Promise) as { promise: Promise<number>; resolve(value: number): void };
    resolve(42);
    await expect(promise).resolves.toBe(42);
  });
});
