import { afterAll, describe, expect, inject, it } from 'vitest';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { ulid } from 'ulid';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { ensureTable } from '../../../local/dynamodb-local.js';
import { StreamPoller } from '../../../local/stream-poller.js';
import { Store } from '../../../shared/platform/store/client.js';
import { eventually } from '../../support/client.js';

/**
 * The local change-feed poller reads the stream when the runtime writes, not on a short timer: with
 * nothing written it waits (here: ten minutes), and a write through the runtime's store wakes it.
 */
const pollers: StreamPoller[] = [];
afterAll(async () => {
  for (const p of pollers) await p.stop();
});

describe('the local change-feed poller', () => {
  it('hands over a write made through the store at once, however long its quiet wait', async () => {
    const endpoint = inject('dynamodbEndpoint');
    const tableName = `poller${ulid().toLowerCase()}`;
    await ensureTable(endpoint, tableName);
    const store = new Store({ tableName, endpoint });
    const seen: string[] = [];
    const poller = new StreamPoller({
      endpoint,
      tableName,
      dataDir: null,
      log: () => undefined,
      quietPollMs: 600_000,
      batchingWindowMs: 0,
      keyPrefixes: ['TASK#'],
      handler: async (event: DynamoDBStreamEvent) => {
        for (const r of event.Records) seen.push(String(r.dynamodb?.Keys?.pk?.S));
        return { batchItemFailures: [] };
      },
    });
    pollers.push(poller);
    store.onWrite(() => poller.written());
    poller.start();
    // The first poll finds nothing; the poller then waits for a write.
    await new Promise((r) => setTimeout(r, 1500));

    for (const id of ['TASK#one', 'OTHER#filtered', 'TASK#two']) {
      await store.doc.send(new PutCommand({ TableName: tableName, Item: { pk: id, sk: 'X' } }));
    }
    const got = await eventually(async () => [...seen], (s) => s.length >= 2, 20_000);
    expect(got).toEqual(['TASK#one', 'TASK#two']);
  });
});
