import type { Deps } from '../platform/runtime.js';
import { MetricsStore } from '../platform/metrics/store.js';

/** The metrics store with the configured raw retention. */
export function metricsStore(deps: Pick<Deps, 'store' | 'config'>): MetricsStore {
  return new MetricsStore(deps.store, { rawRetentionDays: deps.config.metricsRetentionDays });
}
