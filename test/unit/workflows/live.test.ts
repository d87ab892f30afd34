import { describe, it, expect } from 'vitest';
import type { Change } from '../../../shared/platform/feed.js';
import type { ExecutionRecord } from '../../../shared/workflows/repo.js';
import { runAnnouncement } from '../../../shared/workflows/live.js';
import { LIVE_FEED_KEY_PREFIXES } from '../../../shared/live-feed.js';

const NOW = new Date('2025-03-01T12:00:00.000Z');
const ID = '01JNGW8Z5N6X0Y1Z2A3B4C5D6E';

function run(fields: Partial<ExecutionRecord> = {}): ExecutionRecord {
  return {
    execution_id: ID, workflow_id: 'wf1', workflow_name: 'w', workflow_version: 1, status: 'running', trigger: 'api', triggered_by: 'u1',
    schedule_id: null, variables: {}, created_by: 'u1', created_by_username: 'user', created_at: '2025-03-01T11:00:00.000Z',
    started_at: '2025-03-01T11:00:01.000Z', completed_at: null, timeout_at: null, run_id: null, error: null, output: null,
    updated_at: '2025-03-01T11:00:01.000Z',
    ...fields,
  };
}

/** A run as stored, with the bookkeeping a test may add. */
type Stored = ExecutionRecord & { callback_token?: string };

/** The stream record of the run's own item (as the feed unmarshals it), before and after. */
function stored(before: Stored | undefined, after: Stored): Change {
  const item = (r: ExecutionRecord) => ({ pk: `EXECUTION#${ID}`, sk: 'META', entity: 'execution', ...r });
  return { eventId: 'e', kind: before ? 'MODIFY' : 'INSERT', pk: `EXECUTION#${ID}`, sk: 'META', newImage: item(after), oldImage: before && item(before), at: NOW, sequenceNumber: '1', byTtl: false };
}

describe('the live events of stored workflow run changes', () => {
  it('the live feed reads run items besides task items', () => {
    expect(LIVE_FEED_KEY_PREFIXES).toEqual(expect.arrayContaining(['TASK#', 'EXECUTION#']));
  });

  it('a new run and a change of its status are told', () => {
    expect(runAnnouncement(stored(undefined, run({ status: 'pending', started_at: null })))).toEqual({ visible: true });
    expect(runAnnouncement(stored(run({ status: 'pending', started_at: null }), run()))).toEqual({ visible: true });
  });

  it('bookkeeping alone (the callback token, the state machine run id, updated_at) is not told', () => {
    const before = run();
    expect(runAnnouncement(stored(before, { ...before, callback_token: 'token-1' })).visible).toBe(false);
    expect(runAnnouncement(stored({ ...before, callback_token: 'token-1' }, before)).visible).toBe(false);
    expect(runAnnouncement(stored(before, { ...before, run_id: 'arn:run', updated_at: NOW.toISOString() })).visible).toBe(false);
  });

  it('a run that has just completed or failed goes on the event bus, once; a cancelled one does not', () => {
    const completed = run({ status: 'completed', completed_at: NOW.toISOString(), output: { a: 'done' } });
    expect(runAnnouncement(stored(run(), completed))).toMatchObject({ visible: true, bus: { type: 'execution.completed', detail: { execution_id: ID, status: 'completed' } } });
    const failed = run({ status: 'failed', completed_at: NOW.toISOString(), error: { code: 'step_failed', message: 'x' } });
    expect(runAnnouncement(stored(run(), failed)).bus?.type).toBe('execution.failed');
    // A later write to the ended run (its callback token taken, say) is no second end.
    expect(runAnnouncement(stored(completed, { ...completed, callback_token: 't' })).bus).toBeUndefined();
    expect(runAnnouncement(stored(run(), run({ status: 'cancelled', completed_at: NOW.toISOString() }))).bus).toBeUndefined();
  });

  it("a step's item is not the run's: it tells nothing by itself here", () => {
    const change = { ...stored(undefined, run()), sk: 'STEP#a' };
    expect(runAnnouncement(change)).toEqual({ visible: false });
  });
});
