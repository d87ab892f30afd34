import { keyPrefixesOf, type ChangeConsumer } from './platform/feed.js';
import { metricsConsumer } from './analytics/feed.js';
import { analyticsStreamConsumer } from './analytics/stream.js';

/** The consumers of the table's change feed, in the order each change is handed to them. */
export const CHANGE_CONSUMERS: readonly ChangeConsumer[] = [metricsConsumer, analyticsStreamConsumer];

/** Partition key prefixes of the items some consumer wants: the changes of every other item are dropped at the source. */
export const CHANGE_FEED_KEY_PREFIXES: readonly string[] = keyPrefixesOf(CHANGE_CONSUMERS);
