import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  FUNCTIONS,
  HTTP_INTEGRATION_TIMEOUT_SECONDS,
  TABLE,
  TABLE_INDEX_NAMES,
  TASK_DEAD_LETTER_QUEUE,
  TASK_QUEUE,
  VISIBILITY_FACTOR,
  visibilityTimeoutFor,
} from '../../../shared/platform/infra.js';
import { MAX_TIMEOUT_SECONDS } from '../../../shared/tasks/model.js';
import { FIRING_TAKEOVER_SECONDS } from '../../../shared/schedules/service.js';

describe('shared infrastructure facts', () => {
  it('are plain data: no AWS SDK, CDK or other import', () => {
    const source = readFileSync(new URL('../../../shared/platform/infra.ts', import.meta.url), 'utf8');
    expect(source).not.toMatch(/^\s*import\s/m);
    expect(source).not.toMatch(/\brequire\(/);
  });

  it('define the single table: pk/sk, three <name>pk/<name>sk GSIs and the TTL attribute', () => {
    expect(TABLE).toMatchObject({ defaultName: 'supervisor', partitionKey: 'pk', sortKey: 'sk', ttlAttribute: 'expires_at' });
    expect(TABLE_INDEX_NAMES).toEqual(['gsi1', 'gsi2', 'gsi3']);
    for (const index of TABLE.indexes) {
      expect(index).toEqual({ name: index.name, partitionKey: `${index.name}pk`, sortKey: `${index.name}sk` });
    }
  });

  it('derive each queue\'s visibility timeout from its consumer\'s timeout (6 ×), within the SQS maximum', () => {
    expect(visibilityTimeoutFor(10)).toBe(10 * VISIBILITY_FACTOR);
    expect(TASK_QUEUE.visibilityTimeoutSeconds).toBe(VISIBILITY_FACTOR * FUNCTIONS.worker.timeoutSeconds);
    expect(TASK_QUEUE.visibilityTimeoutSeconds).toBe(5400);
    expect(TASK_DEAD_LETTER_QUEUE.visibilityTimeoutSeconds).toBe(VISIBILITY_FACTOR * FUNCTIONS.background.timeoutSeconds);
    for (const q of [TASK_QUEUE, TASK_DEAD_LETTER_QUEUE]) expect(q.visibilityTimeoutSeconds).toBeLessThanOrEqual(43200);
    expect(TASK_QUEUE.maxReceiveCount).toBe(5);
  });

  it('keep the timeouts the code relies on consistent', () => {
    // A task's own timeout fits in one worker invocation.
    expect(MAX_TIMEOUT_SECONDS).toBeLessThanOrEqual(FUNCTIONS.worker.timeoutSeconds);
    // An API function answers before API Gateway gives up on it (504).
    expect(FUNCTIONS.api.timeoutSeconds).toBeLessThan(HTTP_INTEGRATION_TIMEOUT_SECONDS);
    // A schedule firing's claim is taken over only once the schedule-fire invocation that made it has ended.
    expect(FIRING_TAKEOVER_SECONDS).toBeGreaterThan(FUNCTIONS.background.timeoutSeconds);
    for (const limits of Object.values(FUNCTIONS)) {
      expect(limits.timeoutSeconds).toBeGreaterThan(0);
      expect(limits.timeoutSeconds).toBeLessThanOrEqual(900);
      expect(limits.memoryMb).toBeGreaterThanOrEqual(128);
    }
  });
});
