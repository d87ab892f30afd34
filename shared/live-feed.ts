import { keyPrefixesOf, type ChangeConsumer } from './platform/feed.js';
import { taskEventsConsumer } from './tasks/live.js';
import { executionEventsConsumer } from './workflows/live.js';

/**
 * The consumers of the live feed: the table's stream read as soon as there are records (`LIVE_FEED`),
 * for the events users wait on. (The metrics consumers, which gain from large batches, are `change-feed.ts`.)
 */
export const LIVE_CONSUMERS: readonly ChangeConsumer[] = [taskEventsConsumer, executionEventsConsumer];

/** Partition key prefixes of the items some live consumer wants. */
export const LIVE_FEED_KEY_PREFIXES: readonly string[] = keyPrefixesOf(LIVE_CONSUMERS);
