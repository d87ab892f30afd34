import { defineConfig } from 'vitest/config';

/**
 * Files that load the whole machine on their own: they start runtimes with DynamoDB Locals of their own
 * (a JVM each), kill and restart processes, or drive hundreds of tasks or parallel requests at once.
 * They run one at a time after the rest, so that none of them competes with another for the two cores
 * and the timing their assertions allow for holds.
 */
const EXCLUSIVE = [
  'test/integration/runtime/faults.test.ts',
  'test/integration/runtime/process.test.ts',
  'test/integration/runtime/lockdown.test.ts',
  'test/integration/health/health.test.ts',
  'test/integration/tasks/load.test.ts',
  'test/integration/resources/ledger.test.ts',
  // Walks every operation, including those that change what the whole runtime shares (plugins, monitoring).
  'test/integration/api/examples.test.ts',
];

/** What every project shares; the global setup (one runtime for the whole run) is the root's. */
const base = {
  // OUTBOUND_ALLOW_PRIVATE: the fake LLM servers listen on 127.0.0.1 (the guard's own tests turn it off).
  env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', LOG_LEVEL: 'ERROR', OUTBOUND_ALLOW_PRIVATE: 'true' },
  testTimeout: 60_000,
  hookTimeout: 120_000,
  pool: 'forks' as const,
};

export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      { test: { ...base, name: 'shared', include: ['test/**/*.test.ts'], exclude: EXCLUSIVE, maxWorkers: 2, sequence: { groupOrder: 0 } } },
      { test: { ...base, name: 'exclusive', include: EXCLUSIVE, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
});
