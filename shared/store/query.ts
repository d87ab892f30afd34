import { QueryCommand, type QueryCommandInput, type QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import type { Store } from './client.js';

export interface PageQuery {
  index?: 'gsi1' | 'gsi2' | 'gsi3';
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

/**
 * One page of a Query. With a filter, DynamoDB's Limit counts items read before filtering, so read
 * on until the page is full; the position returned is that of the last item handed out.
 */
export async function queryPage<T>(store: Store, q: PageQuery): Promise<StorePage<T>> {
  const items: Record<string, unknown>[] = [];
  let startKey = q.startKey;
  let consumed = 0;
  let exhausted = false;
  while (items.length < q.limit) {
    const input: QueryCommandInput = {
      TableName: store.table,
      IndexName: q.index,
      KeyConditionExpression: q.keyCondition,
      ExpressionAttributeNames: q.names && Object.keys(q.names).length ? q.names : undefined,
      ExpressionAttributeValues: q.values,
      FilterExpression: q.filter,
      ScanIndexForward: q.ascending ?? false,
      ExclusiveStartKey: startKey,
      Limit: q.filter ? Math.max(q.limit * 2, 50) : q.limit + 1,
      ReturnConsumedCapacity: 'TOTAL',
    };
    const out = await store.doc.send(new QueryCommand(input));
    consumed += out.ConsumedCapacity?.CapacityUnits ?? 0;
    for (const item of out.Items ?? []) items.push(item);
    startKey = out.LastEvaluatedKey;
    if (!startKey) {
      exhausted = true;
      break;
    }
  }
  if (items.length <= q.limit && exhausted) return { items: items as T[], consumedCapacity: consumed };
  const page = items.slice(0, q.limit);
  const last = page[page.length - 1];
  return { items: page as T[], lastKey: keyOf(last, q.index), consumedCapacity: consumed };
}

function keyOf(item: Record<string, unknown>, index?: string): Record<string, unknown> {
  const key: Record<string, unknown> = { pk: item.pk, sk: item.sk };
  if (index) {
    key[`${index}pk`] = item[`${index}pk`];
    key[`${index}sk`] = item[`${index}sk`];
  }
  return key;
}

/** How many items a key condition matches, counted by DynamoDB (`Select: COUNT`), all pages. */
export async function countItems(
  store: Store,
  q: { index?: 'gsi1' | 'gsi2' | 'gsi3'; keyCondition: string; values: Record<string, unknown> },
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
