import { performance } from 'node:perf_hooks';
import type { Deps } from '../platform/runtime.js';
import { logger } from '../platform/logger.js';
import { publish } from '../realtime/publisher.js';
import { costUsd, ProviderError, type LlmResult } from '../providers/types.js';
import { providerClient } from '../providers/service.js';
import { recordProviderCall } from '../providers/status.js';
import type { TaskPrompt } from './prompts.js';
import { tokensForChars } from '../platform/tokens.js';
import { failure, TASK_ERRORS, type AttemptFailure } from './transitions.js';
import type { AttemptUsage } from './stats.js';
import type { Pick } from './placement.js';
import { TaskRepository, type TaskRecord } from './repo.js';

/**
 * Calls the provider for a claimed attempt: streams the output to subscribers, stops at the task's
 * timeout, at its cost limit, or when the task is cancelled meanwhile, classifies what went wrong and
 * records the call in the provider's health.
 */

/** A lease outlives the task's timeout by this much: time to record the session and the outcome. */
export const LEASE_GRACE_SECONDS = 60;
/** How often a running task's status is read to notice a cancellation (the canceller cannot reach this process). */
export const CANCEL_POLL_MS = 1000;
/** Streamed output is sent to subscribers in pieces at most this often. */
const OUTPUT_FLUSH_MS = 100;

export interface RunOptions {
  /** Milliseconds left in the Lambda invocation; provider calls end before it does. */
  remainingMs?: () => number;
}

/** What one provider call came to. */
export interface CallOutcome {
  result?: LlmResult;
  /** Why the attempt failed (a provider error, the cost limit, our own fault). */
  fault?: AttemptFailure;
  /** The request went out (a client was built); the quota is settled on what it used. */
  requestMade: boolean;
  /** Aborted because the task stopped running (cancelled, or another worker holds it now). */
  cancelled: boolean;
  /** Aborted because this process is stopping (`deps.stopping`): the attempt is handed back. */
  interrupted: boolean;
  /** The model asked for. */
  model: string;
  usage: AttemptUsage;
  startedAt: Date;
  latencyMs: number;
  /**
   * The call's bookkeeping, left running so that it overlaps the worker's own (the last output pieces
   * sent, the call recorded in the provider's usage and breaker); awaited before the outcome is stored,
   * so that subscribers get the output before the task's end. Never rejects.
   */
  recorded: Promise<void>;
}

/**
 * A provider's error keeps its code, message and class (the adapters classify: 429/5xx/network/timeout
 * retryable; 400/401/403 not). Anything else is our own fault: retryable (it may be a passing outage of
 * a dependency) and reported without its exception text.
 */
export function classify(err: unknown): AttemptFailure {
  if (err instanceof ProviderError) return failure(err.code, err.message, err.retryable, err.retryAfterSeconds);
  const e = err as { name?: string };
  if (e?.name === 'ProviderError' && typeof (err as ProviderError).retryable === 'boolean') {
    const p = err as ProviderError;
    return failure(p.code, p.message, p.retryable, p.retryAfterSeconds);
  }
  return failure(TASK_ERRORS.internal, 'The attempt failed because of an internal error', true);
}

/** Runs the attempt's call on the picked provider (and agent) within the task's timeout and cost limit. */
export async function callProvider(deps: Deps, task: TaskRecord, pick: Pick, prompt: TaskPrompt, options: RunOptions): Promise<CallOutcome> {
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
  const onStopping = () => controller.abort(new DOMException('the runtime is stopping', 'InterruptedError'));
  if (deps.stopping?.aborted) onStopping();
  deps.stopping?.addEventListener('abort', onStopping, { once: true });
  const output = new OutputForwarder(deps, task.task_id, task.attempts, task.created_by);
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
    deps.stopping?.removeEventListener('abort', onStopping);
  }
  const outputSent = output.close().catch((err) => logger.error('task output not sent', { task_id: task.task_id, error: err as Error }));
  const latencyMs = Math.round(performance.now() - started);
  const tokensIn = result?.tokensIn ?? 0;
  const tokensOut = result?.tokensOut ?? 0;
  const cost = costUsd(provider.pricing, tokensIn, tokensOut);
  const cancelled = controller.signal.aborted && (controller.signal.reason as DOMException | undefined)?.name === 'AbortError' && !costExceeded;
  const interrupted = !result && controller.signal.aborted && (controller.signal.reason as DOMException | undefined)?.name === 'InterruptedError';

  if (costExceeded) {
    fault = failure(TASK_ERRORS.costLimit, `the output reached max_cost_usd $${task.max_cost_usd} before it ended, so the call was stopped`, false);
  } else if (result && task.max_cost_usd !== null && cost > task.max_cost_usd) {
    fault = failure(TASK_ERRORS.costLimit, `the attempt cost $${cost}, over max_cost_usd $${task.max_cost_usd}; its output is kept in the session only`, false);
  }

  let callRecorded: Promise<void> = Promise.resolve();
  if (requestMade && !cancelled && !interrupted) {
    callRecorded = recordProviderCall(deps, {
      providerId: provider.provider_id,
      ok: fault === undefined,
      latencyMs,
      tokensIn,
      tokensOut,
      costUsd: cost,
      ...(fault ? { errorCode: fault.code, retryable: fault.retryable } : {}),
    }).catch((err) => logger.error('provider call not recorded', { provider_id: provider.provider_id, error: err as Error }));
  }
  const recorded = Promise.all([outputSent, callRecorded]).then(() => undefined);
  return { result, fault, requestMade, cancelled, interrupted, model, usage: { tokensIn, tokensOut, costUsd: cost }, startedAt, latencyMs, recorded };
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
    private readonly ownerId: string,
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
    this.chain = this.chain.then(() => publish(this.deps, [`task:${this.taskId}`], 'task.output', data, { permission: 'tasks:read_all', ownerId: this.ownerId }));
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
        const state = await new TaskRepository(deps.store).runState(taskId);
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
