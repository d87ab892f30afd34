import { monotonicUlids } from '../platform/ids.js';
import type { SessionView } from './model.js';
import { truncateUtf8 } from './extract.js';
import type { TaskRecord } from './repo.js';
import type { TaskPrompt } from './prompts.js';
import { TASK_ERRORS } from './transitions.js';

/** What a session records of an attempt: the prompt sent, the answer, usage and timing. */

/** Sizes kept in sessions, inside DynamoDB's 400 KB item limit. */
const SESSION_PROMPT_MAX_BYTES = 150_000;
const SESSION_RESPONSE_MAX_BYTES = 120_000;

/** Session ids sort in the order this process made them, even within one millisecond (a lost attempt, then its successor). */
export const nextSessionId = monotonicUlids();

/** The session of an attempt that never got a provider's answer: no prompt sent, nothing spent. */
export function sessionWithoutCall(task: TaskRecord, nowIso: string, fields: { [K in 'attempt' | 'model' | 'latency_ms' | 'outcome' | 'error']: SessionView[K] }): SessionView {
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

/** The session of a running attempt whose worker stopped answering. */
export function lostSession(task: TaskRecord, nowIso: string): SessionView {
  return sessionWithoutCall(task, nowIso, {
    attempt: task.attempts,
    model: task.model,
    latency_ms: task.lease_until ? Math.max(0, Date.parse(nowIso) - Date.parse(task.lease_until)) : 0,
    outcome: 'lost',
    error: { code: TASK_ERRORS.workerLost, message: 'the worker running this attempt stopped answering before its lease expired', retryable: true },
  });
}

/** The facts of one provider call, as the session records them. */
export interface CallRecord {
  agentId: string | null;
  providerId: string;
  model: string;
  output?: string;
  tokensIn: number;
  tokensOut: number;
  costUsd: number;
  latencyMs: number;
  startedAt: Date;
  finishedAt: Date;
}

/** The session of an attempt that reached a provider, as if it completed (the settling rule sets another outcome). */
export function callSession(task: TaskRecord, prompt: TaskPrompt, call: CallRecord): SessionView {
  const promptText = truncateUtf8(prompt.prompt, SESSION_PROMPT_MAX_BYTES);
  const responseText = call.output !== undefined ? truncateUtf8(call.output, SESSION_RESPONSE_MAX_BYTES) : undefined;
  return {
    session_id: nextSessionId(call.finishedAt.getTime()),
    task_id: task.task_id,
    attempt: task.attempts,
    agent_id: call.agentId,
    provider_id: call.providerId,
    model: call.model,
    system: prompt.system,
    prompt: promptText.text,
    prompt_truncated: promptText.truncated,
    response: responseText?.text ?? null,
    response_truncated: responseText?.truncated ?? false,
    tokens_in: call.tokensIn,
    tokens_out: call.tokensOut,
    cost_usd: call.costUsd,
    latency_ms: call.latencyMs,
    started_at: call.startedAt.toISOString(),
    finished_at: call.finishedAt.toISOString(),
    outcome: 'completed',
    error: null,
  };
}
