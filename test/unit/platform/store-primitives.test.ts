import { describe, expect, it } from 'vitest';
import type { Store } from '../../../shared/platform/store/client.js';
import { buildUpdate } from '../../../shared/platform/store/update.js';
import {
  CONFLICT_ATTEMPTS,
  isConditionFailure,
  isTransactionConflict,
  retryOnConflict,
  updateVersioned,
  VersionConflictError,
} from '../../../shared/platform/store/conflicts.js';
import { addToWindow } from '../../../shared/platform/store/rate-limits.js';
import { windowAt } from '../../../shared/platform/window.js';
import { getItems } from '../../../shared/platform/store/batch-get.js';
import { writeItems } from '../../../shared/platform/store/batch-write.js';

/** A store whose client records the commands it is sent and answers with `answer`. */
function fakeStore(answer: (input: Record<string, unknown>) => unknown = () => ({})) {
  const sent: Record<string, unknown>[] = [];
  const store = {
    table: 't',
    doc: {
      send: async (command: { input: Record<string, unknown> }) => {
        sent.push(command.input);
        return answer(command.input);
      },
    },
  } as unknown as Store;
  return { store, sent };
}

describe('buildUpdate', () => {
  it('builds SET, ADD and REMOVE with generated placeholders, skipping undefined values', () => {
    const u = buildUpdate({ set: { status: 'done', note: null, skipped: undefined }, add: { runs: 1 }, remove: ['lease'] });
    expect(u.UpdateExpression).toBe('SET #u0 = :u0, #u1 = :u1 ADD #u2 :u2 REMOVE #u3');
    expect(u.ExpressionAttributeNames).toEqual({ '#u0': 'status', '#u1': 'note', '#u2': 'runs', '#u3': 'lease' });
    expect(u.ExpressionAttributeValues).toEqual({ ':u0': 'done', ':u1': null, ':u2': 1 });
    expect(u.ConditionExpression).toBeUndefined();
  });

  it('adds a version check and a caller condition with its own placeholders', () => {
    const u = buildUpdate({ set: { a: 1 }, condition: '#s = :active', names: { '#s': 'status' }, values: { ':active': 'active' }, expect: { expected: 3 } });
    expect(u.ConditionExpression).toBe('#s = :active AND #ver = :ver');
    expect(u.ExpressionAttributeNames).toMatchObject({ '#ver': 'version', '#s': 'status' });
    expect(u.ExpressionAttributeValues).toMatchObject({ ':ver': 3, ':active': 'active' });
    expect(buildUpdate({ add: { n: 1 }, expect: { attr: 'rev', expected: 0, orMissing: true } }).ConditionExpression).toBe('(attribute_not_exists(#ver) OR #ver = :ver)');
  });

  it('leaves out empty maps and refuses an empty update or a clashing placeholder', () => {
    const u = buildUpdate({ remove: ['x'] });
    expect(u.ExpressionAttributeValues).toBeUndefined();
    expect(() => buildUpdate({})).toThrow();
    expect(() => buildUpdate({ set: { a: 1 }, condition: ':u0 > 1', values: { ':u0': 1 } })).toThrow();
  });
});

describe('retryOnConflict', () => {
  it('tries again on a version conflict, up to the default number of attempts', async () => {
    let calls = 0;
    const result = await retryOnConflict(async (attempt) => {
      calls++;
      if (attempt < 3) throw new VersionConflictError();
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(calls).toBe(3);

    calls = 0;
    await expect(
      retryOnConflict(async () => {
        calls++;
        throw new VersionConflictError('the task');
      }),
    ).rejects.toThrow('the task changed while it was being updated');
    expect(calls).toBe(CONFLICT_ATTEMPTS);
  });

  it('throws any other error at once, and takes another conflict test', async () => {
    let calls = 0;
    await expect(
      retryOnConflict(async () => {
        calls++;
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(calls).toBe(1);
    calls = 0;
    const raced = Object.assign(new Error('raced'), { name: 'TransactionCanceledException', CancellationReasons: [{ Code: 'None' }, { Code: 'TransactionConflict' }] });
    await expect(
      retryOnConflict(
        async () => {
          calls++;
          throw raced;
        },
        { attempts: 2, isConflict: isTransactionConflict },
      ),
    ).rejects.toBe(raced);
    expect(calls).toBe(2);
  });
});

describe('DynamoDB error tests', () => {
  it('tell a failed condition from a lost transaction race', () => {
    const cancelled = (...codes: string[]) => ({ name: 'TransactionCanceledException', CancellationReasons: codes.map((Code) => ({ Code })) });
    expect(isConditionFailure({ name: 'ConditionalCheckFailedException' })).toBe(true);
    expect(isConditionFailure(cancelled('None', 'ConditionalCheckFailed'))).toBe(true);
    expect(isConditionFailure(cancelled('TransactionConflict'))).toBe(false);
    expect(isTransactionConflict(cancelled('TransactionConflict'))).toBe(true);
    expect(isTransactionConflict(cancelled('TransactionConflict', 'ConditionalCheckFailed'))).toBe(false);
    expect(isTransactionConflict({ name: 'TransactionConflictException' })).toBe(true);
  });
});

describe('updateVersioned', () => {
  it('sends one conditional update and turns a failed condition into VersionConflictError', async () => {
    const { store, sent } = fakeStore();
    await updateVersioned(store, { pk: 'A', sk: 'B' }, { expected: 2 }, { set: { version: 3 } });
    expect(sent[0]).toMatchObject({ TableName: 't', Key: { pk: 'A', sk: 'B' }, ConditionExpression: '#ver = :ver' });

    const failing = fakeStore(() => Promise.reject(Object.assign(new Error('x'), { name: 'ConditionalCheckFailedException' })));
    await expect(updateVersioned(failing.store, { pk: 'A' }, { expected: 2 }, { set: { a: 1 } }, 'the circuit')).rejects.toBeInstanceOf(VersionConflictError);
  });
});

describe('fixed windows', () => {
  it('align to the window length and end at the next boundary', () => {
    const w = windowAt(new Date('2024-01-01T00:01:30Z'), 60);
    expect(w.start).toBe(Date.parse('2024-01-01T00:01:00Z') / 1000);
    expect(w.resetAt.toISOString()).toBe('2024-01-01T00:02:00.000Z');
  });

  it('add to the window item, keep it a minute past its end and answer the new counts', async () => {
    const { store, sent } = fakeStore(() => ({ Attributes: { requests: 4, tokens: 10 } }));
    const out = await addToWindow(store, (start) => ({ pk: 'P', sk: `RATE#${start}` }), 60, new Date('2024-01-01T00:01:30Z'), { requests: 1 });
    const start = Date.parse('2024-01-01T00:01:00Z') / 1000;
    expect(sent[0]).toMatchObject({ Key: { pk: 'P', sk: `RATE#${start}` }, ReturnValues: 'ALL_NEW', UpdateExpression: 'SET #u0 = :u0 ADD #u1 :u1' });
    expect(sent[0].ExpressionAttributeValues).toEqual({ ':u0': start + 120, ':u1': 1 });
    expect(out.counts).toEqual({ requests: 4, tokens: 10 });
    expect(out.resetAt.toISOString()).toBe('2024-01-01T00:02:00.000Z');
  });
});

describe('getItems', () => {
  const key = (i: number) => ({ pk: `K#${i}`, sk: 'X' });

  it('reads unique keys 100 at a time, asks again for the keys left unprocessed, and forwards its options', async () => {
    let calls = 0;
    const { store, sent } = fakeStore((input) => {
      const request = (input.RequestItems as Record<string, { Keys: Record<string, string>[] }>).t;
      calls++;
      // The first answer leaves its last 10 keys unprocessed (DynamoDB does so under throttling).
      const [done, left] = calls === 1 ? [request.Keys.slice(0, -10), request.Keys.slice(-10)] : [request.Keys, []];
      return { Responses: { t: done.map((k) => ({ ...k, found: true })) }, UnprocessedKeys: left.length ? { t: { Keys: left } } : {} };
    });
    const keys = [...Array.from({ length: 150 }, (_, i) => key(i)), key(3), key(149)];
    const items = await getItems(store, keys, { consistent: true, projection: 'pk, sk' });
    expect(items.map((i) => i.pk).sort()).toEqual(Array.from({ length: 150 }, (_, i) => `K#${i}`).sort());
    const batches = sent.map((s) => (s.RequestItems as Record<string, { Keys: unknown[]; ConsistentRead?: boolean; ProjectionExpression?: string }>).t);
    expect(batches.map((b) => b.Keys.length)).toEqual([100, 10, 50]);
    expect(batches.every((b) => b.ConsistentRead === true && b.ProjectionExpression === 'pk, sk')).toBe(true);
  });

  it('fails when keys stay unprocessed round after round', async () => {
    const { store } = fakeStore((input) => ({ Responses: { t: [] }, UnprocessedKeys: input.RequestItems as Record<string, unknown> }));
    await expect(getItems(store, [key(1)])).rejects.toThrow(/unprocessed/);
  });
});

describe('writeItems', () => {
  const key = (i: number) => ({ pk: `K#${i}`, sk: 'X' });
  type Request = { PutRequest?: { Item: Record<string, unknown> }; DeleteRequest?: { Key: Record<string, unknown> } };

  it('writes puts and deletes 25 at a time and sends again what DynamoDB leaves unprocessed', async () => {
    let calls = 0;
    const { store, sent } = fakeStore((input) => {
      const requests = (input.RequestItems as Record<string, Request[]>).t;
      calls++;
      // The first answer leaves its last 5 requests unprocessed (DynamoDB does so under throttling).
      return { UnprocessedItems: calls === 1 ? { t: requests.slice(-5) } : {} };
    });
    const requests = [...Array.from({ length: 40 }, (_, i) => ({ put: { ...key(i), n: i } })), ...Array.from({ length: 20 }, (_, i) => ({ delete: key(100 + i) }))];
    await writeItems(store, requests);
    const batches = sent.map((s) => (s.RequestItems as Record<string, Request[]>).t);
    expect(batches.map((b) => b.length)).toEqual([25, 25, 10, 5]);
    const written = batches.flat();
    expect(new Set(written.filter((r) => r.PutRequest).map((r) => r.PutRequest!.Item.pk)).size).toBe(40);
    expect(new Set(written.filter((r) => r.DeleteRequest).map((r) => r.DeleteRequest!.Key.pk)).size).toBe(20);
    expect(batches[3]).toEqual(batches[0].slice(-5));
  });

  it('fails when requests stay unprocessed round after round, and sends nothing for no requests', async () => {
    const { store, sent } = fakeStore((input) => ({ UnprocessedItems: input.RequestItems }));
    await expect(writeItems(store, [{ put: key(1) }])).rejects.toThrow(/unprocessed/);
    sent.length = 0;
    await writeItems(store, []);
    expect(sent).toEqual([]);
  });
});
