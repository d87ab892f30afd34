import { streamConsumerHandler } from '../../shared/platform/feed.js';
import { CHANGE_CONSUMERS } from '../../shared/change-feed.js';

/**
 * The table's change feed (an event source mapping on AWS, `local/stream-poller.ts` locally): each
 * change goes to every consumer of `shared/change-feed.ts`; the first failure ends the batch there.
 */
export const handler = streamConsumerHandler('change feed', CHANGE_CONSUMERS);
