import { newUlid } from '../platform/ids.js';
import type { TaskError } from './model.js';
import type { TaskStatus } from './status.js';
import type { SessionRecord, TaskRecord, TaskWrite } from './repo.js';
import { extractResult, truncateUtf8 } from './extract.js';
import { durationDelta, mergeDeltas, usageDelta, type AttemptUsage } from './stats.js';
import { lostSession, sessionWithoutCall } from './sessions.js';

/**
 * The task state machine: which status may follow which, how a failed attempt is classified and
 * retried. Every transition is a conditional write on the task as it was read.
 *
 * pending: stored, not yet handed to the queue; queued: a message is (or will be, after a delay) on the
 * queue; running: a worker holds its lease; completed / failed / cancelled: terminal until a manual retry.
 * running → queued is a retry after a retryable error (never `failed` mid-retry); running → running is
 * a worker taking over a task whose previous worker's lease expired.
 *
 * The rules below are pure: each takes the task as read (plus the time and the attempt's facts) and
 * answers a Change; the runner, service and sweeper apply it with one conditional write, then publish
 * and send what it lists.
 */
export const TRANSITIONS: Record<TaskStatus, readonly TaskStatus[]> = {
  pending: ['queued', 'running', 'cancelled', 'failed'],
  queued: ['running', 'cancelled', 'failed', 'queued'],
  running: ['completed', 'failed', 'queued', 'cancelled', 'running'],
  completed: [],
  failed: ['pending'],
  cancelled: ['pending'],
};

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export const canCancel = (s: TaskStatus) => canTransition(s, 'cancelled');
export const canRetry = (s: TaskStatus) => canTransition(s, 'pending');

// ---------------------------------------------------------------- failures

/** An attempt's failure, classified: retryable ones go back to the queue, the others fail the task at once. */
export interface AttemptFailure extends TaskError {
  retryAfterSeconds?: number;
}

/** Errors the execution path raises itself (not a provider's answer). */
export const TASK_ERRORS = {
  costLimit: 'cost_limit_exceeded',
  noAgent: 'no_agent',
  agentDisabled: 'agent_disabled',
  providerUnavailable: 'provider_unavailable',
  workerLost: 'worker_lost',
  interrupted: 'interrupted',
  deadLettered: 'dead_lettered',
  cancelled: 'cancelled',
  internal: 'internal_error',
} as const;

export function failure(code: string, message: string, retryable: boolean, retryAfterSeconds?: number): AttemptFailure {
  return { code, message, retryable, ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) };
}

export const toTaskError = (f: AttemptFailure): TaskError => ({ code: f.code, message: f.message, retryable: f.retryable });

// ---------------------------------------------------------------- timing

/**
 * Retry timing. Exponential backoff with "equal jitter" (half fixed, half random), so that tasks that
 * failed together (a provider's 429 burst) do not come back together; a provider's Retry-After is a
 * floor. SQS cannot delay a message longer than 900 s, which caps every single wait.
 */
export const BACKOFF_BASE_SECONDS = 2;
export const BACKOFF_CAP_SECONDS = 300;
export const MAX_QUEUE_DELAY_SECONDS = 900;

export function backoffSeconds(attempt: number, random: () => number = Math.random, retryAfterSeconds?: number): number {
  const exponential = Math.min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** Math.max(0, attempt - 1));
  const jittered = exponential / 2 + random() * (exponential / 2);
  return Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(retryAfterSeconds ?? 0, jittered));
}

/**
 * Delay before trying again when every agent is busy (concurrency), out of quota, or its provider's
 * circuit is open. A quota wait ends when the window resets, a provider wait when the breaker lets a
 * trial call through; higher-priority tasks come back first (priority 10 at once, 1 last), spread
 * by jitter so a reset does not start a stampede.
 */
export function waitSeconds(reason: 'quota' | 'concurrency' | 'provider', priority: number, untilMs: number | undefined, nowMs: number, random: () => number = Math.random): number {
  const priorityOffset = (10 - priority) * 0.5;
  if (reason !== 'concurrency' && untilMs !== undefined) {
    return Math.max(0, (untilMs - nowMs) / 1000) + priorityOffset + random() * 2;
  }
  return 1 + priorityOffset / 2 + random() * 2;
}

/** The part of a wait one queue message can cover; the worker sends the rest again when it arrives early. */
export function queueDelay(seconds: number): number {
  return Math.max(0, Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil(seconds)));
}

// ---------------------------------------------------------------- changes

/** A state change: the write (on the condition that the task is still the version read, in one of `from`) and what follows it. */
export interface Change extends TaskWrite {
  from: readonly TaskStatus[];
  /** The run message sent after the write (its token is the task's new run_token). */
  send?: { token: string; delaySeconds: number };
}

/** A rule was asked for a transition its status does not allow: a bug in the caller, which checks first. */
export class TransitionError extends Error {
  constructor(rule: string, status: TaskStatus) {
    super(`${rule} is not allowed for a ${status} task`);
  }
}

function allowed(rule: string, task: TaskRecord, from: readonly TaskStatus[], to: TaskStatus): readonly TaskStatus[] {
  if (!from.includes(task.status) || !canTransition(task.status, to)) throw new TransitionError(rule, task.status);
  return from;
}

const LEASE: (keyof TaskRecord)[] = ['lease_owner', 'lease_until'];

/** Sizes kept in the task item, inside DynamoDB's 400 KB item limit. */
export const RESULT_MAX_BYTES = 100_000;

/** A worker holds the task under a lease that has not run out: nobody else may run it. */
export function leaseLive(task: TaskRecord, now: Date): boolean {
  return Boolean(task.lease_until && task.lease_until > now.toISOString());
}

/**
 * A lease's owner: the instance that holds it, then a fresh id for this claim (`<instance>/<ulid>`), so
 * that a restarted local runtime can tell the leases of its dead predecessor from live ones.
 */
export function leaseOwner(instanceId: string | undefined): string {
  return instanceId ? `${instanceId}/${newUlid()}` : newUlid();
}

/** The instance a lease owner names (undefined for an owner without one). */
export function leaseInstance(owner: string | undefined): string | undefined {
  const at = owner?.lastIndexOf('/') ?? -1;
  return at > 0 ? owner!.slice(0, at) : undefined;
}

/** Milliseconds since the task first started, or null when it never did. */
function sinceStart(task: TaskRecord, now: Date, fallback?: string): number | null {
  const started = task.started_at ?? fallback;
  return started ? now.getTime() - Date.parse(started) : null;
}

const round8 = (v: number) => Math.round(v * 1e8) / 1e8;

/** The task's running totals after an attempt's usage. */
function addUsage(task: TaskRecord, u: AttemptUsage): Pick<TaskRecord, 'tokens_in' | 'tokens_out' | 'cost_usd'> {
  return { tokens_in: task.tokens_in + u.tokensIn, tokens_out: task.tokens_out + u.tokensOut, cost_usd: round8(task.cost_usd + u.costUsd) };
}

// ---------------------------------------------------------------- rules

/** pending → queued, with a fresh run token and its message. */
export function enqueue(task: TaskRecord, now: Date): Change {
  const nowIso = now.toISOString();
  const token = newUlid();
  return {
    from: allowed('enqueue', task, ['pending'], 'queued'),
    set: { status: 'queued', queued_at: nowIso, updated_at: nowIso, next_attempt_at: nowIso, run_token: token },
    send: { token, delaySeconds: 0 },
  };
}

/** A queued task whose message should long have arrived: the message is sent again with the same token (the one in the queue, if any, stays valid). */
export function resend(task: TaskRecord, now: Date): Change {
  const token = task.run_token ?? newUlid();
  return { from: allowed('resend', task, ['queued'], 'queued'), set: { next_attempt_at: now.toISOString(), run_token: token }, send: { token, delaySeconds: 0 } };
}

/**
 * pending/queued (or running with an expired lease: the caller checks it) → running, under a new lease, as one more attempt
 * on the chosen agent and provider. A takeover records the lost attempt of the previous worker.
 */
export function claim(task: TaskRecord, input: { now: Date; leaseUntil: Date; agentId: string | null; providerId: string; model: string | null; instanceId?: string }): Change {
  const nowIso = input.now.toISOString();
  const takeover = task.status === 'running';
  return {
    from: allowed('claim', task, ['pending', 'queued', 'running'], 'running'),
    set: {
      status: 'running',
      attempts: task.attempts + 1,
      lease_owner: leaseOwner(input.instanceId),
      lease_until: input.leaseUntil.toISOString(),
      agent_id: input.agentId,
      provider_id: input.providerId,
      model: input.model,
      started_at: task.started_at ?? nowIso,
      queued_at: task.queued_at ?? nowIso,
      updated_at: nowIso,
      next_attempt_at: null,
      waiting_reason: null,
    },
    session: takeover ? lostSession(task, nowIso) : undefined,
  };
}

/**
 * Puts the run off (quota, busy slots, an open circuit, an early message) until `nextAttemptAt`, with a
 * fresh token and a message delayed by `seconds` (at most what the queue allows). Announced only when
 * the status or the reason changes. A takeover gives up the expired lease and records the lost attempt.
 */
export function defer(task: TaskRecord, input: { now: Date; reason: NonNullable<TaskRecord['waiting_reason']>; nextAttemptAt: Date; seconds: number }): Change {
  const nowIso = input.now.toISOString();
  const token = newUlid();
  const takeover = task.status === 'running';
  return {
    from: allowed('defer', task, ['pending', 'queued', 'running'], 'queued'),
    set: {
      status: 'queued',
      queued_at: task.queued_at ?? nowIso,
      next_attempt_at: input.nextAttemptAt.toISOString(),
      waiting_reason: input.reason,
      run_token: token,
      updated_at: nowIso,
    },
    ...(takeover ? { remove: LEASE, session: lostSession(task, nowIso) } : {}),
    send: { token, delaySeconds: queueDelay(input.seconds) },
  };
}

/** running → completed: the provider's answer becomes the result; the usage and the duration are counted. */
export function complete(task: TaskRecord, input: { now: Date; output: string; model: string; usage: AttemptUsage; session: SessionRecord }): Change {
  const nowIso = input.now.toISOString();
  const output = truncateUtf8(input.output, RESULT_MAX_BYTES);
  const durationMs = sinceStart(task, input.now, input.session.started_at)!;
  return {
    from: allowed('complete', task, ['running'], 'completed'),
    set: {
      status: 'completed',
      result: { output: output.text, ...(output.truncated ? { output_truncated: true } : {}), ...extractResult(task.type, input.output) },
      error: null,
      model: input.model,
      ...addUsage(task, input.usage),
      completed_at: nowIso,
      duration_ms: durationMs,
      updated_at: nowIso,
    },
    remove: LEASE,
    counters: mergeDeltas(usageDelta(input.usage), durationDelta(durationMs)),
    session: input.session,
  };
}

/**
 * How an attempt ended without a result:
 * - `called`: the running attempt reached a provider (its usage and session are counted and stored);
 * - `not_run`: the task never reached a provider (no agent, cost limit, provider gone): that uses one more attempt;
 * - `lost`: the running attempt's worker died; the lost attempt is recorded.
 */
export type FailedAttempt = { kind: 'called'; usage: AttemptUsage; session: SessionRecord } | { kind: 'not_run' } | { kind: 'lost' };

/**
 * A failed attempt goes back to the queue with backoff (a lost worker's task at once) while it is
 * retryable and attempts remain; otherwise the task fails.
 */
export function retryOrFail(task: TaskRecord, input: { now: Date; failure: AttemptFailure; attempt: FailedAttempt; random?: () => number }): Change {
  const { now, failure: f, attempt: how } = input;
  const nowIso = now.toISOString();
  const error = toTaskError(f);
  const attempt = how.kind === 'not_run' ? task.attempts + 1 : task.attempts;
  const retry = f.retryable && attempt < task.max_attempts;
  const from = allowed('retryOrFail', task, how.kind === 'not_run' ? ['pending', 'queued'] : ['running'], retry ? 'queued' : 'failed');
  const usage = how.kind === 'called' ? usageDelta(how.usage) : {};
  const base =
    how.kind === 'called'
      ? { ...how.session, error }
      : how.kind === 'not_run'
        ? sessionWithoutCall(task, nowIso, { attempt, model: null, latency_ms: 0, outcome: 'failed', error })
        : undefined;
  const session = (outcome: 'retrying' | 'failed'): SessionRecord => (base ? { ...base, outcome } : lostSession(task, nowIso));
  const common = { attempts: attempt, error, ...(how.kind === 'called' ? addUsage(task, how.usage) : {}), updated_at: nowIso };
  if (retry) {
    const delay = how.kind !== 'called' && (f.code === TASK_ERRORS.workerLost || f.code === TASK_ERRORS.interrupted) ? 0 : backoffSeconds(attempt, input.random, f.retryAfterSeconds);
    const token = newUlid();
    return {
      from,
      set: {
        status: 'queued',
        ...common,
        next_attempt_at: new Date(now.getTime() + delay * 1000).toISOString(),
        waiting_reason: 'retry_backoff',
        queued_at: task.queued_at ?? nowIso,
        run_token: token,
      },
      remove: LEASE,
      counters: mergeDeltas(usage, { attempts_retried: 1 }),
      session: session('retrying'),
      send: { token, delaySeconds: queueDelay(delay) },
    };
  }
  return {
    from,
    set: {
      status: 'failed',
      ...common,
      completed_at: nowIso,
      duration_ms: sinceStart(task, now, how.kind === 'called' ? how.session.started_at : undefined),
      next_attempt_at: null,
      waiting_reason: null,
    },
    remove: LEASE,
    counters: usage,
    session: session('failed'),
  };
}

/**
 * A running task whose lease expired: its worker died (or lost its connection to the table). The lost
 * attempt is recorded; the task goes back to the queue at once while attempts remain, and fails otherwise.
 * `shutdown` (the runtime stopping handed the attempt back) and `instance_gone` (a restarted local
 * runtime found its predecessor's lease) record the attempt as `interrupted` instead of `lost`.
 */
export function interrupt(task: TaskRecord, now: Date, how: 'lease_expired' | 'instance_gone' | 'shutdown' = 'lease_expired'): Change {
  const message =
    how === 'shutdown'
      ? `attempt ${task.attempts} was interrupted: the runtime running it was stopping and handed it back`
      : how === 'instance_gone'
        ? `attempt ${task.attempts} was interrupted: the runtime running it stopped (found at the next start)`
        : `the worker running attempt ${task.attempts} stopped answering before its lease expired`;
  const left = task.attempts < task.max_attempts;
  const code = how === 'lease_expired' ? TASK_ERRORS.workerLost : TASK_ERRORS.interrupted;
  const reason = failure(code, left ? message : `${message}; no attempts are left`, left);
  const change = retryOrFail(task, { now, failure: reason, attempt: { kind: 'lost' } });
  // Handed back (or found dead at a restart) rather than timed out: the attempt is recorded as interrupted.
  if (how !== 'lease_expired' && change.session) change.session = { ...change.session, outcome: 'interrupted', latency_ms: 0, error: toTaskError(reason) };
  return change;
}

/** A task whose queue message went to the dead-letter queue: the worker could not process it, so it fails. */
export function deadLetter(task: TaskRecord, now: Date): Change {
  const nowIso = now.toISOString();
  const reason = failure(TASK_ERRORS.deadLettered, "the worker failed to process this task's queue message repeatedly, so the queue moved it to the dead-letter queue", false);
  return {
    from: allowed('deadLetter', task, ['pending', 'queued', 'running'], 'failed'),
    set: { status: 'failed', error: toTaskError(reason), completed_at: nowIso, duration_ms: sinceStart(task, now), next_attempt_at: null, waiting_reason: null, updated_at: nowIso },
    remove: LEASE,
  };
}

/** pending/queued/running → cancelled. A running task's worker sees the status and aborts its provider call. */
export function cancel(task: TaskRecord, input: { now: Date; reason: string }): Change {
  const nowIso = input.now.toISOString();
  return {
    from: allowed('cancel', task, ['pending', 'queued', 'running'], 'cancelled'),
    set: {
      status: 'cancelled',
      cancel_reason: input.reason,
      error: { code: TASK_ERRORS.cancelled, message: input.reason, retryable: false },
      completed_at: nowIso,
      updated_at: nowIso,
      duration_ms: sinceStart(task, input.now),
      next_attempt_at: null,
      waiting_reason: null,
    },
  };
}

/** failed/cancelled → pending with a fresh set of attempts (then enqueued like a new task). */
export function requeue(task: TaskRecord, now: Date): Change {
  const nowIso = now.toISOString();
  return {
    from: allowed('requeue', task, ['failed', 'cancelled'], 'pending'),
    set: { status: 'pending', attempts: 0, result: null, error: null, completed_at: null, duration_ms: null, next_attempt_at: nowIso, waiting_reason: null, updated_at: nowIso },
    remove: ['cancel_reason', 'lease_owner', 'lease_until'],
  };
}

/** Title, priority and tags of a task that has not started; the status stays. */
export function edit(task: TaskRecord, input: { now: Date; changes: Partial<Pick<TaskRecord, 'title' | 'priority' | 'tags'>> }): Change {
  if (task.status !== 'pending' && task.status !== 'queued') throw new TransitionError('edit', task.status);
  return { from: ['pending', 'queued'], set: { ...input.changes, updated_at: input.now.toISOString() } };
}
