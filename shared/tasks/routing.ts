import type { ProviderRecord } from '../providers/types.js';
import type { AgentRecord } from '../agents/types.js';
import type { WindowUsage } from '../agents/quota.js';
import { failure, TASK_ERRORS, type AttemptFailure } from './transitions.js';

/**
 * Where a task may run, best first. An agent is an identity (key, quota, concurrency) on a provider;
 * a provider with no agents configured is used directly (no quota of ours, the provider's own limits).
 */
export interface RouteCandidate {
  provider: ProviderRecord;
  agent: AgentRecord | null;
}

export interface RoutingInput {
  task: { agent_id: string | null; provider_id: string | null };
  /** Every stored agent (a short, admin-managed list). */
  agents: AgentRecord[];
  /** Providers that may be called now: enabled, circuit closed, by priority. */
  eligible: ProviderRecord[];
  /** Usage of the agents' current windows, for spreading load. */
  usage: Map<string, WindowUsage>;
  /** The deployment's default provider (the local runtime's `local`). */
  defaultProviderId?: string;
}

export type RoutingResult = { candidates: RouteCandidate[] } | { failure: AttemptFailure };

/**
 * The routing strategy:
 * - a task naming an agent runs on that agent only; naming a provider, on that provider's agents only;
 * - otherwise on any eligible provider, the default provider first, then by provider priority; a
 *   `local` provider is never picked for a task that did not ask for it unless it is the default, so
 *   its canned-for-development output can never stand in for a real provider;
 * - within a provider: agent priority (higher first), then the larger share of quota left, then the
 *   least recently used, so load spreads across identities.
 * A named provider that is not eligible (disabled, circuit open) is a retryable failure: the task
 * waits for it rather than silently running elsewhere.
 */
export function routeTask(input: RoutingInput): RoutingResult {
  const { task, agents, eligible } = input;
  const eligibleById = new Map(eligible.map((p) => [p.provider_id, p]));

  if (task.agent_id) {
    const agent = agents.find((a) => a.agent_id === task.agent_id);
    if (!agent) return { failure: failure(TASK_ERRORS.noAgent, `agent ${task.agent_id} no longer exists`, false) };
    if (!agent.enabled) return { failure: failure(TASK_ERRORS.agentDisabled, `agent ${agent.name} is disabled`, false) };
    const provider = eligibleById.get(agent.provider_id);
    if (!provider) return { failure: unavailable(agent.provider_id) };
    return { candidates: [{ provider, agent }] };
  }

  const providers = task.provider_id
    ? eligibleById.has(task.provider_id)
      ? [eligibleById.get(task.provider_id)!]
      : []
    : orderProviders(eligible, input.defaultProviderId);
  if (task.provider_id && providers.length === 0) return { failure: unavailable(task.provider_id) };

  const candidates: RouteCandidate[] = [];
  for (const provider of providers) {
    const own = agents.filter((a) => a.provider_id === provider.provider_id);
    if (own.length === 0) {
      candidates.push({ provider, agent: null });
      continue;
    }
    for (const agent of orderAgents(own.filter((a) => a.enabled), input.usage)) candidates.push({ provider, agent });
  }
  if (candidates.length === 0) {
    return {
      failure: task.provider_id
        ? failure(TASK_ERRORS.noAgent, `provider ${task.provider_id} has no enabled agent`, false)
        : failure(TASK_ERRORS.noAgent, 'no enabled agent on any available provider', false),
    };
  }
  return { candidates };
}

function unavailable(providerId: string): AttemptFailure {
  return failure(TASK_ERRORS.providerUnavailable, `provider ${providerId} is unavailable (disabled, unregistered or its circuit is open)`, true);
}

function orderProviders(eligible: ProviderRecord[], defaultProviderId?: string): ProviderRecord[] {
  const usable = eligible.filter((p) => p.type !== 'local' || p.provider_id === defaultProviderId);
  const first = usable.filter((p) => p.provider_id === defaultProviderId);
  return [...first, ...usable.filter((p) => p.provider_id !== defaultProviderId)];
}

export function orderAgents(agents: AgentRecord[], usage: Map<string, WindowUsage>): AgentRecord[] {
  const headroom = (a: AgentRecord) => {
    const u = usage.get(a.agent_id) ?? { requests: 0, tokens: 0 };
    const shares = [
      a.quota.max_requests === null ? 1 : 1 - u.requests / a.quota.max_requests,
      a.quota.max_tokens === null ? 1 : 1 - u.tokens / a.quota.max_tokens,
    ];
    return Math.min(...shares);
  };
  return [...agents].sort(
    (a, b) =>
      b.priority - a.priority ||
      headroom(b) - headroom(a) ||
      (a.last_used_at ?? '').localeCompare(b.last_used_at ?? '') ||
      a.agent_id.localeCompare(b.agent_id),
  );
}
