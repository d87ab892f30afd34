import type { ChangeConsumer } from '../platform/feed.js';
import { metricsStore } from './repo.js';
import { pointsOfChange } from './derive.js';

/**
 * The change feed's metrics consumer: every task, provider call, workflow run and step, login and
 * WebSocket connection the table records becomes metric points (`derive.ts`), each recorded once.
 */
export const metricsConsumer: ChangeConsumer = {
  name: 'metrics',
  // Counting commutes, and every point is recorded once by its source id: changes need no order.
  concurrency: 8,
  async handle(change, deps) {
    const points = pointsOfChange(change);
    if (!points.length) return;
    const store = metricsStore(deps);
    // Different metrics: different rollup items, no contention between them.
    await Promise.all(points.map((point) => store.record(point, deps.clock.now())));
  },
};
