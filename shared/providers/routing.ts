import type { ProviderRecord } from './types.js';

/**
 * Which providers may take a task, in the order routing tries them (before circuit breakers are
 * consulted): enabled ones that declare the capability (a provider that declares none is general
 * purpose), by priority (lower first), then id.
 *
 * The local provider is never a fallback: a `local` provider stays in the list only while no enabled
 * non-local provider comes before it, whatever that provider's circuit state. It serves when nothing
 * else is configured (or when an admin ranks it first); a failing real provider leaves its tasks
 * waiting rather than completing them with the local provider's output.
 */
export function routingOrder(providers: readonly ProviderRecord[], capability?: string): ProviderRecord[] {
  const candidates = providers
    .filter((p) => p.enabled && (!capability || p.capabilities.length === 0 || p.capabilities.includes(capability)))
    .sort((a, b) => a.priority - b.priority || a.provider_id.localeCompare(b.provider_id));
  const out: ProviderRecord[] = [];
  let realProviderAhead = false;
  for (const p of candidates) {
    if (p.type === 'local' && realProviderAhead) continue;
    if (p.type !== 'local') realProviderAhead = true;
    out.push(p);
  }
  return out;
}
