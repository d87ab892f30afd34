import { BatchWriteCommand, type BatchWriteCommandOutput } from '@aws-sdk/lib-dynamodb';
import type { Store } from './client.js';

/** DynamoDB's limit of requests per BatchWriteItem. */
const REQUESTS_PER_BATCH = 25;
/** Rounds of unprocessed requests sent again (throttling) before the write fails. */
const MAX_ROUNDS = 8;
/** BatchWriteItem calls in flight at once. */
const CONCURRENCY = 4;

export type WriteRequest = { put: Record<string, unknown> } | { delete: Record<string, unknown> };

/**
 * Unconditional puts and deletes in as few BatchWriteItem calls as DynamoDB allows, a few at a time.
 * Requests DynamoDB leaves unprocessed (throttling) are sent again with a growing pause; a write that
 * still has some after `MAX_ROUNDS` rounds fails, so nothing is dropped silently. Each request stands
 * alone (no transaction): use it where every item is whole by itself and a retry may repeat it.
 */
export async function writeItems(store: Store, requests: readonly WriteRequest[]): Promise<void> {
  const batches: Record<string, unknown>[][] = [];
  for (let i = 0; i < requests.length; i += REQUESTS_PER_BATCH) {
    batches.push(requests.slice(i, i + REQUESTS_PER_BATCH).map((r) => ('put' in r ? { PutRequest: { Item: r.put } } : { DeleteRequest: { Key: r.delete } })));
  }
  const writeBatch = async (batch: Record<string, unknown>[]) => {
    let pending: Record<string, unknown>[] | undefined = batch;
    for (let round = 0; pending?.length; round++) {
      if (round >= MAX_ROUNDS) throw new Error(`BatchWriteItem left ${pending.length} request(s) unprocessed after ${MAX_ROUNDS} rounds`);
      if (round > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** round)));
      const out: BatchWriteCommandOutput = await store.doc.send(new BatchWriteCommand({ RequestItems: { [store.table]: pending as never } }));
      pending = out.UnprocessedItems?.[store.table] as Record<string, unknown>[] | undefined;
    }
  };
  for (let i = 0; i < batches.length; i += CONCURRENCY) await Promise.all(batches.slice(i, i + CONCURRENCY).map(writeBatch));
}
