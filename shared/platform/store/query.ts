import { QueryCommand, type QueryCommandInput, type QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import type { TableIndexName } from '../infra.js';
import type { Store } from './client.js';

export interface PageQuery {
  index?: TableIndexName;
  keyCondition: string;
  names?: Record<string, string>;
  values: Record<string, unknown>;
  filter?: string;
  limit: number;
  /** Newest first unless stated: sort keys are ULIDs or ISO timestamps. */
  ascending?: boolean;
  startKey?: Record<string, unknown>;
}

export interface StorePage<T> {
  items: T[];
  /** Where the next page starts; undefined when this was the last. */
  lastKey?: Record<string, unknown>;
  consumedCapacity: number;
}

/** Reads one page may take at most: with a selective filter a full page could mean reading a whole partition. */
export const MAX_READS_PER_PAGE = 5;

/**
 * One page of a Query. With a filter, DynamoDB's Limit counts items read before filtering, so it reads
 * on until the page is full, at most `maxReads` times: a page may then end short, its cursor continuing
 * the read where it stopped. The position handed out is that of the last item returned.
 */
export async function queryPage<T>(store: Store, q: PageQuery & { maxReads?: number }): Promise<StorePage<T>> {
  const maxReads = q.maxReads ?? MAX_READS_PER_PAGE;
  const items: Record<string, unknown>[] = [];
  let startKey = q.startKey;
  let consumedCapacity = 0;
  for (let read = 1; ; read++) {
    const need = q.limit - items.length;
    const input: QueryCommandInput = {
      TableName: store.table,
      IndexName: q.index,
      KeyConditionExpression: q.keyCondition,
      ExpressionAttributeNames: q.names && Object.keys(q.names).length ? q.names : undefined,
      ExpressionAttributeValues: q.values,
      FilterExpression: q.filter,
      ScanIndexForward: q.ascending ?? false,
      ExclusiveStartKey: startKey,
      Limit: q.filter ? Math.max(need * 2, 50) : need + 1,
      ReturnConsumedCapacity: 'TOTAL',
    };
    const out: QueryCommandOutput = await store.doc.send(new QueryCommand(input));
    consumedCapacity += out.ConsumedCapacity?.CapacityUnits ?? 0;
    const got = out.Items ?? [];
    if (got.length > need) {
      items.push(...got.slice(0, need));
      return { items: items as T[], lastKey: keyOf(items[items.length - 1], q.index), consumedCapacity };
    }
    items.push(...got);
    startKey = out.LastEvaluatedKey;
    if (!startKey) return { items: items as T[], consumedCapacity };
    if (items.length === q.limit || read >= maxReads) return { items: items as T[], lastKey: startKey, consumedCapacity };
  }
}

function keyOf(item: Record<string, unknown>, index?: string): Record<string, unknown> {
  const key: Record<string, unknown> = { pk: item.pk, sk: item.sk };
  if (index) {
    key[`${index}pk`] = item[`${index}pk`];
    key[`${index}sk`] = item[`${index}sk`];
  }
  return key;
}

/** Every item a key condition matches, in sort-key order, all pages (for partitions known to stay small or bounded by the condition). */
export async function queryAll(
  store: Store,
  q: { keyCondition: string; values: Record<string, unknown>; consistent?: boolean },
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const out: QueryCommandOutput = await store.doc.send(
      new QueryCommand({ TableName: store.table, KeyConditionExpression: q.keyCondition, ExpressionAttributeValues: q.values, ConsistentRead: q.consistent, ExclusiveStartKey: startKey }),
    );
    items.push(...(out.Items ?? []));
    startKey = out.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/** How many items a key condition matches, counted by DynamoDB (`Select: COUNT`), all pages. */
export async function countItems(
  store: Store,
  q: { index?: TableIndexName; keyCondition: string; values: Record<string, unknown> },
): Promise<number> {
  let count = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const out: QueryCommandOutput = await store.doc.send(
      new QueryCommand({
        TableName: store.table,
        IndexName: q.index,
        KeyConditionExpression: q.keyCondition,
        ExpressionAttributeValues: q.values,
        Select: 'COUNT',
        ExclusiveStartKey: startKey,
      }),
    );
    count += out.Count ?? 0;
    startKey = out.LastEvaluatedKey;
  } while (startKey);
  return count;
}
