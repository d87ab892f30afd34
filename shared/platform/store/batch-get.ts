import { BatchGetCommand, type BatchGetCommandOutput } from '@aws-sdk/lib-dynamodb';
import type { Store } from './client.js';

/** DynamoDB's limit of keys per BatchGetItem. */
const KEYS_PER_BATCH = 100;
/** Rounds of unprocessed keys tried again (throttling) before the read fails. */
const MAX_ROUNDS = 8;

/**
 * The items stored under `keys` (duplicates read once; missing items are absent from the answer), in as
 * few BatchGetItem calls as DynamoDB allows. Keys DynamoDB leaves unprocessed (throttling) are asked for
 * again with a growing pause; a read that still has some after `MAX_ROUNDS` rounds fails.
 */
export async function getItems(store: Store, keys: readonly Record<string, unknown>[], options: { consistent?: boolean; projection?: string } = {}): Promise<Record<string, unknown>[]> {
  const unique = [...new Map(keys.map((k) => [JSON.stringify(k), k])).values()];
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < unique.length; i += KEYS_PER_BATCH) {
    let pending: Record<string, unknown>[] | undefined = unique.slice(i, i + KEYS_PER_BATCH);
    for (let round = 0; pending?.length; round++) {
      if (round >= MAX_ROUNDS) throw new Error(`BatchGetItem left ${pending.length} key(s) unprocessed after ${MAX_ROUNDS} rounds`);
      if (round > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** round)));
      const res: BatchGetCommandOutput = await store.doc.send(
        new BatchGetCommand({
          RequestItems: {
            [store.table]: {
              Keys: pending,
              ...(options.consistent ? { ConsistentRead: true } : {}),
              ...(options.projection ? { ProjectionExpression: options.projection } : {}),
            },
          },
        }),
      );
      out.push(...(res.Responses?.[store.table] ?? []));
      pending = res.UnprocessedKeys?.[store.table]?.Keys;
    }
  }
  return out;
}
