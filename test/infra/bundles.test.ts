import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/supervisor-stack.js';
import { buildBundles } from '../smoke/build-bundles.js';

/**
 * The smoke test of the built bundles (test/smoke): every function's bundle, built as the stack builds
 * it, loads, and those needing no AWS service answer AWS-shaped events. Here under the Node running
 * the tests; `.ci/run` runs the same under Node 22, the Lambda runtime's version.
 */
// Inside the project, so that the bundles resolve `@aws-sdk/*` from its node_modules as Lambda does from the runtime's.
const dir = join(PROJECT_ROOT, '.ci', 'bundles-test');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('built bundles', () => {
  it('load and answer under this Node', async () => {
    const labels = await buildBundles(dir);
    expect(labels).toEqual(expect.arrayContaining(['tasks', 'health', 'docs', 'worker', 'failures', 'schedule-fire', 'ws-message']));
    const out = execFileSync(process.execPath, [join(PROJECT_ROOT, 'test', 'smoke', 'run-bundles.mjs'), dir], { encoding: 'utf8' });
    expect(out).toContain(`${labels.length}/${labels.length} bundles passed`);
  }, 300_000);
});
