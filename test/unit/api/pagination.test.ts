import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, pageRequest } from '../../../shared/platform/api/pagination.js';
import { ApiError } from '../../../shared/platform/api/errors.js';

const secret = Buffer.alloc(32, 1);
const position = { pk: 'USERS', sk: '01JD0000000000000000000000', gsi1sk: 'x' };

function expectInvalid(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(400);
    expect((err as ApiError).code).toBe('invalid_cursor');
    return;
  }
  throw new Error('expected invalid_cursor');
}

describe('cursors', () => {
  it('round-trip a position within the same query scope', () => {
    const cursor = encodeCursor(position, 'users', secret)!;
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor, 'users', secret)).toEqual(position);
  });

  it('are null when there is no next page, and absent cursors decode to the first page', () => {
    expect(encodeCursor(undefined, 'users', secret)).toBeNull();
    expect(decodeCursor(undefined, 'users', secret)).toBeUndefined();
    expect(decodeCursor('', 'users', secret)).toBeUndefined();
  });

  it('refuse another scope, another secret, an edited payload or a malformed string', () => {
    const cursor = encodeCursor(position, 'audit:{"actor_id":"A"}', secret)!;
    expectInvalid(() => decodeCursor(cursor, 'audit:{"actor_id":"B"}', secret));
    expectInvalid(() => decodeCursor(cursor, 'audit:{"actor_id":"A"}', Buffer.alloc(32, 2)));
    const [payload, mac] = cursor.split('.');
    const edited = Buffer.from(JSON.stringify({ p: { ...position, sk: 'Z' }, s: 'audit:{"actor_id":"A"}' })).toString('base64url');
    expectInvalid(() => decodeCursor(`${edited}.${mac}`, 'audit:{"actor_id":"A"}', secret));
    for (const bad of [payload, `${payload}.`, `.${mac}`, `${cursor}.x`, 'garbage', '%%%.%%%']) {
      expectInvalid(() => decodeCursor(bad, 'audit:{"actor_id":"A"}', secret));
    }
  });

  it('refuse a correctly signed cursor whose payload is not a position', () => {
    const payload = Buffer.from(JSON.stringify({ p: 'not-an-object', s: 'users' })).toString('base64url');
    const mac = createHmac('sha256', secret).update(payload).digest('base64url');
    expectInvalid(() => decodeCursor(`${payload}.${mac}`, 'users', secret));
  });
});

describe('pageRequest', () => {
  const req = (cursor?: string) => ({ query: { cursor }, deps: { appSecret: async () => secret } });

  it('starts at the first page and signs the next cursor for the same list and filter', async () => {
    const first = await pageRequest(req(), 'agents', { status: 'active' });
    expect(first.startKey).toBeUndefined();
    const answer = first.respond({ items: [1, 2], lastKey: position });
    expect(answer.items).toEqual([1, 2]);
    expect(answer.next_cursor).toBe(encodeCursor(position, 'agents:{"status":"active"}', secret));
    const second = await pageRequest(req(answer.next_cursor!), 'agents', { status: 'active' });
    expect(second.startKey).toEqual(position);
    expect(second.respond({ items: [] }).next_cursor).toBeNull();
  });

  it('keeps the scopes the lists already use: the name alone, or the name and a string filter', async () => {
    expect((await pageRequest(req(), 'users')).respond({ items: [], lastKey: position }).next_cursor).toBe(encodeCursor(position, 'users', secret));
    expect((await pageRequest(req(), 'providers', '')).respond({ items: [], lastKey: position }).next_cursor).toBe(encodeCursor(position, 'providers:', secret));
  });

  it('refuses a cursor of another list or filter', async () => {
    const cursor = encodeCursor(position, 'agents:{"status":"active"}', secret)!;
    await expect(pageRequest(req(cursor), 'agents', { status: 'paused' })).rejects.toMatchObject({ status: 400, code: 'invalid_cursor' });
    await expect(pageRequest(req(cursor), 'users')).rejects.toMatchObject({ status: 400, code: 'invalid_cursor' });
  });
});
