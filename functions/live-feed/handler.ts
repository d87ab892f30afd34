import { streamConsumerHandler } from '../../shared/platform/feed.js';
import { LIVE_CONSUMERS } from '../../shared/live-feed.js';

/**
 * The live feed: the table's stream read with no batching window (a second event source mapping on
 * AWS, a second `local/stream-poller.ts` locally), for the events users wait on (`LIVE_CONSUMERS`).
 */
export const handler = streamConsumerHandler('live feed', LIVE_CONSUMERS);
