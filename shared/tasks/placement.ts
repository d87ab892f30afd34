import type { Deps } from '../platform/runtime.js';
import { costUsd, type ProviderRecord } from '../providers/types.js';
import { allProviders, eligibleProviders, providerWithCircuit } from '../providers/service.js';
import { allowsCalls, DEFAULT_CIRCUIT_POLICY, retryAt } from '../providers/circuit-breaker.js';
import { windowOf } from '../agents/quota.js';
import type { AgentRecord, QuotaReservation } from '../agents/repo.js';
import { agentCapacity } from '../agents/service.js';
import type { TaskPrompt } from './prompts.js';
import { estimateTokens } from '../platform/tokens.js';
import { routeTask, type RouteCandidate } from './routing.js';
import { failure, TASK_ERRORS, waitSeconds, type AttemptFailure } from './transitions.js';
import type { TaskRecord } from './repo.js';

/**
 * Route and reserve: where a task's next attempt runs. The providers it may use, the agents that can
 * run it (ordered by priority and headroom), then the first with room: the batch's concurrency slot,
 * the agent's quota and its concurrency slot, all held until the attempt is settled.
 */

/** Output cap when neither the payload nor the cost limit sets one. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;

export interface Budget {
  inputTokens: number;
  maxOutputTokens: number;
  inputCostUsd: number;
}

export interface Pick {
  candidate: RouteCandidate;
  reservation?: QuotaReservation;
  slots: { group: string; slot: number; lease: string }[];
  budget: Budget;
}

type PickOutcome = { pick: Pick } | { wait: 'quota' | 'concurrency'; untilMs?: number } | { failure: AttemptFailure };

/** Where the attempt runs; or why it must wait (and how long), or why it cannot run at all. */
export type Placement =
  | { pick: Pick }
  | { wait: { reason: 'quota' | 'concurrency' | 'provider_unavailable'; seconds: number } }
  | { failure: AttemptFailure };

const agentsRepo = agentCapacity;

/** What routing reads before it reserves anything: the providers the task may use, and the agents. */
export interface RouteReads {
  scope: ProviderScope;
  agents: AgentRecord[];
}

/**
 * The reads behind a placement, side by side. The worker starts them while it takes the task's
 * resources (they read only, so a placement that does not happen costs a few reads, nothing held).
 */
export async function readRoute(deps: Deps, task: TaskRecord): Promise<RouteReads> {
  const [scope, agents] = await Promise.all([providerScope(deps, task), agentsRepo(deps).list()]);
  return { scope, agents };
}

/** Routes the task and reserves room for the attempt, holding slots until `leaseUntil`. */
export async function place(deps: Deps, task: TaskRecord, prompt: TaskPrompt, now: Date, leaseUntil: Date, reads: RouteReads): Promise<Placement> {
  const { scope } = reads;
  if ('failure' in scope) return scope;
  if ('waitUntilMs' in scope) {
    return { wait: { reason: 'provider_unavailable', seconds: waitSeconds('provider', task.priority, scope.waitUntilMs, now.getTime()) } };
  }
  const routing = routeTask({
    task,
    agents: reads.agents,
    eligible: scope.eligible,
    usage: new Map(),
    defaultProviderId: deps.config.defaultProviderId,
  });
  if ('failure' in routing) return { failure: routing.failure };
  const candidates = await withUsageOrder(deps, routing.candidates);
  const outcome = await pickCandidate(deps, task, candidates, prompt, leaseUntil);
  if ('wait' in outcome) return { wait: { reason: outcome.wait, seconds: waitSeconds(outcome.wait, task.priority, outcome.untilMs, now.getTime()) } };
  return outcome;
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
    const enabled = (await allProviders(deps)).filter((p) => p.enabled);
    if (!enabled.length) return { failure: failure(TASK_ERRORS.providerUnavailable, 'no provider is registered and enabled', false) };
    return { waitUntilMs: now + DEFAULT_CIRCUIT_POLICY.cooldownSeconds * 1000 };
  }
  const { provider, circuit } = await providerWithCircuit(deps, named);
  if (!provider) return { failure: failure(TASK_ERRORS.providerUnavailable, `provider ${named} is not registered`, false) };
  if (!provider.enabled) return { failure: failure(TASK_ERRORS.providerUnavailable, `provider ${named} is disabled`, false) };
  if (!allowsCalls(circuit, deps.clock.now(), DEFAULT_CIRCUIT_POLICY)) {
    const until = retryAt(circuit, DEFAULT_CIRCUIT_POLICY);
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

/** Gives back what the pick held: the quota reservation (settled with the tokens actually used) and the slots. */
export async function releasePick(deps: Deps, taskId: string, pick: Pick, actualTokens: number, requestMade: boolean): Promise<void> {
  const agents = agentsRepo(deps);
  await Promise.all([
    pick.reservation ? agents.settle(pick.reservation, actualTokens, requestMade) : undefined,
    ...pick.slots.map((s) => agents.releaseSlot(s.group, s.slot, taskId, s.lease)),
  ]);
}
