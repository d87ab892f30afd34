import { describe, expect, it } from 'vitest';
import { classify, errorOf } from '../../../functions/failures/handler.js';
import { sweeperHealth } from '../../../shared/health/checks.js';

const attrs = (a: Record<string, string>) => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, { stringValue: v, dataType: 'String' }])) as never;

describe('the failure queues\' messages', () => {
  it('tells a schedule firing from the sweeper\'s scheduled event, and anything else from both', () => {
    const id = '01JABCDEFGHJKMNPQRSTVWXYZ0';
    expect(classify({ body: JSON.stringify({ schedule_id: id, scheduled_time: '2026-01-01T01:00:00Z' }), attributes: {} as never })).toEqual({
      kind: 'firing',
      payload: { schedule_id: id, scheduled_time: '2026-01-01T01:00:00Z' },
    });
    expect(classify({ body: JSON.stringify({ source: 'aws.events', 'detail-type': 'Scheduled Event', time: '2026-01-01T00:00:00Z' }), attributes: {} as never })).toEqual({
      kind: 'sweep',
      at: new Date('2026-01-01T00:00:00Z'),
    });
    expect(classify({ body: 'not json', attributes: {} as never }).kind).toBe('unknown');
    expect(classify({ body: JSON.stringify({ schedule_id: 'not-a-ulid' }), attributes: {} as never }).kind).toBe('unknown');
  });

  it('reads the error of Lambda\'s, EventBridge\'s and the Scheduler\'s dead letters (first line, cut short)', () => {
    expect(errorOf({ messageAttributes: attrs({ ErrorCode: '200', ErrorMessage: 'boom\n    at stack' }) })).toBe('200: boom');
    expect(errorOf({ messageAttributes: attrs({ ERROR_CODE: 'TargetInvocationFailed', ERROR_MESSAGE: 'throttled' }) })).toBe('TargetInvocationFailed: throttled');
    expect(errorOf({ messageAttributes: {} })).toBe('no error given');
    expect(errorOf({ messageAttributes: attrs({ ErrorMessage: 'x'.repeat(1000) }) })).toHaveLength(300);
  });
});

describe('the sweeper\'s health', () => {
  const now = new Date('2026-01-01T00:10:00Z');
  it('is healthy after a recent finished sweep, unhealthy after a newer failure or a long silence, degraded before any sweep', () => {
    expect(sweeperHealth({ last_run_at: '2026-01-01T00:09:30Z' }, now, 300, 3).status).toBe('healthy');
    expect(sweeperHealth({ last_run_at: '2026-01-01T00:09:30Z', last_failure_at: '2026-01-01T00:09:00Z' }, now, 300, 3).status).toBe('healthy');
    expect(sweeperHealth({ last_run_at: '2026-01-01T00:08:00Z', last_failure_at: '2026-01-01T00:09:00Z', failures: 2 }, now, 300, 3)).toMatchObject({
      status: 'unhealthy',
      error: 'the last sweep failed at 2026-01-01T00:09:00Z (2 failed so far; see the sweeper\'s log)',
    });
    expect(sweeperHealth({ last_run_at: '2026-01-01T00:04:00Z' }, now, 300, 3)).toMatchObject({ status: 'unhealthy', error: 'no sweep finished since 2026-01-01T00:04:00Z' });
    expect(sweeperHealth(undefined, now, 300, 3)).toMatchObject({ status: 'degraded', required: false, name: 'sweeper' });
  });
});
