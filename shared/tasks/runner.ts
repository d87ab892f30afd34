import { performance } from 'node:perf_hooks';
import { monotonicFactory, ulid } from 'ulid';
import type { Deps } from '../platform/runtime.js';
import { logger } from '../platform/logger.js';
import { publish } from '../realtime/publisher.js';
import { costUsd, type LlmResult, type ProviderRecord } from '../providers/types.js';
import { buildPrompt, estimateTokens, tokensForChars, type TaskPrompt } from './prompts.js';
import { extractResult, truncateUtf8 } from './extract.js';
import { backoffSeconds, queueDelay, waitSeconds } from './retry.js';
import { classify, failure, TASK_ERRORS, toTaskError, type AttemptFailure } from './errors.js';
import { routeTask, type RouteCandidate } from './routing.js';
import { isTerminal } from './status.js';
import { durationDelta, mergeDeltas, usageDelta } from './stats.js';
import type { SessionView } from './model.js';
import { windowOf } from '../agents/quota.js';
import { StaleTaskError, TaskRepository, type Change, type TaskRecord } from './repo.js';
import { AgentRepository, type AgentRecord, type QuotaReservation } from '../agents/repo.js';
import { eligibleProviders, getProvider, isCircuitOpen, providerClient, recordProviderCall } from '../providers/service.js';
import { ProviderRepository } from '../providers/repo.js';
import { DEFAULT_CIRCUIT_POLICY, retryAt } from '../providers/circuit-breaker.js';
import { publishTask, sendRun, type RunMessage } from './service.js';

/** A lease outlives the task's timeout by this much: time to record the session and the outcome. */
export const LEASE_GRACE_SECONDS = 60;
/** How often a running task's status is read to notice a cancellation (the canceller cannot reach this process). */
export const CANCEL_POLL_MS = 1000;
/** Streamed output is sent to subscribers in pieces at most this often. */
const OUTPUT_FLUSH_MS = 100;
/** Output cap when neither the payload nor the cost limit sets one. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;
/** A message that arrives this much before the task's next_attempt_at still runs it. */
const EARLY_TOLERANCE_MS = 1000;
/** Sizes kept in the task item and in sessions, inside DynamoDB's 400 KB item limit. */
const RESULT_MAX_BYTES = 100_000;
const SESSION_PROMPT_MAX_BYTES = 150_000;
const SESSION_RESPONSE_MAX_BYTES = 120_000;
/** Re-reads of a task that changed between the read and the conditional write. */
const STALE_RETRIES = 5;

export interface RunOptions {
  /** Milliseconds left in the Lambda invocation; provider calls end before it does. */
  remainingMs?: () => number;
}

interface Budget {
  inputTokens: number;
  maxOutputTokens: number;
  inputCostUsd: number;
}

interface Pick {
  candidate: RouteCandidate;
  reservation?: QuotaReservation;
  slots: { group: string; slot: number; lease: string }[];
  budget: Budget;
}

type PickOutcome = { pick: Pick } | { wait: 'quota' | 'concurrency'; untilMs?: number } | { failure: AttemptFailure };

const tasksRepo = (deps: Deps) => new TaskRepository(deps.store);
/** Session ids sort in the order this process made them, even within one millisecond (a lost attempt, then its successor). */
const nextSessionId = monotonicFactory();
const agentsRepo = (deps: Deps) => new AgentRepository(deps.store);

/**
 * Handles one queue message for a task: skips it when it is stale or a duplicate, waits when no agent
 * has quota or a free slot, otherwise claims the task with a lease (a conditional write: of two
 * deliveries only one wins), runs it on the provider and records the outcome.
 */
export async function processRunMessage(deps: Deps, message: RunMessage, options: RunOptions = {}): Promise<void> {
  for (let round = 0; round < STALE_RETRIES; round++) {
    try {
      await processOnce(deps, message, options);
      return;
    } catch (err) {
      if (!(err instanceof StaleTaskError)) throw err;
      // The task changed between our read and our write: look again.
    }
  }
  logger.warn('task kept changing while the worker tried to run it; leaving it to the sweeper', { task_id: message.task_id });
}

async function processOnce(deps: Deps, message: RunMessage, options: RunOptions): Promise<void> {
  const task = await tasksRepo(deps).get(message.task_id);
  if (!task || isTerminal(task.status)) return;
  if (message.token && task.run_token && message.token !== task.run_token) return;
  const now = deps.clock.now();
  const takeover = task.status === 'running';
  if (takeover) {
    if (task.lease_until && task.lease_until > now.toISOString()) return; // a live worker has it: a duplicate delivery
    if (task.attempts >= task.max_attempts) {
      await finishWithoutRun(deps, task, failure(TASK_ERRORS.workerLost, `the worker running attempt ${task.attempts} stopped answering and no attempts are left`, false), { lostAttempt: true });
      return;
    }
  } else if (task.next_attempt_at && Date.parse(task.next_attempt_at) > now.getTime() + EARLY_TOLERANCE_MS) {
    // SQS delays at most 900 s: a longer wait comes back early and is sent on for the rest.
    await deferRun(deps, task, (Date.parse(task.next_attempt_at) - now.getTime()) / 1000, task.waiting_reason ?? 'retry_backoff', new Date(task.next_attempt_at));
    return;
  }

  const prompt = buildPrompt(task.type, task.payload);
  const scope = await providerScope(deps, task);
  if ('failure' in scope) {
    await finishWithoutRun(deps, task, scope.failure, { lostAttempt: takeover });
    return;
  }
  if ('waitUntilMs' in scope) {
    const seconds = waitSeconds('provider', task.priority, scope.waitUntilMs, now.getTime());
    await deferRun(deps, task, seconds, 'provider_unavailable', new Date(now.getTime() + seconds * 1000));
    return;
  }
  const routing = routeTask({
    task,
    agents: await agentsRepo(deps).list(),
    eligible: scope.eligible,
    usage: new Map(),
    defaultProviderId: deps.config.defaultProviderId,
  });
  if ('failure' in routing) {
    await finishWithoutRun(deps, task, routing.failure, { lostAttempt: takeover });
    return;
  }
  const candidates = await withUsageOrder(deps, routing.candidates);
  const leaseUntil = new Date(now.getTime() + (task.timeout_seconds + LEASE_GRACE_SECONDS) * 1000);
  const outcome = await pickCandidate(deps, task, candidates, prompt, leaseUntil);
  if ('failure' in outcome) {
    await finishWithoutRun(deps, task, outcome.failure, { lostAttempt: takeover });
    return;
  }
  if ('wait' in outcome) {
    const seconds = waitSeconds(outcome.wait, task.priority, outcome.untilMs, now.getTime());
    await deferRun(deps, task, seconds, outcome.wait, new Date(now.getTime() + seconds * 1000));
    return;
  }

  const { pick } = outcome;
  let running: TaskRecord;
  try {
    running = await claim(deps, task, pick, leaseUntil, takeover);
  } catch (err) {
    await releasePick(deps, task.task_id, pick, 0, false);
    throw err;
  }
  await publishTask(deps, 'task.updated', running);
  await execute(deps, running, pick, prompt, options);
}

type ProviderScope = { eligible: ProviderRecord[] } | { failure: AttemptFailure } | { waitUntilMs: number };

/**
 * Providers the task may use: the one it names (directly or through its agent), or every eligible one.
 * A named provider that is gone or disabled fails the task; one whose circuit is open makes it wait
 * (without using an attempt) until the breaker lets a trial call through.
 */
async function providerScope(deps: Deps, task: TaskRecord): Promise<ProviderScope> {
  const now = deps.clock.now().getTime();
  let named = task.provider_id;
  if (!named && task.agent_id) {
    const agent = await agentsRepo(deps).get(task.agent_id);
    if (!agent) return { failure: failure(TASK_ERRORS.noAgent, `agent ${task.agent_id} no longer exists`, false) };
    named = agent.provider_id;
  }
  if (!named) {
    const eligible = await eligibleProviders(deps);
    if (eligible.length) return { eligible };
    const enabled = (await new ProviderRepository(deps.store).all()).filter((p) => p.enabled);
    if (!enabled.length) return { failure: failure(TASK_ERRORS.providerUnavailable, 'no provider is registered and enabled', false) };
    return { waitUntilMs: now + DEFAULT_CIRCUIT_POLICY.cooldownSeconds * 1000 };
  }
  const provider = await getProvider(deps, named);
  if (!provider) return { failure: failure(TASK_ERRORS.providerUnavailable, `provider ${named} is not registered`, false) };
  if (!provider.enabled) return { failure: failure(TASK_ERRORS.providerUnavailable, `provider ${named} is disabled`, false) };
  if (await isCircuitOpen(deps, named)) {
    const until = retryAt(await new ProviderRepository(deps.store).circuit(named), DEFAULT_CIRCUIT_POLICY);
    return { waitUntilMs: Math.max(now, until?.getTime() ?? now + DEFAULT_CIRCUIT_POLICY.cooldownSeconds * 1000) };
  }
  return { eligible: [provider] };
}

/** Agents of one provider are reordered by their current window's usage (most headroom first). */
async function withUsageOrder(deps: Deps, candidates: RouteCandidate[]): Promise<RouteCandidate[]> {
  const agents = candidates.map((c) => c.agent).filter((a): a is AgentRecord => a !== null);
  if (agents.length < 2) return candidates;
  const usage = await agentsRepo(deps).usage(agents, deps.clock.now());
  const headroom = (a: AgentRecord) => {
    const u = usage.get(a.agent_id)!;
    return Math.min(a.quota.max_requests === null ? 1 : 1 - u.requests / a.quota.max_requests, a.quota.max_tokens === null ? 1 : 1 - u.tokens / a.quota.max_tokens);
  };
  const providerOrder = new Map<string, number>();
  candidates.forEach((c, i) => providerOrder.set(c.provider.provider_id, Math.min(providerOrder.get(c.provider.provider_id) ?? i, i)));
  return [...candidates].sort((a, b) => {
    const byProvider = providerOrder.get(a.provider.provider_id)! - providerOrder.get(b.provider.provider_id)!;
    if (byProvider !== 0 || !a.agent || !b.agent) return byProvider;
    return b.agent.priority - a.agent.priority || headroom(b.agent) - headroom(a.agent);
  });
}

/** What a call on this provider may use: the output cap follows from max_cost_usd when the task has one. */
function budgetFor(task: TaskRecord, prompt: TaskPrompt, provider: ProviderRecord): Budget | AttemptFailure {
  const inputTokens = estimateTokens(`${prompt.system}\n${prompt.prompt}`);
  const inputCostUsd = costUsd(provider.pricing, inputTokens, 0);
  let maxOutputTokens = prompt.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
  if (task.max_cost_usd !== null) {
    if (inputCostUsd >= task.max_cost_usd) {
      return failure(TASK_ERRORS.costLimit, `the prompt alone is estimated at $${inputCostUsd} on ${provider.provider_id}, over max_cost_usd $${task.max_cost_usd}`, false);
    }
    const perOutputToken = provider.pricing.output_per_million / 1_000_000;
    if (perOutputToken > 0) maxOutputTokens = Math.min(maxOutputTokens, Math.floor((task.max_cost_usd - inputCostUsd) / perOutputToken));
    if (maxOutputTokens < 1) return failure(TASK_ERRORS.costLimit, `max_cost_usd $${task.max_cost_usd} leaves no room for output on ${provider.provider_id}`, false);
  }
  return { inputTokens, maxOutputTokens, inputCostUsd };
}

/**
 * The first candidate with room: the batch's concurrency slot, then the agent's quota (reserved
 * atomically), then the agent's concurrency slot. Answers a wait (until the earliest window reset, or a
 * short one for busy slots) when none has room.
 */
async function pickCandidate(deps: Deps, task: TaskRecord, candidates: RouteCandidate[], prompt: TaskPrompt, leaseUntil: Date): Promise<PickOutcome> {
  const agents = agentsRepo(deps);
  const now = deps.clock.now();
  const lease = leaseUntil.toISOString();
  const slots: { group: string; slot: number; lease: string }[] = [];
  if (task.concurrency_group && task.concurrency_limit) {
    const slot = await agents.acquireSlot(task.concurrency_group, task.concurrency_limit, task.task_id, leaseUntil, now);
    if (slot === undefined) return { wait: 'concurrency' };
    slots.push({ group: task.concurrency_group, slot, lease });
  }
  let earliestReset: number | undefined;
  let busy = false;
  let costFailure: AttemptFailure | undefined;
  for (const candidate of candidates) {
    const budget = budgetFor(task, prompt, candidate.provider);
    if ('code' in budget) {
      costFailure ??= budget;
      continue;
    }
    const agent = candidate.agent;
    if (!agent) return { pick: { candidate, slots, budget } };
    const reservation = await agents.reserve(agent, budget.inputTokens + budget.maxOutputTokens, now);
    if (!reservation) {
      const reset = windowOf(agent.quota.window, now).resetsAt.getTime();
      earliestReset = Math.min(earliestReset ?? reset, reset);
      continue;
    }
    const slot = await agents.acquireSlot(`agent:${agent.agent_id}`, agent.max_concurrency, task.task_id, leaseUntil, now);
    if (slot === undefined) {
      await agents.settle(reservation, 0, false);
      busy = true;
      continue;
    }
    return { pick: { candidate, reservation, slots: [...slots, { group: `agent:${agent.agent_id}`, slot, lease }], budget } };
  }
  for (const s of slots) await agents.releaseSlot(s.group, s.slot, task.task_id, s.lease);
  if (busy) return { wait: 'concurrency' };
  if (earliestReset !== undefined) return { wait: 'quota', untilMs: earliestReset };
  return { failure: costFailure ?? failure(TASK_ERRORS.noAgent, 'no agent can run this task', false) };
}

async function releasePick(deps: Deps, taskId: string, pick: Pick, actualTokens: number, requestMade: boolean): Promise<void> {
  const agents = agentsRepo(deps);
  if (pick.reservation) await agents.settle(pick.reservation, actualTokens, requestMade);
  for (const s of pick.slots) await agents.releaseSlot(s.group, s.slot, taskId, s.lease);
}

/** pending/queued (or running with an expired lease) → running, under a lease, as one more attempt. */
async function claim(deps: Deps, task: TaskRecord, pick: Pick, leaseUntil: Date, takeover: boolean): Promise<TaskRecord> {
  const nowIso = deps.clock.now().toISOString();
  const { candidate } = pick;
  return tasksRepo(deps).apply(task, {
    set: {
      status: 'running',
      attempts: task.attempts + 1,
      lease_owner: ulid(),
      lease_until: leaseUntil.toISOString(),
      agent_id: candidate.agent?.agent_id ?? null,
      provider_id: candidate.provider.provider_id,
      model: candidate.agent?.model ?? candidate.provider.model,
      started_at: task.started_at ?? nowIso,
      queued_at: task.queued_at ?? nowIso,
      updated_at: nowIso,
      next_attempt_at: null,
      waiting_reason: null,
    },
    session: takeover ? lostSession(task, nowIso) : undefined,
  });
}

/** The session of an attempt that never got a provider's answer: no prompt sent, nothing spent. */
function sessionWithoutCall(
  task: TaskRecord,
  nowIso: string,
  fields: { [K in 'attempt' | 'model' | 'latency_ms' | 'outcome' | 'error']: SessionView[K] },
): SessionView {
  return {
    session_id: nextSessionId(Date.parse(nowIso)),
    task_id: task.task_id,
    agent_id: task.agent_id,
    provider_id: task.provider_id,
    system: null,
    prompt: '',
    prompt_truncated: false,
    response: null,
    response_truncated: false,
    tokens_in: 0,
    tokens_out: 0,
    cost_usd: 0,
    started_at: nowIso,
    finished_at: nowIso,
    ...fields,
  };
}

function lostSession(task: TaskRecord, nowIso: string): SessionView {
  return sessionWithoutCall(task, nowIso, {
    attempt: task.attempts,
    model: task.model,
    latency_ms: task.lease_until ? Math.max(0, Date.parse(nowIso) - Date.parse(task.lease_until)) : 0,
    outcome: 'lost',
    error: { code: TASK_ERRORS.workerLost, message: 'the worker running this attempt stopped answering before its lease expired', retryable: true },
  });
}

/**
 * Ends a task that did not reach a provider (no agent, cost limit, provider unavailable, attempts used
 * up by lost workers). A retryable reason uses an attempt and goes back to the queue with backoff.
 */
async function finishWithoutRun(deps: Deps, task: TaskRecord, reason: AttemptFailure, opts: { lostAttempt: boolean }): Promise<void> {
  const now = deps.clock.now();
  const nowIso = now.toISOString();
  const attempt = task.attempts + (opts.lostAttempt ? 0 : 1);
  const session = sessionWithoutCall(task, nowIso, { attempt, model: null, latency_ms: 0, outcome: 'failed', error: toTaskError(reason) });
  const lost = opts.lostAttempt ? lostSession(task, nowIso) : undefined;
  const retry = reason.retryable && attempt < task.max_attempts;
  let change: Change;
  let token: string | undefined;
  let delay = 0;
  if (retry) {
    delay = reason.code === TASK_ERRORS.workerLost ? 0 : backoffSeconds(attempt, Math.random, reason.retryAfterSeconds);
    token = ulid();
    change = {
      set: {
        status: 'queued',
        attempts: attempt,
        error: toTaskError(reason),
        next_attempt_at: new Date(now.getTime() + delay * 1000).toISOString(),
        waiting_reason: 'retry_backoff',
        queued_at: task.queued_at ?? nowIso,
        updated_at: nowIso,
        run_token: token,
      },
      remove: ['lease_owner', 'lease_until'],
      counters: { attempts_retried: 1 },
      session: lost ?? { ...session, outcome: 'retrying' },
    };
  } else {
    change = {
      set: {
        status: 'failed',
        attempts: attempt,
        error: toTaskError(reason),
        completed_at: nowIso,
        duration_ms: task.started_at ? now.getTime() - Date.parse(task.started_at) : null,
        next_attempt_at: null,
        waiting_reason: null,
        updated_at: nowIso,
      },
      remove: ['lease_owner', 'lease_until'],
      session: lost ?? session,
    };
  }
  const after = await tasksRepo(deps).apply(task, change);
  await publishTask(deps, 'task.updated', after);
  if (token) await sendRun(deps, task.task_id, token, queueDelay(delay));
}

/**
 * Puts the run off (quota, busy slots, an early message) with a fresh token, and sends the next message.
 * A task taken over from a dead worker gives up the expired lease and records the lost attempt.
 */
async function deferRun(deps: Deps, task: TaskRecord, seconds: number, reason: TaskRecord['waiting_reason'], nextAttemptAt: Date): Promise<void> {
  const nowIso = deps.clock.now().toISOString();
  const token = ulid();
  const takeover = task.status === 'running';
  const after = await tasksRepo(deps).apply(task, {
    set: {
      status: 'queued',
      queued_at: task.queued_at ?? nowIso,
      next_attempt_at: nextAttemptAt.toISOString(),
      waiting_reason: reason,
      run_token: token,
      updated_at: nowIso,
    },
    ...(takeover ? { remove: ['lease_owner', 'lease_until'] as (keyof TaskRecord)[], session: lostSession(task, nowIso) } : {}),
  });
  if (after.status !== task.status || after.waiting_reason !== task.waiting_reason) await publishTask(deps, 'task.updated', after);
  await sendRun(deps, task.task_id, token, queueDelay(seconds));
}

/** Streamed output, forwarded as `task.output` in order, a piece at most every OUTPUT_FLUSH_MS. */
class OutputForwarder {
  private buffer = '';
  private seq = 0;
  private chars = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: Deps,
    private readonly taskId: string,
    private readonly attempt: number,
  ) {}

  get streamedChars(): number {
    return this.chars;
  }

  push = (text: string): void => {
    this.buffer += text;
    this.chars += text.length;
    this.timer ??= setTimeout(() => this.flush(), OUTPUT_FLUSH_MS);
  };

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.buffer) return;
    const data = { task_id: this.taskId, attempt: this.attempt, seq: this.seq++, text: this.buffer };
    this.buffer = '';
    this.chain = this.chain.then(() => publish(this.deps, [`task:${this.taskId}`], 'task.output', data, { permission: 'tasks:read' }));
  }

  async close(): Promise<void> {
    this.flush();
    await this.chain;
  }
}

/**
 * Reads the task's status every CANCEL_POLL_MS and aborts the call when it is no longer running, or
 * when it runs under another worker's lease (cancelled and retried between two reads, then claimed again).
 */
function watchCancellation(deps: Deps, taskId: string, leaseOwner: string | undefined, controller: AbortController): () => void {
  let stopped = false;
  const loop = async () => {
    while (!stopped && !controller.signal.aborted) {
      await new Promise((r) => setTimeout(r, CANCEL_POLL_MS));
      if (stopped || controller.signal.aborted) return;
      try {
        const state = await tasksRepo(deps).runState(taskId);
        if (state?.status !== 'running') controller.abort(new DOMException(`task is ${state?.status ?? 'deleted'}`, 'AbortError'));
        else if (leaseOwner && state.lease_owner !== leaseOwner) controller.abort(new DOMException('another worker holds the task now', 'AbortError'));
      } catch (err) {
        logger.warn('cancellation check failed', { task_id: taskId, error: (err as Error).name });
      }
    }
  };
  void loop();
  return () => {
    stopped = true;
  };
}

/** Runs the claimed attempt on the provider and records its session and outcome. */
async function execute(deps: Deps, task: TaskRecord, pick: Pick, prompt: TaskPrompt, options: RunOptions): Promise<void> {
  const { candidate, budget } = pick;
  const provider = candidate.provider;
  const agent = candidate.agent;
  const model = task.model ?? provider.model;
  const startedAt = deps.clock.now();
  const started = performance.now();

  const controller = new AbortController();
  const lambdaBudgetMs = options.remainingMs ? options.remainingMs() - LEASE_GRACE_SECONDS * 1000 : Infinity;
  const timeoutMs = Math.max(1000, Math.min(task.timeout_seconds * 1000, lambdaBudgetMs));
  const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${Math.round(timeoutMs / 1000)} s`, 'TimeoutError')), timeoutMs);
  const stopWatch = watchCancellation(deps, task.task_id, task.lease_owner, controller);
  const output = new OutputForwarder(deps, task.task_id, task.attempts);
  let costExceeded = false;
  const onChunk = (text: string) => {
    output.push(text);
    if (task.max_cost_usd !== null && !controller.signal.aborted) {
      const soFar = budget.inputCostUsd + costUsd(provider.pricing, 0, tokensForChars(output.streamedChars));
      if (soFar > task.max_cost_usd) {
        costExceeded = true;
        controller.abort(new DOMException('cost limit reached', 'AbortError'));
      }
    }
  };

  let result: LlmResult | undefined;
  let fault: AttemptFailure | undefined;
  let requestMade = false;
  try {
    const client = await providerClient(deps, provider, { model: agent?.model, api_key_ref: agent?.api_key_ref });
    requestMade = true;
    result = await client.complete({
      model,
      system: prompt.system,
      prompt: prompt.prompt,
      maxTokens: budget.maxOutputTokens,
      temperature: prompt.temperature,
      signal: controller.signal,
      onChunk,
    });
  } catch (err) {
    fault = classify(err);
    if (!(err instanceof Error && err.name === 'ProviderError')) logger.error('task attempt failed unexpectedly', { task_id: task.task_id, error: err as Error });
  } finally {
    clearTimeout(timer);
    stopWatch();
    await output.close();
  }
  const latencyMs = Math.round(performance.now() - started);
  const tokensIn = result?.tokensIn ?? 0;
  const tokensOut = result?.tokensOut ?? 0;
  const cost = costUsd(provider.pricing, tokensIn, tokensOut);
  const cancelled = controller.signal.aborted && (controller.signal.reason as DOMException | undefined)?.name === 'AbortError' && !costExceeded;

  if (costExceeded) {
    fault = failure(TASK_ERRORS.costLimit, `the output reached max_cost_usd $${task.max_cost_usd} before it ended, so the call was stopped`, false);
  } else if (result && task.max_cost_usd !== null && cost > task.max_cost_usd) {
    fault = failure(TASK_ERRORS.costLimit, `the attempt cost $${cost}, over max_cost_usd $${task.max_cost_usd}; its output is kept in the session only`, false);
  }

  if (requestMade && !cancelled) {
    await recordProviderCall(deps, {
      providerId: provider.provider_id,
      ok: fault === undefined,
      latencyMs,
      tokensIn,
      tokensOut,
      costUsd: cost,
      ...(fault ? { errorCode: fault.code, retryable: fault.retryable } : {}),
    }).catch((err) => logger.error('provider call not recorded', { provider_id: provider.provider_id, error: err as Error }));
  }
  await releasePick(deps, task.task_id, pick, tokensIn + tokensOut, requestMade);
  if (agent) await agentsRepo(deps).touch(agent.agent_id, startedAt.toISOString());

  const finishedAt = deps.clock.now();
  const promptText = truncateUtf8(prompt.prompt, SESSION_PROMPT_MAX_BYTES);
  const responseText = result ? truncateUtf8(result.output, SESSION_RESPONSE_MAX_BYTES) : undefined;
  const session: SessionView = {
    session_id: nextSessionId(finishedAt.getTime()),
    task_id: task.task_id,
    attempt: task.attempts,
    agent_id: agent?.agent_id ?? null,
    provider_id: provider.provider_id,
    model: result?.model ?? model,
    system: prompt.system,
    prompt: promptText.text,
    prompt_truncated: promptText.truncated,
    response: responseText?.text ?? null,
    response_truncated: responseText?.truncated ?? false,
    tokens_in: tokensIn,
    tokens_out: tokensOut,
    cost_usd: cost,
    latency_ms: latencyMs,
    started_at: startedAt.toISOString(),
    finished_at: finishedAt.toISOString(),
    outcome: 'completed',
    error: null,
  };
  const usage = usageDelta({ tokensIn, tokensOut, costUsd: cost });
  const usageSet = { tokens_in: task.tokens_in + tokensIn, tokens_out: task.tokens_out + tokensOut, cost_usd: round8(task.cost_usd + cost) };
  const nowIso = finishedAt.toISOString();
  const durationMs = finishedAt.getTime() - Date.parse(task.started_at ?? startedAt.toISOString());

  let change: Change;
  let retryToken: string | undefined;
  let retryDelay = 0;
  if (cancelled) {
    change = { set: {} }; // never applied: the task is no longer running
  } else if (result && !fault) {
    const output = truncateUtf8(result.output, RESULT_MAX_BYTES);
    change = {
      set: {
        status: 'completed',
        result: { output: output.text, ...(output.truncated ? { output_truncated: true } : {}), ...extractResult(task.type, result.output) },
        error: null,
        model: result.model,
        ...usageSet,
        completed_at: nowIso,
        duration_ms: durationMs,
        updated_at: nowIso,
      },
      remove: ['lease_owner', 'lease_until'],
      counters: mergeDeltas(usage, durationDelta(durationMs)),
      session,
    };
  } else {
    const f = fault ?? failure(TASK_ERRORS.internal, 'The provider returned no result', true);
    if (f.retryable && task.attempts < task.max_attempts) {
      retryDelay = backoffSeconds(task.attempts, Math.random, f.retryAfterSeconds);
      retryToken = ulid();
      change = {
        set: {
          status: 'queued',
          error: toTaskError(f),
          ...usageSet,
          next_attempt_at: new Date(finishedAt.getTime() + retryDelay * 1000).toISOString(),
          waiting_reason: 'retry_backoff',
          run_token: retryToken,
          updated_at: nowIso,
        },
        remove: ['lease_owner', 'lease_until'],
        counters: mergeDeltas(usage, { attempts_retried: 1 }),
        session: { ...session, outcome: 'retrying', error: toTaskError(f), response: responseText?.text ?? null },
      };
    } else {
      change = {
        set: {
          status: 'failed',
          error: toTaskError(f),
          ...usageSet,
          completed_at: nowIso,
          duration_ms: durationMs,
          updated_at: nowIso,
        },
        remove: ['lease_owner', 'lease_until'],
        counters: usage,
        session: { ...session, outcome: 'failed', error: toTaskError(f) },
      };
    }
  }

  if (!cancelled) {
    try {
      const after = await tasksRepo(deps).apply(task, change);
      await publishTask(deps, 'task.updated', after);
      if (retryToken) await sendRun(deps, task.task_id, retryToken, queueDelay(retryDelay));
      return;
    } catch (err) {
      if (!(err instanceof StaleTaskError)) throw err;
    }
  }
  // Cancelled (or otherwise changed) while the provider was working: the attempt still happened.
  const current = await tasksRepo(deps).get(task.task_id);
  const outcome = current?.status === 'cancelled' ? 'cancelled' : 'lost';
  await tasksRepo(deps).recordAttemptUsage(
    task.task_id,
    { tokens_in: tokensIn, tokens_out: tokensOut, cost_usd: cost },
    usage,
    {
      ...session,
      outcome,
      error: outcome === 'cancelled' ? { code: TASK_ERRORS.cancelled, message: current?.cancel_reason ?? 'the task was cancelled during the call', retryable: false } : (fault ? toTaskError(fault) : null),
    },
  );
}

function round8(v: number): number {
  return Math.round(v * 1e8) / 1e8;
}

/**
 * A running task whose lease expired: its worker died (or lost its connection to the table). The lost
 * attempt is recorded; the task goes back to the queue while attempts remain, and fails otherwise.
 */
export async function recoverExpiredLease(deps: Deps, task: TaskRecord): Promise<void> {
  if (task.status !== 'running' || !task.lease_until || task.lease_until > deps.clock.now().toISOString()) return;
  const reason = failure(TASK_ERRORS.workerLost, `the worker running attempt ${task.attempts} stopped answering before its lease expired`, true);
  if (task.attempts >= task.max_attempts) {
    await finishWithoutRun(deps, task, { ...reason, retryable: false, message: `${reason.message}; no attempts are left` }, { lostAttempt: true });
    return;
  }
  await finishWithoutRun(deps, task, { ...reason, retryAfterSeconds: 0 }, { lostAttempt: true });
}

/** A task whose queue message went to the dead-letter queue: the worker could not process it, so it fails. */
export async function failDeadLettered(deps: Deps, message: RunMessage): Promise<'failed' | 'ignored'> {
  for (let round = 0; round < STALE_RETRIES; round++) {
    const task = await tasksRepo(deps).get(message.task_id);
    if (!task || isTerminal(task.status)) return 'ignored';
    if (message.token && task.run_token && message.token !== task.run_token) return 'ignored';
    if (task.status === 'running' && task.lease_until && task.lease_until > deps.clock.now().toISOString()) return 'ignored';
    const nowIso = deps.clock.now().toISOString();
    try {
      const after = await tasksRepo(deps).apply(task, {
        set: {
          status: 'failed',
          error: toTaskError(
            failure(TASK_ERRORS.deadLettered, 'the worker failed to process this task\'s queue message repeatedly, so the queue moved it to the dead-letter queue', false),
          ),
          completed_at: nowIso,
          duration_ms: task.started_at ? Date.parse(nowIso) - Date.parse(task.started_at) : null,
          next_attempt_at: null,
          waiting_reason: null,
          updated_at: nowIso,
        },
        remove: ['lease_owner', 'lease_until'],
      });
      await publishTask(deps, 'task.updated', after);
      return 'failed';
    } catch (err) {
      if (!(err instanceof StaleTaskError)) throw err;
    }
  }
  return 'ignored';
}
