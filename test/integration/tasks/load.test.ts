import { describe, it, expect, beforeAll } from 'vitest';
import { call, eventually, type Session } from '../../support/client.js';
import { customTask, sessionAs, sessionsOf, tasksOf } from './helpers.js';

const TASKS = 300;
const CONCURRENCY = 20;

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

describe(`${TASKS} tasks created ${CONCURRENCY} at a time`, () => {
  let user: Session;
  beforeAll(async () => {
    user = await sessionAs('user');
  });

  it('all finish, none is lost and none runs twice (one session each)', async () => {
    const ids = await pool(Array.from({ length: TASKS }, (_, i) => i), CONCURRENCY, async (i) => {
      const res = await call('POST', '/api/v1/tasks', { token: user.token, body: customTask(`load task ${i}: check the README for typos`, { provider_id: 'local', tags: ['load'] }) });
      expect(res.status).toBe(201);
      return res.body.data.task_id as string;
    });
    expect(new Set(ids).size).toBe(TASKS);

    const completed = await eventually(() => tasksOf(user, '&status=completed'), (items) => items.length === TASKS, 240_000, 1000);
    expect(new Set(completed.map((t) => t.task_id))).toEqual(new Set(ids));
    expect(completed.every((t) => t.attempts === 1 && t.tokens_out > 0)).toBe(true);

    const all = await tasksOf(user);
    expect(all).toHaveLength(TASKS);

    const sessionCounts = await pool(ids, CONCURRENCY, async (id) => (await sessionsOf(user, id)).length);
    expect(sessionCounts.reduce((a, b) => a + b, 0)).toBe(TASKS);
    expect(sessionCounts.every((n) => n === 1)).toBe(true);
  }, 600_000);
});
