/**
 * The change feed: the table's DynamoDB stream, read by one function on AWS and by the local runtime's
 * poller (`local/stream-poller.ts`), both handing batches in Lambda's `DynamoDBStreamEvent` shape to
 * `handleStreamEvent`. Consumers are plain functions over unmarshalled changes; each must be idempotent
 * (a record can be delivered again). The platform knows no area: the consumer list is `shared/change-feed.ts`.
 */
import type { Context, AttributeValue as LambdaAttributeValue, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { logger, useLambdaContext } from './logger.js';
import { getDeps, type Deps } from './runtime.js';

/** One change of one item, images unmarshalled. */
export interface Change {
  /** The stream record's id: the same on every delivery of that record. */
  eventId: string;
  kind: 'INSERT' | 'MODIFY' | 'REMOVE';
  pk: string;
  sk: string;
  /** The item after the change (absent for REMOVE). */
  newImage?: Record<string, unknown>;
  /** The item before the change (absent for INSERT). */
  oldImage?: Record<string, unknown>;
  /** When the change was written (the stream's approximate creation time). */
  at: Date;
  sequenceNumber: string;
  /** A removal made by TTL (the stream names the DynamoDB service as its author). */
  byTtl: boolean;
}

export interface ChangeConsumer {
  name: string;
  /**
   * The partition key prefixes of the items whose changes it handles. The feed hands it nothing else,
   * and on AWS the event source mapping's filter drops the changes no consumer wants (its own writes
   * among them) before they reach the function.
   */
  keyPrefixes: readonly string[];
  /**
   * How many changes of a batch it may handle at once (default 1: in stream order). Above 1 only for a
   * consumer whose effects commute (counting), since changes to one item may then be handled out of order.
   */
  concurrency?: number;
  /** Handles one change; throwing makes the batch fail from this record on (retried). */
  handle?(change: Change, deps: Deps): Promise<void>;
  /**
   * Handles the whole batch at once (instead of `handle`), for a consumer that gains from batching and
   * is idempotent over it; throwing makes the whole batch fail (retried).
   */
  handleBatch?(changes: readonly Change[], deps: Deps): Promise<void>;
}

type Image = Record<string, LambdaAttributeValue> | undefined;
const toImage = (image: Image) => (image ? unmarshall(image as unknown as Record<string, AttributeValue>) : undefined);

/** The changes of a stream event, in stream order. */
export function changesOf(event: DynamoDBStreamEvent): Change[] {
  return event.Records.map((r) => {
    const keys = (toImage(r.dynamodb?.Keys) ?? {}) as { pk?: string; sk?: string };
    const created = r.dynamodb?.ApproximateCreationDateTime;
    return {
      eventId: r.eventID ?? r.dynamodb?.SequenceNumber ?? '',
      kind: (r.eventName ?? 'MODIFY') as Change['kind'],
      pk: String(keys.pk ?? ''),
      sk: String(keys.sk ?? ''),
      newImage: toImage(r.dynamodb?.NewImage),
      oldImage: toImage(r.dynamodb?.OldImage),
      at: created ? new Date(created * 1000) : new Date(),
      sequenceNumber: r.dynamodb?.SequenceNumber ?? '',
      byTtl: (r as { userIdentity?: { principalId?: string } }).userIdentity?.principalId === 'dynamodb.amazonaws.com',
    };
  });
}

export function wantsKey(consumer: Pick<ChangeConsumer, 'keyPrefixes'>, pk: string): boolean {
  return consumer.keyPrefixes.some((prefix) => pk.startsWith(prefix));
}

/**
 * Hands the batch's changes to every consumer (in order, or `concurrency` at a time). The first change
 * in stream order that a consumer failed on is reported: Lambda (and the local poller) retry the batch
 * from that record, so nothing after it is lost; a concurrent consumer may see some later changes again,
 * which its idempotence absorbs.
 */
export async function handleStreamEvent(
  event: DynamoDBStreamEvent,
  deps: Deps,
  consumers: readonly ChangeConsumer[],
  onError: (consumer: string, change: Change, err: unknown) => void,
): Promise<DynamoDBBatchResponse> {
  const changes = changesOf(event);
  let failedAt = changes.length;
  for (const consumer of consumers) {
    const wanted = (i: number) => wantsKey(consumer, changes[i].pk);
    if (consumer.handleBatch) {
      const batch = (from: number, to: number) => changes.slice(from, to).filter((c) => wantsKey(consumer, c.pk));
      try {
        const all = batch(0, failedAt);
        if (all.length) await consumer.handleBatch(all, deps);
      } catch {
        // Find the first change that fails on its own: the batch is retried from there, as Lambda would.
        for (let i = 0; i < failedAt; i++) {
          if (!wanted(i)) continue;
          try {
            await consumer.handleBatch([changes[i]], deps);
          } catch (err) {
            onError(consumer.name, changes[i], err);
            failedAt = i;
          }
        }
      }
      continue;
    }
    const handle = consumer.handle!.bind(consumer);
    const width = Math.max(1, consumer.concurrency ?? 1);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < failedAt; i = next++) {
        if (!wanted(i)) continue;
        try {
          await handle(changes[i], deps);
        } catch (err) {
          onError(consumer.name, changes[i], err);
          failedAt = Math.min(failedAt, i);
          if (width === 1) return;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(width, changes.length) }, worker));
  }
  return failedAt < changes.length ? { batchItemFailures: [{ itemIdentifier: changes[failedAt].sequenceNumber }] } : { batchItemFailures: [] };
}

/** Partition key prefixes of the items some consumer wants: the event source's filter (and the local poller's) drops the rest. */
export function keyPrefixesOf(consumers: readonly ChangeConsumer[]): string[] {
  return [...new Set(consumers.flatMap((c) => c.keyPrefixes))].sort();
}

/**
 * The Lambda handler of a function on the table's stream (an event source mapping on AWS, a
 * `local/stream-poller.ts` locally): each change goes to `consumers`; a failure is logged with its
 * record and the batch is retried from there.
 */
export function streamConsumerHandler(feed: string, consumers: readonly ChangeConsumer[]) {
  return async (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> => {
    useLambdaContext(context);
    const deps = await getDeps();
    return handleStreamEvent(event, deps, consumers, (consumer, change, err) =>
      logger.error(`${feed} consumer failed; the batch is retried from this record`, {
        consumer,
        pk: change.pk,
        sk: change.sk,
        sequence_number: change.sequenceNumber,
        error: err as Error,
      }),
    );
  };
}
