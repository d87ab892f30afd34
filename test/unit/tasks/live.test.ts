import { describe, it, expect } from 'vitest';
import type { Change } from '../../../shared/platform/feed.js';
import type { TaskRecord } from '../../../shared/tasks/repo.js';
import type { TaskStatus } from '../../../shared/tasks/status.js';
import { announcementsOf } from '../../../shared/tasks/live.js';
import { claim, complete, defer, resend, type Change as TaskChange } from '../../../shared/tasks/transitions.js';

const NOW = new Date('2025-03-01T12:00:00.000Z');
const ID = '01JNGW8Z5N6X0Y1Z2A3B4C5D6E';

function task(status: TaskStatus, fields: Partial<TaskRecord> = {}): TaskRecord {
  return {
    task_id: ID, type: 'custom', title: 't', status, priority: 5, payload: { prompt: 'hi' }, result: null, error: null,
    attempts: 0, max_attempts: 3, timeout_seconds: 60, max_cost_usd: null, agent_id: null, provider_id: null, model: null,
    tokens_in: 0, tokens_out: 0, cost_usd: 0, created_by: 'u1', created_at: '2025-03-01T11:00:00.000Z', updated_at: '2025-03-01T11:00:00.000Z',
    queued_at: null, started_at: null, completed_at: null, duration_ms: null, next_attempt_at: null, waiting_reason: null,
    tags: [], metadata: {}, workflow_execution_id: null, workflow_step_id: null, batch_id: null, version: 3,
    ...fields,
  } as TaskRecord;
}

/** The stream record of a stored task item (as the feed unmarshals it), before and after. */
function stored(before: TaskRecord | undefined, after: TaskRecord, sk = 'TASK'): Change {
  const item = (t: TaskRecord) => ({ pk: `TASK#${t.task_id}`, sk, ...t, lease_owner: 'w1', run_token: 'tok' });
  return { eventId: 'e', kind: before ? 'MODIFY' : 'INSERT', pk: `TASK#${after.task_id}`, sk, newImage: item(after), oldImage: before && item(before), at: NOW, sequenceNumber: '1', byTtl: false };
}

/** A transition applied to a task, as the conditional write stores it. */
function applied(before: TaskRecord, change: TaskChange): TaskRecord {
  const after = { ...before, ...change.set, version: before.version + 1 } as Record<string, unknown>;
  for (const field of change.remove ?? []) delete after[field];
  return after as unknown as TaskRecord;
}

describe('the live events of stored task changes', () => {
  it('an insert is task.created on `tasks` only, and on the event bus', () => {
    const a = announcementsOf(stored(undefined, task('queued')));
    expect(a.live).toMatchObject({ type: 'task.created', channels: ['tasks'], options: { permission: 'tasks:read_all', ownerId: 'u1' } });
    expect(a.bus?.type).toBe('task.created');
    expect(a.live!.data).not.toHaveProperty('run_token');
    expect(a.live!.data).not.toHaveProperty('pk');
  });

  it('a change a client sees is task.updated on `tasks` and `task:<id>`, with the stored view', () => {
    const before = task('queued');
    const after = applied(before, claim(before, { now: NOW, leaseUntil: new Date(NOW.getTime() + 60_000), agentId: 'a1', providerId: 'p1', model: 'm' }));
    const a = announcementsOf(stored(before, after));
    expect(a.live).toMatchObject({ type: 'task.updated', channels: ['tasks', `task:${ID}`], data: { status: 'running', version: 4 } });
    expect(a.live!.data).not.toHaveProperty('lease_until');
    expect(a.bus).toBeUndefined();
  });

  it('a task that has just completed or failed also goes on the event bus, once', () => {
    const before = task('running', { started_at: '2025-03-01T11:59:00.000Z', attempts: 1 });
    const session = { session_id: 's', task_id: ID, attempt: 1 } as never;
    const after = applied(before, complete(before, { now: NOW, output: 'done', model: 'm', usage: { tokens_in: 1, tokens_out: 2, cost_usd: 0 } as never, session }));
    expect(announcementsOf(stored(before, after)).bus).toMatchObject({ type: 'task.completed', detail: { task_id: ID, status: 'completed' } });
    // A later change of the ended task (its tags, say) is an update, not a second completion.
    const later = announcementsOf(stored(after, { ...after, tags: ['x'], version: after.version + 1 }));
    expect(later.live?.type).toBe('task.updated');
    expect(later.bus).toBeUndefined();
  });

  it('a write of bookkeeping only (a re-send, a deferral for the reason it already waits for, a lease) announces nothing', () => {
    const waiting = task('queued', { queued_at: '2025-03-01T11:58:00.000Z', waiting_reason: 'quota', next_attempt_at: '2025-03-01T11:59:00.000Z', run_token: 'old' });
    const input = { now: NOW, reason: 'quota' as const, nextAttemptAt: new Date(NOW.getTime() + 60_000), seconds: 60 };
    expect(announcementsOf(stored(waiting, applied(waiting, defer(waiting, input))))).toEqual({});
    expect(announcementsOf(stored(waiting, applied(waiting, resend(waiting, NOW))))).toEqual({});
    const otherReason = applied(waiting, defer(waiting, { ...input, reason: 'concurrency' }));
    expect(announcementsOf(stored(waiting, otherReason)).live?.data).toMatchObject({ waiting_reason: 'concurrency' });
    const running = task('running');
    expect(announcementsOf(stored(running, { ...running, lease_until: 'later', version: 4 } as TaskRecord))).toEqual({});
  });

  it('other items of a task (its sessions) and removals announce nothing', () => {
    expect(announcementsOf(stored(undefined, task('queued'), 'SESSION#1'))).toEqual({});
    expect(announcementsOf({ ...stored(task('queued'), task('queued')), kind: 'REMOVE', newImage: undefined })).toEqual({});
  });
});
