import type { ChangeConsumer } from './platform/feed.js';
import { metricsConsumer } from './analytics/feed.js';
import { analyticsStreamConsumer } from './analytics/stream.js';

/** The consumers of the table's change feed, in the order each change is handed to them. */
export const CHANGE_CONSUMERS: readonly ChangeConsumer[] = [metricsConsumer, analyticsStreamConsumer];
