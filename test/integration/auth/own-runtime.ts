import { inject } from 'vitest';
import { ulid } from 'ulid';
import { startLocalRuntime, type LocalRuntime } from '../../../local/runtime.js';
import type { Clock } from '../../../shared/platform/ports.js';
import { testStore } from './fixtures.js';
import type { Store } from '../../../shared/platform/store/client.js';

/**
 * A runtime of the test file's own, on the run's DynamoDB Local but with a table of its own, so that
 * counts (admins, rate-limit windows) are not shared with the rest of the suite.
 */
export async function ownRuntime(options: { clock?: Clock; env?: Record<string, string> } = {}): Promise<{ runtime: LocalRuntime; store: Store; baseUrl: string }> {
  const tableName = `t${ulid().toLowerCase()}`;
  const runtime = await startLocalRuntime({
    // No analytics here: the table needs no stream (every write to a table with one costs DynamoDB Local more).
    changeFeed: false,
    port: 0,
    dataDir: null,
    log: () => undefined,
    dynamodbEndpoint: inject('dynamodbEndpoint'),
    tableName,
    clock: options.clock,
    env: options.env,
  });
  return { runtime, store: testStore(inject('dynamodbEndpoint'), tableName), baseUrl: runtime.url };
}
