import type { Deps } from '../platform/runtime.js';
import { logger } from '../platform/logger.js';
import { agentCapacity } from '../agents/service.js';
import { buildPrompt, type TaskPrompt } from './prompts.js';
import { isTerminal } from './status.js';
import { usageDelta } from './stats.js';
import { callSession } from './sessions.js';
import { TaskRepository, type SessionRecord, type TaskRecord } from './repo.js';
import { claim, complete, deadLetter, defer, failure, interrupt, leaseLive, retryOrFail, TASK_ERRORS, toTaskError, type Change } from './transitions.js';
import { place, readRoute, releasePick, type Pick, type RouteReads } from './placement.js';
import { callProvider, LEASE_GRACE_SECONDS, type CallOutcome, type RunOptions } from './provider-call.js';
import { announce, commit, type RunMessage } from './service.js';
import { retryOnConflict, VersionConflictError } from '../platform/store/conflicts.js';
import { holdForRun, keepForRun, recordWait, releaseAfterRun, resourceWaitSeconds, type RunHold } from '../resources/service.js';

/** The instance this process's leases name: the local runtime's id, or the Lambda execution environment. */
export function instanceOf(deps: Deps): string | undefined {
  return deps.instanceId ?? deps.config.lambdaInstance;
}

/** A message that arrives this much before the task's next_attempt_at still runs it. */
const EARLY_TOLERANCE_MS = 1000;

const tasksRepo = (deps: Deps) => new TaskRepository(deps.store);

/** A message sent before the task's latest re-send: another message carries the task now. */
const superseded = (task: TaskRecord, message: RunMessage) => Boolean(message.token && task.run_token && message.token !== task.run_token);

/**
 * Handles one queue message for a task: skips it when it is stale or a duplicate, waits when no agent
 * has quota or a free slot, otherwise claims the task with a lease (a conditional write: of two
 * deliveries only one wins), runs it on the provider and records the outcome.
 */
export async function processRunMessage(deps: Deps, message: RunMessage, options: RunOptions = {}): Promise<void> {
  try {
    // The task may change between our read and our write: then look again.
    await retryOnConflict(() => processOnce(deps, message, options));
    return;
  } catch (err) {
    if (!(err instanceof VersionConflictError)) throw err;
  }
  logger.warn('task kept changing while the worker tried to run it; leaving it to the sweeper', { task_id: message.task_id });
}

/** Steps: check the message is due, route and reserve, claim, call the provider, settle. */
async function processOnce(deps: Deps, message: RunMessage, options: RunOptions): Promise<void> {
  const task = await tasksRepo(deps).get(message.task_id);
  if (!task || isTerminal(task.status) || superseded(task, message)) return;
  const now = deps.clock.now();
  const takeover = task.status === 'running';
  if (await notDue(deps, task, now, message)) return;

  const leaseUntil = new Date(now.getTime() + (task.timeout_seconds + LEASE_GRACE_SECONDS) * 1000);
  // Routing's reads go out meanwhile; they are used only once the resources are held. A failed read
  // is thrown where it is awaited (placeAndRun); one that is never awaited (no resources) is not needed.
  const route = readRoute(deps, task);
  route.catch(() => undefined);
  // The capacity ledger first: the task runs only with its resources held (resources/service.ts).
  const hold = await holdForRun(deps, task, leaseUntil);
  if ('wait' in hold) {
    // Back to the queue; a release wakes it earlier (resources/service.ts, grantWaiting) with this token.
    const seconds = resourceWaitSeconds(task.priority);
    const change = defer(task, { now: deps.clock.now(), reason: 'resources', seconds, nextAttemptAt: new Date(now.getTime() + seconds * 1000) });
    await commit(deps, task, change);
    await recordWait(deps, task, hold.wait, change.send!.token);
    return;
  }
  if ('unknownPools' in hold) {
    const reason = failure(TASK_ERRORS.internal, `the task asks for resource pools that do not exist: ${hold.unknownPools.join(', ')}`, false);
    await commit(deps, task, retryOrFail(task, { now: deps.clock.now(), failure: reason, attempt: { kind: takeover ? 'lost' : 'not_run' } }));
    return;
  }
  // The allocation is one per task, so two deliveries of the task hold the same one: a delivery whose
  // write lost to another (which claimed, deferred or settled the task) leaves it to that one to give back.
  const run: RunState = { claimed: false, held: hold.held };
  let lostRace = false;
  try {
    await placeAndRun(deps, task, takeover, now, leaseUntil, options, run, route);
  } catch (err) {
    lostRace = err instanceof VersionConflictError && !run.claimed;
    throw err;
  } finally {
    if (!lostRace) await releaseAfterRun(deps, run.held);
  }
}

/** What one delivery holds: whether it claimed the task, and the task's allocation as held. */
interface RunState {
  claimed: boolean;
  held: Extract<RunHold, { held: unknown }>['held'];
}

async function placeAndRun(deps: Deps, task: TaskRecord, takeover: boolean, now: Date, leaseUntil: Date, options: RunOptions, run: RunState, route: Promise<RouteReads>): Promise<void> {
  const prompt = buildPrompt(task.type, task.payload);
  const placement = await place(deps, task, prompt, now, leaseUntil, await route);
  if ('failure' in placement) {
    await commit(deps, task, retryOrFail(task, { now: deps.clock.now(), failure: placement.failure, attempt: { kind: takeover ? 'lost' : 'not_run' } }));
    return;
  }
  if ('wait' in placement) {
    const { reason, seconds } = placement.wait;
    await commit(deps, task, defer(task, { now: deps.clock.now(), reason, seconds, nextAttemptAt: new Date(now.getTime() + seconds * 1000) }));
    return;
  }
  const running = await claimAttempt(deps, task, placement.pick, leaseUntil);
  run.claimed = true;
  run.held = await keepForRun(deps, run.held, leaseUntil);
  await execute(deps, running, placement.pick, prompt, options);
}

/**
 * Handles a message that may not run the task now: a duplicate while a live worker holds it, a takeover
 * with no attempts left, or an early arrival (SQS delays at most 900 s: a longer wait comes back early
 * and is sent on for the rest). Answers true when the message is done with.
 */
async function notDue(deps: Deps, task: TaskRecord, now: Date, message: RunMessage): Promise<boolean> {
  if (task.status === 'running') {
    if (leaseLive(task, now)) return true; // a live worker has it: a duplicate delivery
    if (task.attempts < task.max_attempts) return false;
    const reason = failure(TASK_ERRORS.workerLost, `the worker running attempt ${task.attempts} stopped answering and no attempts are left`, false);
    await commit(deps, task, retryOrFail(task, { now: deps.clock.now(), failure: reason, attempt: { kind: 'lost' } }));
    return true;
  }
  if (!task.next_attempt_at || Date.parse(task.next_attempt_at) <= now.getTime() + EARLY_TOLERANCE_MS) return false;
  // Woken because resources freed (with the token it waits under): it tries now.
  if (message.wake && task.status === 'queued' && task.waiting_reason === 'resources') return false;
  const nextAttemptAt = new Date(task.next_attempt_at);
  const seconds = (nextAttemptAt.getTime() - now.getTime()) / 1000;
  await commit(deps, task, defer(task, { now: deps.clock.now(), reason: task.waiting_reason ?? 'retry_backoff', seconds, nextAttemptAt }));
  return true;
}

/** Claims the task for the picked agent and provider; a lost race gives back what the pick held. */
async function claimAttempt(deps: Deps, task: TaskRecord, pick: Pick, leaseUntil: Date): Promise<TaskRecord> {
  const { agent, provider } = pick.candidate;
  const change = claim(task, { now: deps.clock.now(), leaseUntil, agentId: agent?.agent_id ?? null, providerId: provider.provider_id, model: agent?.model ?? provider.model, instanceId: instanceOf(deps) });
  let running: TaskRecord;
  try {
    running = await tasksRepo(deps).apply(task, change);
  } catch (err) {
    await releasePick(deps, task.task_id, pick, 0, false);
    throw err;
  }
  await announce(deps, running, change);
  return running;
}

/** Runs the claimed attempt on the provider, gives back what the pick held and records the session and outcome. */
async function execute(deps: Deps, task: TaskRecord, pick: Pick, prompt: TaskPrompt, options: RunOptions): Promise<void> {
  const call = await callProvider(deps, task, pick, prompt, options);
  const agent = pick.candidate.agent;
  // Independent writes, side by side; all done before the outcome is stored, since a step waiting on
  // this task may start the next one at once, on the agent whose slot this gives back.
  await Promise.all([
    call.recorded,
    releasePick(deps, task.task_id, pick, call.usage.tokensIn + call.usage.tokensOut, call.requestMade),
    agent ? agentCapacity(deps).touch(agent.agent_id, call.startedAt.toISOString()) : undefined,
  ]);
  const finishedAt = deps.clock.now();
  const session = callSession(task, prompt, {
    agentId: agent?.agent_id ?? null,
    providerId: pick.candidate.provider.provider_id,
    model: call.result?.model ?? call.model,
    output: call.result?.output,
    tokensIn: call.usage.tokensIn,
    tokensOut: call.usage.tokensOut,
    costUsd: call.usage.costUsd,
    latencyMs: call.latencyMs,
    startedAt: call.startedAt,
    finishedAt,
  });
  await settle(deps, task, call, session, finishedAt);
}

/**
 * running → completed, or back to the queue / failed. A task cancelled (or otherwise changed) while the
 * provider was working keeps its status: the attempt still happened, so its usage and session are recorded.
 */
async function settle(deps: Deps, task: TaskRecord, call: CallOutcome, session: SessionRecord, now: Date): Promise<void> {
  if (call.interrupted) {
    // The runtime is stopping: the attempt goes back to the queue at once, recorded as interrupted.
    try {
      await commit(deps, task, interrupt(task, now, 'shutdown'));
      return;
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
    }
  }
  if (!call.cancelled && !call.interrupted) {
    const { result, usage } = call;
    const change: Change =
      result && !call.fault
        ? complete(task, { now, output: result.output, model: result.model, usage, session })
        : retryOrFail(task, { now, failure: call.fault ?? failure(TASK_ERRORS.internal, 'The provider returned no result', true), attempt: { kind: 'called', usage, session } });
    try {
      await commit(deps, task, change);
      return;
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
    }
  }
  const current = await tasksRepo(deps).get(task.task_id);
  const outcome = current?.status === 'cancelled' ? 'cancelled' : 'lost';
  const error =
    outcome === 'cancelled' ? { code: TASK_ERRORS.cancelled, message: current?.cancel_reason ?? 'the task was cancelled during the call', retryable: false } : call.fault ? toTaskError(call.fault) : null;
  const { tokensIn, tokensOut, costUsd } = call.usage;
  await tasksRepo(deps).recordAttemptUsage(task.task_id, { tokens_in: tokensIn, tokens_out: tokensOut, cost_usd: costUsd }, usageDelta(call.usage), { ...session, outcome, error });
}

/**
 * A running task whose lease expired: its worker died (or lost its connection to the table). The lost
 * attempt is recorded; the task goes back to the queue while attempts remain, and fails otherwise.
 */
export async function recoverExpiredLease(deps: Deps, task: TaskRecord): Promise<void> {
  const now = deps.clock.now();
  if (task.status !== 'running' || !task.lease_until || leaseLive(task, now)) return;
  await commit(deps, task, interrupt(task, deps.clock.now()));
}

/** A task whose queue message went to the dead-letter queue: the worker could not process it, so it fails. */
export async function failDeadLettered(deps: Deps, message: RunMessage): Promise<'failed' | 'ignored'> {
  try {
    return await retryOnConflict(async () => {
      const task = await tasksRepo(deps).get(message.task_id);
      if (!task || isTerminal(task.status) || superseded(task, message)) return 'ignored' as const;
      if (task.status === 'running' && leaseLive(task, deps.clock.now())) return 'ignored' as const;
      await commit(deps, task, deadLetter(task, deps.clock.now()));
      return 'failed' as const;
    });
  } catch (err) {
    if (!(err instanceof VersionConflictError)) throw err;
    return 'ignored';
  }
}
