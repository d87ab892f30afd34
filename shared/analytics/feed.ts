import type { ChangeConsumer } from '../platform/feed.js';
import { metricsStore } from './repo.js';
import { pointsOfChange } from './derive.js';

/**
 * The change feed's metrics consumer: every task, provider call, workflow run and step, login and
 * WebSocket connection the table records becomes metric points (`derive.ts`), each recorded once.
 */
export const metricsConsumer: ChangeConsumer = {
  name: 'metrics',
  async handle(change, deps) {
    const points = pointsOfChange(change);
    if (!points.length) return;
    const store = metricsStore(deps);
    for (const point of points) await store.record(point, deps.clock.now());
  },
};
