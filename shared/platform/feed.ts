/**
 * The change feed: the table's DynamoDB stream, read by one function on AWS and by the local runtime's
 * poller (`local/stream-poller.ts`), both handing batches in Lambda's `DynamoDBStreamEvent` shape to
 * `handleStreamEvent`. Consumers are plain functions over unmarshalled changes; each must be idempotent
 * (a record can be delivered again). The platform knows no area: the consumer list is `shared/change-feed.ts`.
 */
import type { AttributeValue as LambdaAttributeValue, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { Deps } from './runtime.js';

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
  /** Handles one change; throwing makes the batch fail from this record on (retried). */
  handle(change: Change, deps: Deps): Promise<void>;
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

/**
 * Hands each change, in order, to every consumer. At the first change a consumer fails on, it stops
 * and reports that record's sequence number: Lambda (and the local poller) retry the batch from it,
 * so nothing after it is skipped and nothing before it is handed over again.
 */
export async function handleStreamEvent(
  event: DynamoDBStreamEvent,
  deps: Deps,
  consumers: readonly ChangeConsumer[],
  onError: (consumer: string, change: Change, err: unknown) => void,
): Promise<DynamoDBBatchResponse> {
  for (const change of changesOf(event)) {
    for (const consumer of consumers) {
      try {
        await consumer.handle(change, deps);
      } catch (err) {
        onError(consumer.name, change, err);
        return { batchItemFailures: [{ itemIdentifier: change.sequenceNumber }] };
      }
    }
  }
  return { batchItemFailures: [] };
}
