import { newUlid } from '../platform/ids.js';
import type { Deps } from '../platform/runtime.js';
import { DomainError, conflict, notFound, validationError } from '../platform/errors.js';
import { logger } from '../platform/logger.js';
import type { Principal } from '../platform/principal.js';
import type { CreateAgentInput, UpdateAgentInput, AgentView } from './model.js';
import { quotaState, windowOf, type Quota } from './quota.js';
import { AgentNameTakenError, AgentRepository, type AgentRecord } from './repo.js';
import { getProvider, LOCAL_PROVIDER_ID } from '../providers/service.js';
import { viewOf } from '../platform/view.js';
import { agentView as agentViewSchema } from './model.js';
import { secretStore } from '../platform/use/secrets.js';

const repo = (deps: Deps) => new AgentRepository(deps.store);

/** What the task runner may do with agents: read them, reserve quota, hold concurrency slots. */
export type AgentCapacity = Pick<AgentRepository, 'get' | 'list' | 'usage' | 'reserve' | 'settle' | 'acquireSlot' | 'releaseSlot' | 'touch'>;

export const agentCapacity = (deps: Deps): AgentCapacity => repo(deps);
/** Keys shorter than this show no characters at all when masked. */
const MIN_KEY_LENGTH_FOR_HINT = 12;

/**
 * The agent the local runtime seeds on the `local` provider, so that `npm start` runs tasks without any
 * configuration. Its quota and concurrency are sized for one developer machine: the worker runs at most
 * 100 tasks at once locally (20 batches of 5), so the agent never becomes the bottleneck there.
 */
export const LOCAL_DEFAULT_AGENT = {
  name: 'local-default',
  description: 'Seeded by the local runtime on the local (offline, deterministic) provider',
  quota: { window: 'hourly', max_requests: 100_000, max_tokens: 500_000_000 } satisfies Quota,
  max_concurrency: 100,
  priority: 50,
};

export function agentView(a: AgentRecord): AgentView {
  return viewOf(agentViewSchema, a, { api_key: a.api_key_ref ? `****${a.api_key_last4 ?? ''}` : null });
}

export async function listAgents(deps: Deps, filter: { provider_id?: string; enabled?: boolean }, limit: number, startKey?: Record<string, unknown>) {
  const page = await repo(deps).page(filter, limit, startKey);
  return { items: page.items.map(agentView), lastKey: page.lastKey };
}

export async function getAgent(deps: Deps, agentId: string): Promise<AgentRecord> {
  const agent = await repo(deps).get(agentId);
  if (!agent) throw notFound('Agent');
  return agent;
}

async function requireProvider(deps: Deps, providerId: string): Promise<void> {
  if (!(await getProvider(deps, providerId))) throw validationError([{ path: 'provider_id', message: 'no provider with this id' }]);
}

async function storeKey(deps: Deps, agentId: string, apiKey: string) {
  const ref = await secretStore(deps).put(`agents/${agentId}/${newUlid()}`, apiKey);
  return { api_key_ref: ref, api_key_last4: apiKey.length >= MIN_KEY_LENGTH_FOR_HINT ? apiKey.slice(-4) : '' };
}

export async function createAgent(deps: Deps, principal: Pick<Principal, 'userId'>, input: CreateAgentInput): Promise<AgentRecord> {
  await requireProvider(deps, input.provider_id);
  const now = deps.clock.now().toISOString();
  const agentId = newUlid();
  const key = input.api_key ? await storeKey(deps, agentId, input.api_key) : undefined;
  const record: AgentRecord = {
    agent_id: agentId,
    name: input.name,
    ...(input.description ? { description: input.description } : {}),
    provider_id: input.provider_id,
    ...(input.model ? { model: input.model } : {}),
    ...(key ?? {}),
    quota: input.quota,
    max_concurrency: input.max_concurrency,
    priority: input.priority,
    enabled: input.enabled,
    created_by: principal.userId,
    created_at: now,
    updated_at: now,
  };
  try {
    await repo(deps).create(record);
  } catch (err) {
    if (key) await secretStore(deps).remove(key.api_key_ref).catch((e) => logger.error('secret of an agent not saved was not removed', { error: e as Error }));
    if (err instanceof AgentNameTakenError) throw conflict(`An agent named ${input.name} already exists`);
    throw err;
  }
  return record;
}

export async function updateAgent(deps: Deps, agentId: string, input: UpdateAgentInput): Promise<AgentRecord> {
  const before = await getAgent(deps, agentId);
  const key = input.api_key ? await storeKey(deps, agentId, input.api_key) : undefined;
  const after: AgentRecord = {
    ...before,
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.quota !== undefined ? { quota: input.quota } : {}),
    ...(input.max_concurrency !== undefined ? { max_concurrency: input.max_concurrency } : {}),
    ...(input.priority !== undefined ? { priority: input.priority } : {}),
    ...(input.enabled !== undefined ? { enabled: input.enabled } : {}),
    updated_at: deps.clock.now().toISOString(),
  };
  if (input.description === null) delete after.description;
  else if (input.description !== undefined) after.description = input.description;
  if (input.model === null) delete after.model;
  else if (input.model !== undefined) after.model = input.model;
  if (input.api_key === null) {
    delete after.api_key_ref;
    delete after.api_key_last4;
  } else if (key) Object.assign(after, key);
  try {
    await repo(deps).update(before, after);
  } catch (err) {
    if (key) await secretStore(deps).remove(key.api_key_ref).catch((e) => logger.error('secret of an agent not saved was not removed', { error: e as Error }));
    if (err instanceof AgentNameTakenError) throw conflict(`An agent named ${after.name} already exists`);
    if ((err as { name?: string }).name === 'TransactionCanceledException') throw conflict('The agent changed meanwhile; read it again');
    throw err;
  }
  if (before.api_key_ref && before.api_key_ref !== after.api_key_ref) await removeSecret(deps, before.api_key_ref, agentId);
  return after;
}

export async function deleteAgent(deps: Deps, agentId: string): Promise<void> {
  const agent = await getAgent(deps, agentId);
  try {
    await repo(deps).delete(agent);
  } catch (err) {
    if ((err as { name?: string }).name === 'TransactionCanceledException') throw notFound('Agent');
    throw err;
  }
  if (agent.api_key_ref) await removeSecret(deps, agent.api_key_ref, agentId);
}

async function removeSecret(deps: Deps, ref: string, agentId: string): Promise<void> {
  await secretStore(deps).remove(ref).catch((err) => logger.error('agent secret could not be removed', { agent_id: agentId, error: (err as Error).name }));
}

/** Per agent: the current window's usage against its quota, its busy slots; and the totals. */
export async function quotaStatus(deps: Deps) {
  const agents = await repo(deps).list();
  const now = deps.clock.now();
  const usage = await repo(deps).usage(agents, now);
  const slots = await Promise.all(agents.map((a) => repo(deps).slots(`agent:${a.agent_id}`)));
  const items = agents.map((a, i) => {
    const used = usage.get(a.agent_id)!;
    const state = quotaState(a.quota, { requests: used.requests, tokens: used.tokens }, now);
    const running = slots[i].filter((s) => s.lease_until > now.toISOString()).length;
    return {
      agent_id: a.agent_id,
      name: a.name,
      provider_id: a.provider_id,
      enabled: a.enabled,
      window: a.quota.window,
      window_start: windowOf(a.quota.window, now).start.toISOString(),
      resets_at: state.resets_at,
      used: state.used,
      limit: state.limit,
      remaining: state.remaining,
      running,
      max_concurrency: a.max_concurrency,
      available: a.enabled && state.available && running < a.max_concurrency,
      last_used_at: used.last_used_at ?? a.last_used_at ?? null,
    };
  });
  const sumOrNull = (values: (number | null)[]) => (values.some((v) => v === null) ? null : values.reduce<number>((s, v) => s + (v ?? 0), 0));
  return {
    agents: items,
    totals: {
      agents: items.length,
      available: items.filter((i) => i.available).length,
      used: { requests: items.reduce((s, i) => s + i.used.requests, 0), tokens: items.reduce((s, i) => s + i.used.tokens, 0) },
      limit: { requests: sumOrNull(items.map((i) => i.limit.requests)), tokens: sumOrNull(items.map((i) => i.limit.tokens)) },
      remaining: { requests: sumOrNull(items.map((i) => i.remaining.requests)), tokens: sumOrNull(items.map((i) => i.remaining.tokens)) },
      running: items.reduce((s, i) => s + i.running, 0),
      max_concurrency: items.reduce((s, i) => s + i.max_concurrency, 0),
    },
  };
}

/** Seeds the local runtime's agent on the `local` provider unless one with its name exists. */
export async function ensureDefaultAgent(deps: Deps): Promise<void> {
  const existing = await repo(deps).list(LOCAL_PROVIDER_ID);
  if (existing.some((a) => a.name === LOCAL_DEFAULT_AGENT.name)) return;
  try {
    await createAgent(deps, { userId: 'system' }, { ...LOCAL_DEFAULT_AGENT, provider_id: LOCAL_PROVIDER_ID, enabled: true });
  } catch (err) {
    if (!(err instanceof DomainError && err.kind === 'conflict')) throw err;
  }
}
