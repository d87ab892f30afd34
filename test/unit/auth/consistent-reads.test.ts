import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../../shared/platform/store/client.js';
import { UserRepository } from '../../../shared/auth/repo.js';
import { ConnectionRepository } from '../../../shared/realtime/repo.js';

/**
 * DynamoDB reads are eventually consistent unless asked otherwise (DynamoDB Local is always
 * consistent, so only the command sent shows it). Reads that decide what a request does right after
 * a write must be strongly consistent:
 * - a user just registered logs in at once (a stale miss counts as a failed login);
 * - a user just updated is updated again (a stale `updated_at` fails the conditional write with 409),
 *   or deleted (stale roles would leave the admin counter wrong);
 * - a WebSocket client subscribes right after `$connect` wrote its connection (a stale miss drops it).
 */
const store = new Store({ tableName: 't', endpoint: 'http://127.0.0.1:1' });
const doc = mockClient(store.doc);
afterAll(() => doc.restore());

function getInputs() {
  return doc.commandCalls(GetCommand).map((c) => c.args[0].input);
}

describe('strongly consistent reads', () => {
  it('reads users by id and by login consistently', async () => {
    doc.reset();
    doc.on(GetCommand).resolves({ Item: { pk: 'x', sk: 'y', user_id: '01ARZ3NDEKTSV4RRFFQ69G5FAV', username: 'a' } });
    const users = new UserRepository(store);
    await users.get('01ARZ3NDEKTSV4RRFFQ69G5FAV');
    await users.findByLogin('someone@example.com');
    await users.findByLogin('someone');
    const inputs = getInputs();
    expect(inputs.length).toBe(5);
    for (const input of inputs) expect(input.ConsistentRead, JSON.stringify(input.Key)).toBe(true);
  });

  it('reads a WebSocket connection consistently', async () => {
    doc.reset();
    doc.on(GetCommand).resolves({});
    await new ConnectionRepository(store).get('abc=');
    expect(getInputs().map((i) => i.ConsistentRead)).toEqual([true]);
  });
});
