import { describe, it, expect } from 'vitest';
import { TASK_STATUSES, type TaskStatus } from '../../../shared/tasks/status.js';
import type { TaskRecord } from '../../../shared/tasks/repo.js';
import type { SessionView } from '../../../shared/tasks/model.js';
import { bucketCounter, bucketIndex } from '../../../shared/tasks/stats.js';
import {
  cancel,
  canTransition,
  claim,
  complete,
  deadLetter,
  defer,
  edit,
  enqueue,
  failure,
  interrupt,
  leaseLive,
  requeue,
  resend,
  retryOrFail,
  RESULT_MAX_BYTES,
  TASK_ERRORS,
  TransitionError,
  type Change,
} from '../../../shared/tasks/transitions.js';

const NOW = new Date('2025-03-01T12:00:00.000Z');
const ISO = NOW.toISOString();
const STARTED = '2025-03-01T11:59:58.000Z';

function task(status: TaskStatus, fields: Partial<TaskRecord> = {}): TaskRecord {
  return {
    task_id: '01JNGW8Z5N6X0Y1Z2A3B4C5D6E',
    type: 'custom',
    title: 't',
    status,
    priority: 5,
    payload: { prompt: 'hi' },
    result: null,
    error: null,
    attempts: 0,
    max_attempts: 3,
    timeout_seconds: 60,
    max_cost_usd: null,
    agent_id: null,
    provider_id: null,
    model: null,
    tokens_in: 0,
    tokens_out: 0,
    cost_usd: 0,
    created_by: 'u1',
    created_at: '2025-03-01T11:00:00.000Z',
    updated_at: '2025-03-01T11:00:00.000Z',
    queued_at: null,
    started_at: null,
    completed_at: null,
    duration_ms: null,
    next_attempt_at: null,
    waiting_reason: null,
    tags: [],
    metadata: {},
    workflow_execution_id: null,
    workflow_step_id: null,
    batch_id: null,
    version: 3,
    ...fields,
  };
}

const running = (fields: Partial<TaskRecord> = {}) =>
  task('running', {
    attempts: 1,
    started_at: STARTED,
    queued_at: '2025-03-01T11:59:57.000Z',
    lease_owner: 'w1',
    lease_until: '2025-03-01T12:01:00.000Z',
    provider_id: 'p1',
    model: 'm1',
    ...fields,
  });

/** The statuses a rule accepts: it throws for every other. */
function acceptedBy(rule: (t: TaskRecord) => Change): TaskStatus[] {
  return TASK_STATUSES.filter((s) => {
    try {
      rule(task(s, s === 'running' ? running() : {}));
      return true;
    } catch (err) {
      if (err instanceof TransitionError) return false;
      throw err;
    }
  });
}

const callSession: SessionView = {
  session_id: 's1',
  task_id: '01JNGW8Z5N6X0Y1Z2A3B4C5D6E',
  attempt: 1,
  agent_id: null,
  provider_id: 'p1',
  model: 'm1',
  system: null,
  prompt: 'hi',
  prompt_truncated: false,
  response: 'ok',
  response_truncated: false,
  tokens_in: 10,
  tokens_out: 20,
  cost_usd: 0.5,
  latency_ms: 100,
  started_at: '2025-03-01T11:59:59.000Z',
  finished_at: ISO,
  outcome: 'completed',
  error: null,
};
const usage = { tokensIn: 10, tokensOut: 20, costUsd: 0.5 };
const LEASE = ['lease_owner', 'lease_until'];

describe('transition guards', () => {
  it('every rule accepts only the statuses the transition table allows', () => {
    expect(acceptedBy((t) => enqueue(t, NOW))).toEqual(['pending']);
    expect(acceptedBy((t) => resend(t, NOW))).toEqual(['queued']);
    expect(acceptedBy((t) => claim(t, { now: NOW, leaseUntil: NOW, agentId: null, providerId: 'p1', model: 'm1' }))).toEqual(['pending', 'queued', 'running']);
    expect(acceptedBy((t) => defer(t, { now: NOW, reason: 'quota', nextAttemptAt: NOW, seconds: 1 }))).toEqual(['pending', 'queued', 'running']);
    expect(acceptedBy((t) => complete(t, { now: NOW, output: 'ok', model: 'm1', usage, session: callSession }))).toEqual(['running']);
    expect(acceptedBy((t) => retryOrFail(t, { now: NOW, failure: failure('x', 'x', true), attempt: { kind: 'called', usage, session: callSession } }))).toEqual(['running']);
    expect(acceptedBy((t) => retryOrFail(t, { now: NOW, failure: failure('x', 'x', false), attempt: { kind: 'not_run' } }))).toEqual(['pending', 'queued']);
    expect(acceptedBy((t) => retryOrFail(t, { now: NOW, failure: failure('x', 'x', true), attempt: { kind: 'lost' } }))).toEqual(['running']);
    expect(acceptedBy((t) => interrupt(t, NOW))).toEqual(['running']);
    expect(acceptedBy((t) => deadLetter(t, NOW))).toEqual(['pending', 'queued', 'running']);
    expect(acceptedBy((t) => cancel(t, { now: NOW, reason: 'r' }))).toEqual(['pending', 'queued', 'running']);
    expect(acceptedBy((t) => requeue(t, NOW))).toEqual(['failed', 'cancelled']);
    expect(acceptedBy((t) => edit(t, { now: NOW, changes: { title: 'x' } }))).toEqual(['pending', 'queued']);
  });

  it('a change names the statuses its conditional write expects, each allowed into its new status', () => {
    const changes = [enqueue(task('pending'), NOW), cancel(task('queued'), { now: NOW, reason: 'r' }), requeue(task('failed'), NOW), claim(task('queued'), { now: NOW, leaseUntil: NOW, agentId: null, providerId: 'p', model: null })];
    for (const c of changes) for (const from of c.from) expect(canTransition(from, c.set.status!)).toBe(true);
  });

  it('tells a live lease (nobody else may run the task) from an expired or missing one', () => {
    expect(leaseLive(running(), NOW)).toBe(true);
    expect(leaseLive(running({ lease_until: '2025-03-01T11:00:00.000Z' }), NOW)).toBe(false);
    expect(leaseLive(running({ lease_until: ISO }), NOW)).toBe(false);
    expect(leaseLive(running({ lease_until: undefined }), NOW)).toBe(false);
  });
});

describe('enqueue and resend', () => {
  it('enqueue: pending → queued with a new token, sent at once', () => {
    const c = enqueue(task('pending'), NOW);
    expect(c.set).toMatchObject({ status: 'queued', queued_at: ISO, next_attempt_at: ISO, updated_at: ISO });
    expect(c.send).toEqual({ token: c.set.run_token, delaySeconds: 0 });
    expect(c.counters).toBeUndefined();
  });

  it('resend: keeps the token of the message in the queue, changes only the next attempt', () => {
    const c = resend(task('queued', { run_token: 'tok' }), NOW);
    expect(c.set).toEqual({ next_attempt_at: ISO, run_token: 'tok' });
    expect(c.send).toEqual({ token: 'tok', delaySeconds: 0 });
    expect(resend(task('queued'), NOW).send!.token).toMatch(/^[0-9A-Z]{26}$/);
  });
});

describe('claim', () => {
  it('takes a waiting task under a new lease as one more attempt', () => {
    const leaseUntil = new Date(NOW.getTime() + 120_000);
    const c = claim(task('queued', { attempts: 1, queued_at: STARTED, waiting_reason: 'quota' }), { now: NOW, leaseUntil, agentId: 'a1', providerId: 'p1', model: 'm1' });
    expect(c.set).toMatchObject({
      status: 'running',
      attempts: 2,
      lease_until: leaseUntil.toISOString(),
      agent_id: 'a1',
      provider_id: 'p1',
      model: 'm1',
      started_at: ISO,
      queued_at: STARTED,
      next_attempt_at: null,
      waiting_reason: null,
    });
    expect(c.set.lease_owner).toBeTruthy();
    expect(c.session).toBeUndefined();
    expect(c.send).toBeUndefined();
  });

  it('a takeover records the lost attempt and keeps the first start', () => {
    const c = claim(running({ lease_until: '2025-03-01T11:59:00.000Z' }), { now: NOW, leaseUntil: NOW, agentId: null, providerId: 'p1', model: null });
    expect(c.set).toMatchObject({ attempts: 2, started_at: STARTED });
    expect(c.session).toMatchObject({ outcome: 'lost', attempt: 1, latency_ms: 60_000, error: { code: TASK_ERRORS.workerLost } });
  });
});

describe('defer', () => {
  const input = { now: NOW, reason: 'quota' as const, nextAttemptAt: new Date(NOW.getTime() + 2000_000), seconds: 2000 };

  it('puts the run off with a new token; the message waits at most what the queue allows', () => {
    const c = defer(task('pending'), input);
    expect(c.set).toMatchObject({ status: 'queued', queued_at: ISO, waiting_reason: 'quota', next_attempt_at: input.nextAttemptAt.toISOString() });
    expect(c.send).toEqual({ token: c.set.run_token, delaySeconds: 900 });
    expect(c.remove).toBeUndefined();
  });


  it('a takeover gives up the expired lease and records the lost attempt', () => {
    const c = defer(running(), input);
    expect(c.remove).toEqual(LEASE);
    expect(c.session).toMatchObject({ outcome: 'lost' });
  });
});

describe('complete', () => {
  it('keeps the result, adds the usage and counts the duration', () => {
    const c = complete(running({ tokens_in: 1, tokens_out: 2, cost_usd: 0.1 }), { now: NOW, output: 'done', model: 'm2', usage, session: callSession });
    expect(c.set).toMatchObject({
      status: 'completed',
      result: { output: 'done' },
      error: null,
      model: 'm2',
      tokens_in: 11,
      tokens_out: 22,
      cost_usd: 0.6,
      completed_at: ISO,
      duration_ms: 2000,
    });
    expect(c.remove).toEqual(LEASE);
    expect(c.counters).toEqual({ tokens_in: 10, tokens_out: 20, cost_usd: 0.5, attempts_total: 1, [bucketCounter(bucketIndex(2000))]: 1, duration_count: 1, duration_ms_total: 2000 });
    expect(c.session).toBe(callSession);
    expect(c.send).toBeUndefined();
  });

  it('truncates a result over the item budget', () => {
    const c = complete(running(), { now: NOW, output: 'x'.repeat(RESULT_MAX_BYTES + 10), model: 'm', usage, session: callSession });
    expect(c.set.result).toMatchObject({ output_truncated: true });
  });
});

describe('retryOrFail', () => {
  const half = () => 0.5;

  it('after a call: a retryable failure goes back to the queue with backoff, counting the usage and the retry', () => {
    const c = retryOrFail(running(), { now: NOW, failure: failure('rate_limited', 'slow down', true), attempt: { kind: 'called', usage, session: callSession }, random: half });
    expect(c.set).toMatchObject({ status: 'queued', attempts: 1, error: { code: 'rate_limited', retryable: true }, waiting_reason: 'retry_backoff', tokens_in: 10, next_attempt_at: '2025-03-01T12:00:01.500Z' });
    expect(c.send).toEqual({ token: c.set.run_token, delaySeconds: 2 });
    expect(c.counters).toEqual({ tokens_in: 10, tokens_out: 20, cost_usd: 0.5, attempts_total: 1, attempts_retried: 1 });
    expect(c.session).toMatchObject({ session_id: 's1', outcome: 'retrying', error: { code: 'rate_limited' } });
    expect(c.remove).toEqual(LEASE);
  });

  it('a provider Retry-After is the floor of the backoff', () => {
    const c = retryOrFail(running(), { now: NOW, failure: failure('rate_limited', 'x', true, 30), attempt: { kind: 'called', usage, session: callSession }, random: half });
    expect(c.send!.delaySeconds).toBe(30);
  });

  it('after a call: a final failure ends the task, counting only the usage', () => {
    for (const [t, f] of [
      [running(), failure('bad_request', 'no', false)],
      [running({ attempts: 3 }), failure('rate_limited', 'x', true)],
    ] as const) {
      const c = retryOrFail(t, { now: NOW, failure: f, attempt: { kind: 'called', usage, session: callSession } });
      expect(c.set).toMatchObject({ status: 'failed', completed_at: ISO, duration_ms: 2000, next_attempt_at: null, waiting_reason: null, tokens_out: 20 });
      expect(c.counters).toEqual({ tokens_in: 10, tokens_out: 20, cost_usd: 0.5, attempts_total: 1 });
      expect(c.session).toMatchObject({ outcome: 'failed', error: { code: f.code } });
      expect(c.send).toBeUndefined();
    }
  });

  it('without a call: the attempt counts, and its session records why', () => {
    const retried = retryOrFail(task('queued', { attempts: 1 }), { now: NOW, failure: failure('internal_error', 'x', true), attempt: { kind: 'not_run' }, random: half });
    expect(retried.set).toMatchObject({ status: 'queued', attempts: 2, queued_at: ISO });
    expect(retried.counters).toEqual({ attempts_retried: 1 });
    expect(retried.session).toMatchObject({ attempt: 2, outcome: 'retrying', prompt: '', tokens_in: 0, error: { code: 'internal_error' } });
    expect(retried.send!.delaySeconds).toBe(3); // attempt 2: 4 s, half of it jittered

    const failed = retryOrFail(task('pending'), { now: NOW, failure: failure(TASK_ERRORS.noAgent, 'none', false), attempt: { kind: 'not_run' } });
    expect(failed.set).toMatchObject({ status: 'failed', attempts: 1, duration_ms: null, error: { code: TASK_ERRORS.noAgent } });
    expect(failed.counters).toEqual({});
    expect(failed.session).toMatchObject({ attempt: 1, outcome: 'failed' });
  });

  it('a lost attempt is recorded as lost, and a lost worker’s task comes back at once', () => {
    const c = retryOrFail(running(), { now: NOW, failure: failure(TASK_ERRORS.workerLost, 'gone', true), attempt: { kind: 'lost' } });
    expect(c.set).toMatchObject({ status: 'queued', attempts: 1, next_attempt_at: ISO });
    expect(c.send!.delaySeconds).toBe(0);
    expect(c.session).toMatchObject({ outcome: 'lost', attempt: 1 });
  });
});

describe('interrupt, deadLetter, cancel, requeue, edit', () => {
  it('interrupt: an expired lease retries at once while attempts remain, fails otherwise', () => {
    const retried = interrupt(running(), NOW);
    expect(retried.set).toMatchObject({ status: 'queued', error: { code: TASK_ERRORS.workerLost, retryable: true } });
    expect(retried.send!.delaySeconds).toBe(0);
    const failed = interrupt(running({ attempts: 3 }), NOW);
    expect(failed.set).toMatchObject({ status: 'failed', error: { retryable: false } });
    expect(failed.set.error!.message).toMatch(/no attempts are left$/);
    expect(failed.session).toMatchObject({ outcome: 'lost' });
  });

  it('deadLetter: fails the task for good, dropping any lease', () => {
    const c = deadLetter(running(), NOW);
    expect(c.set).toMatchObject({ status: 'failed', error: { code: TASK_ERRORS.deadLettered, retryable: false }, completed_at: ISO, duration_ms: 2000, next_attempt_at: null });
    expect(c.remove).toEqual(LEASE);
    expect(deadLetter(task('queued'), NOW).set.duration_ms).toBeNull();
    expect(c.session).toBeUndefined();
  });

  it('cancel: records the reason; a running worker notices the status (the lease stays until it does)', () => {
    const c = cancel(running(), { now: NOW, reason: 'no longer needed' });
    expect(c.set).toMatchObject({ status: 'cancelled', cancel_reason: 'no longer needed', error: { code: 'cancelled', message: 'no longer needed', retryable: false }, duration_ms: 2000, waiting_reason: null });
    expect(c.remove).toBeUndefined();
  });

  it('requeue: a fresh set of attempts, nothing of the last run kept', () => {
    const c = requeue(task('cancelled', { attempts: 3, cancel_reason: 'r', error: { code: 'cancelled', message: 'r', retryable: false } }), NOW);
    expect(c.set).toEqual({ status: 'pending', attempts: 0, result: null, error: null, completed_at: null, duration_ms: null, next_attempt_at: ISO, waiting_reason: null, updated_at: ISO });
    expect(c.remove).toEqual(['cancel_reason', ...LEASE]);
  });

  it('edit: changes the given fields of a waiting task', () => {
    const c = edit(task('queued'), { now: NOW, changes: { priority: 9 } });
    expect(c.set).toEqual({ priority: 9, updated_at: ISO });
    expect(c.from).toEqual(['pending', 'queued']);
  });
});
