import type { ChangeConsumer } from '../platform/feed.js';
import { metricsStore } from './repo.js';
import { METRIC_SOURCE_PREFIXES, pointsOfChange } from './derive.js';

/**
 * The change feed's metrics consumer: every task, provider call, workflow run and step, login and
 * WebSocket connection the table records becomes metric points (`derive.ts`), each recorded once.
 */
export const metricsConsumer: ChangeConsumer = {
  name: 'metrics',
  keyPrefixes: METRIC_SOURCE_PREFIXES,
  // Every point is recorded once by its source id, so a retried batch counts nothing twice; recording
  // the batch's points together adds once per rollup item instead of once per point.
  async handleBatch(changes, deps) {
    const points = changes.flatMap((change) => pointsOfChange(change));
    if (!points.length) return;
    await metricsStore(deps).recordMany(points, deps.clock.now());
  },
};
