import { describe, it, expect, beforeAll } from 'vitest';
import { call, type Session } from '../../support/client.js';
import { createAgent, createTask, customTask, getTask, registerLocalProvider, sessionAs, sessionsOf, tasksOf, waitForStatus } from './helpers.js';

const UNKNOWN_ID = '01JD0000000000000000000000';
const paths = (res: { body: any }) => (res.body.errors ?? []).map((e: any) => e.path).sort();

/**
 * Every task and agent route refuses bad input with the contract's status and error, and stores
 * nothing: the caller's task list stays empty (or the task unchanged), the agent list unchanged.
 */
describe('bad input on the task and agent routes', () => {
  let admin: Session;
  let user: Session;

  beforeAll(async () => {
    admin = await sessionAs('admin');
    user = await sessionAs('user');
  });

  describe('POST /api/v1/tasks and the execute routes', () => {
    it('refuses malformed bodies and stores no task', async () => {
      const cases: [unknown, number, string, string[]?][] = [
        [{ rawBody: '{"type": "custom",', headers: { 'content-type': 'application/json' } }, 400, 'invalid_json'],
        [{ rawBody: 'type=custom', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'unsupported_media_type'],
        [{ rawBody: JSON.stringify(customTask('x'.repeat(210 * 1024))), headers: { 'content-type': 'application/json' } }, 413, 'payload_too_large'],
        [{ body: {} }, 422, 'validation_error', ['payload', 'type']],
        [{ body: customTask('hi', { status: 'completed', cost_usd: 0, created_by: 'me' }) }, 422, 'validation_error', ['cost_usd', 'created_by', 'status']],
        [{ body: { type: 'pr_review', payload: { repository: 'acme/api', title: 'x', extra: 1 } } }, 422, 'validation_error', ['payload.diff', 'payload.extra']],
        [{ body: { type: 'refactor', payload: { goals: ['x'] } } }, 422, 'validation_error', ['payload.code']],
        [{ body: { type: 'deploy', payload: {} } }, 422, 'validation_error', ['type']],
        [{ body: customTask('hi', { priority: 11, max_attempts: 0, timeout_seconds: 901, max_cost_usd: -1 }) }, 422, 'validation_error', ['max_attempts', 'max_cost_usd', 'priority', 'timeout_seconds']],
        [{ body: customTask('hi', { tags: ['same', 'same'], metadata: { big: 'x'.repeat(9000) } }) }, 422, 'validation_error', ['metadata', 'tags']],
        [{ body: customTask('hi', { provider_id: 'no-such-provider' }) }, 422, 'validation_error', ['provider_id']],
        [{ body: customTask('hi', { agent_id: UNKNOWN_ID }) }, 422, 'validation_error', ['agent_id']],
        [{ body: customTask('hi', { agent_id: 'not-a-ulid' }) }, 422, 'validation_error', ['agent_id']],
      ];
      for (const [options, status, error, fields] of cases) {
        const res = await call('POST', '/api/v1/tasks', { token: user.token, ...(options as object) });
        expect(res.status, JSON.stringify(res.body)).toBe(status);
        expect(res.body.error).toBe(error);
        if (fields) expect(paths(res)).toEqual(fields);
      }
      const execute = await call('POST', '/api/v1/providers/execute', { token: user.token, body: customTask('hi', { wait_seconds: 26 }) });
      expect(execute.status).toBe(422);
      expect(paths(execute)).toEqual(['wait_seconds']);
      const batches: [unknown, string[]][] = [
        [{ items: [] }, ['items']],
        [{ items: Array.from({ length: 51 }, () => customTask('x')) }, ['items']],
        [{ items: [customTask('ok')], max_concurrency: 0 }, ['max_concurrency']],
        [{ items: [customTask('ok'), { type: 'custom', payload: {} }] }, ['items.1.payload.prompt']],
        [{ items: [customTask('ok', { provider_id: 'local' }), customTask('ok', { provider_id: 'no-such-provider' })] }, ['items.1.provider_id']],
      ];
      for (const [body, fields] of batches) {
        const res = await call('POST', '/api/v1/providers/execute/batch', { token: user.token, body });
        expect(res.status, JSON.stringify(res.body)).toBe(422);
        expect(paths(res)).toEqual(fields);
      }
      expect(await tasksOf(user)).toEqual([]);
    });

    it('refuses an agent and provider that do not agree, names the field, and stores no task', async () => {
      const other = await registerLocalProvider(admin);
      const agent = await createAgent(admin, { provider_id: 'local', quota: { window: 'daily', max_requests: 10 }, max_concurrency: 1 });
      const cases: [Record<string, unknown>, string[], RegExp][] = [
        [{ agent_id: agent.agent_id, provider_id: other }, ['agent_id'], new RegExp(`agent runs on provider local, not ${other}`)],
        [{ agent_id: agent.agent_id, provider_id: 'no-such-provider' }, ['agent_id', 'provider_id'], /no provider with this id/],
      ];
      for (const [routing, fields, message] of cases) {
        const res = await call('POST', '/api/v1/tasks', { token: user.token, body: customTask('hi', routing) });
        expect(res.status, JSON.stringify(res.body)).toBe(422);
        expect(paths(res)).toEqual(fields);
        expect(JSON.stringify(res.body.errors)).toMatch(message);
      }
      // The agent and provider that agree are taken.
      expect((await call('POST', '/api/v1/tasks', { token: user.token, body: customTask('hi', { agent_id: agent.agent_id, provider_id: 'local' }) })).status).toBe(201);
      const stored = await tasksOf(user);
      expect(stored.map((t: { agent_id: string }) => t.agent_id)).toEqual([agent.agent_id]);
    });

    it('refuses the call for a role without the permission and stores nothing', async () => {
      const viewer = await sessionAs('viewer');
      const res = await call('POST', '/api/v1/tasks', { token: viewer.token, body: customTask('hi') });
      expect(res.status).toBe(403);
      expect(await tasksOf(viewer)).toEqual([]);
    });
  });

  describe('GET /api/v1/tasks and the sessions list', () => {
    it('refuses malformed queries and foreign or edited cursors', async () => {
      for (const query of ['limit=0', 'limit=101', 'status=done', 'type=deploy', 'priority=0', 'created_after=yesterday', 'created_by=me', 'agent_id=x', 'provider_id=Bad%20Id', 'color=blue']) {
        const res = await call('GET', `/api/v1/tasks?${query}`, { token: user.token });
        expect(res.status, query).toBe(422);
        expect(res.body.error).toBe('validation_error');
      }
      const reversed = await call('GET', '/api/v1/tasks?created_after=2026-01-02T00:00:00Z&created_before=2026-01-01T00:00:00Z', { token: user.token });
      expect(reversed.status).toBe(422);
      expect(paths(reversed)).toEqual(['query.created_before']);
      const ancient = await call('GET', `/api/v1/tasks?created_after=0001-01-01T00:00:00Z&created_by=${user.userId}`, { token: user.token });
      expect(ancient.status).toBe(200);
      const edited = await call('GET', '/api/v1/tasks?cursor=eyJwIjp7fX0.forged', { token: user.token });
      expect(edited.status).toBe(400);
      expect(edited.body.error).toBe('invalid_cursor');
      const task = await createTask(user, customTask('for sessions', { provider_id: 'local' }));
      // The epoch is a time like any other (the id package's own maker took a time of 0 for "now", so this listed nothing).
      const sinceEpoch = await call('GET', `/api/v1/tasks?created_after=1970-01-01T00:00:00Z&created_by=${user.userId}`, { token: user.token });
      expect(sinceEpoch.status).toBe(200);
      expect(sinceEpoch.body.data.items.map((t: any) => t.task_id)).toContain(task.task_id);
      expect((await call('GET', `/api/v1/tasks/${task.task_id}/sessions?limit=0`, { token: user.token })).status).toBe(422);
      expect((await call('GET', `/api/v1/tasks/${task.task_id}/sessions?cursor=abc.def`, { token: user.token })).status).toBe(400);
      expect((await call('GET', `/api/v1/tasks/${UNKNOWN_ID}/sessions`, { token: user.token })).status).toBe(404);
      expect((await call('GET', '/api/v1/tasks/not-a-ulid', { token: user.token })).status).toBe(422);
      expect((await call('GET', `/api/v1/tasks/${UNKNOWN_ID}`, { token: user.token })).status).toBe(404);
    });
  });

  describe('changes to a task', () => {
    it('are refused with 404/409/422 and leave the task as it was', async () => {
      const slow = await registerLocalProvider(admin, { chunkDelayMs: 5000 });
      const { task_id } = await createTask(user, customTask('a slow one', { provider_id: slow }));
      const running = await waitForStatus(user, task_id, ['running']);

      const cases: [string, string, unknown, number, string][] = [
        ['PATCH', `/api/v1/tasks/${task_id}`, { status: 'completed' }, 422, 'validation_error'],
        ['PATCH', `/api/v1/tasks/${task_id}`, {}, 422, 'validation_error'],
        ['PATCH', `/api/v1/tasks/${task_id}`, { priority: 0 }, 422, 'validation_error'],
        ['PATCH', `/api/v1/tasks/${task_id}`, { priority: 2 }, 409, 'invalid_state'],
        ['DELETE', `/api/v1/tasks/${task_id}`, undefined, 409, 'invalid_state'],
        ['POST', `/api/v1/tasks/${task_id}/retry`, undefined, 409, 'invalid_state'],
        ['POST', `/api/v1/tasks/${task_id}/cancel`, { reason: 'x'.repeat(501) }, 422, 'validation_error'],
        ['POST', `/api/v1/tasks/${task_id}/cancel`, { force: true }, 422, 'validation_error'],
        ['PATCH', `/api/v1/tasks/${UNKNOWN_ID}`, { priority: 2 }, 404, 'not_found'],
        ['DELETE', `/api/v1/tasks/${UNKNOWN_ID}`, undefined, 404, 'not_found'],
        ['POST', `/api/v1/tasks/${UNKNOWN_ID}/retry`, undefined, 404, 'not_found'],
        ['POST', `/api/v1/tasks/${UNKNOWN_ID}/cancel`, undefined, 404, 'not_found'],
        ['DELETE', '/api/v1/tasks/not-a-ulid', undefined, 422, 'validation_error'],
      ];
      for (const [method, path, body, status, error] of cases) {
        const res = await call(method, path, { token: user.token, body });
        expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(status);
        expect(res.body.error).toBe(error);
      }
      const other = await sessionAs('user');
      for (const [method, path] of [['POST', `/api/v1/tasks/${task_id}/cancel`], ['DELETE', `/api/v1/tasks/${task_id}`], ['PATCH', `/api/v1/tasks/${task_id}`]]) {
        const res = await call(method, path, { token: other.token, body: method === 'PATCH' ? { priority: 1 } : undefined });
        // Another user's task is not theirs to see either: 404, as for an unknown id.
        expect(res.status, `${method} ${path}`).toBe(404);
      }
      const after = await getTask(user, task_id);
      expect(after).toMatchObject({ status: 'running', priority: running.priority, title: running.title, version: running.version });

      expect((await call('POST', `/api/v1/tasks/${task_id}/cancel`, { token: user.token })).status).toBe(200);
      await waitForStatus(user, task_id, ['cancelled']);
      const sessions = await sessionsOf(user, task_id);
      expect(sessions.length).toBeLessThanOrEqual(1);
    });
  });

  describe('agents', () => {
    it('refuse bad bodies, duplicates and non-admins, and store nothing', async () => {
      // Other files create agents meanwhile: what this test refuses carries a name of its own, looked for at the end.
      const refused = `refused-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
      const stored = async () => {
        const found: unknown[] = [];
        let cursor: string | undefined;
        do {
          const res = await call('GET', `/api/v1/agents?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token: admin.token });
          found.push(...res.body.data.items.filter((a: any) => a.name === refused));
          cursor = res.body.data.next_cursor ?? undefined;
        } while (cursor);
        return found;
      };
      const existing = await createAgent(admin, { provider_id: 'local', quota: { window: 'daily', max_requests: 10 }, max_concurrency: 1 });

      const cases: [unknown, number, string, string[]?][] = [
        [{}, 422, 'validation_error', ['max_concurrency', 'name', 'provider_id', 'quota']],
        [{ name: refused, provider_id: 'local', quota: { window: 'weekly' }, max_concurrency: 1 }, 422, 'validation_error', ['quota.window']],
        [{ name: refused, provider_id: 'local', quota: { window: 'hourly', max_requests: 0 }, max_concurrency: 1 }, 422, 'validation_error', ['quota.max_requests']],
        [{ name: refused, provider_id: 'local', quota: { window: 'hourly' }, max_concurrency: 1, used: 3 }, 422, 'validation_error', ['used']],
        [{ name: refused, provider_id: 'no-such-provider', quota: { window: 'hourly' }, max_concurrency: 1 }, 422, 'validation_error', ['provider_id']],
        [{ name: existing.name, provider_id: 'local', quota: { window: 'hourly' }, max_concurrency: 1 }, 409, 'conflict'],
      ];
      for (const [body, status, error, fields] of cases) {
        const res = await call('POST', '/api/v1/agents', { token: admin.token, body });
        expect(res.status, JSON.stringify(res.body)).toBe(status);
        expect(res.body.error).toBe(error);
        if (fields) expect(paths(res)).toEqual(fields);
      }
      const operator = await sessionAs('operator');
      const denied = await call('POST', '/api/v1/agents', { token: operator.token, body: { name: refused, provider_id: 'local', quota: { window: 'hourly' }, max_concurrency: 1 } });
      expect(denied.status).toBe(403);

      const other = await createAgent(admin, { provider_id: 'local', quota: { window: 'daily' }, max_concurrency: 1 });
      const updates: [string, unknown, number][] = [
        [existing.agent_id, {}, 422],
        [existing.agent_id, { max_concurrency: 0 }, 422],
        [existing.agent_id, { provider_id: 'other' }, 422],
        [existing.agent_id, { name: other.name }, 409],
        [UNKNOWN_ID, { enabled: false }, 404],
        ['not-a-ulid', { enabled: false }, 422],
      ];
      for (const [id, body, status] of updates) {
        const res = await call('PUT', `/api/v1/agents/${id}`, { token: admin.token, body });
        expect(res.status, `${id} ${JSON.stringify(body)}`).toBe(status);
      }
      const unchanged = await call('GET', `/api/v1/agents/${existing.agent_id}`, { token: admin.token });
      expect(unchanged.body.data).toMatchObject({ name: existing.name, max_concurrency: 1, enabled: true });
      expect((await call('DELETE', `/api/v1/agents/${UNKNOWN_ID}`, { token: admin.token })).status).toBe(404);
      expect((await call('GET', '/api/v1/agents?limit=0', { token: admin.token })).status).toBe(422);
      expect((await call('GET', '/api/v1/agents?enabled=maybe', { token: admin.token })).status).toBe(422);
      expect((await call('GET', `/api/v1/agents/${UNKNOWN_ID}`, { token: admin.token })).status).toBe(404);

      expect(await stored()).toEqual([]);
    });

    it('manage an agent end to end: its key is masked, never returned', async () => {
      const agent = await createAgent(admin, { provider_id: 'local', api_key: 'sk-agent-secret-key-9876', quota: { window: 'hourly', max_tokens: 1000 }, max_concurrency: 2 });
      const got = await call('GET', `/api/v1/agents/${agent.agent_id}`, { token: user.token });
      expect(got.body.data.api_key).toBe('****9876');
      expect(JSON.stringify(got.body)).not.toContain('sk-agent-secret');
      const updated = await call('PUT', `/api/v1/agents/${agent.agent_id}`, { token: admin.token, body: { enabled: false, api_key: null, priority: 90 } });
      expect(updated.status).toBe(200);
      expect(updated.body.data).toMatchObject({ enabled: false, api_key: null, priority: 90 });
      const disabledTask = await createTask(user, customTask('on a disabled agent', { agent_id: agent.agent_id }));
      const failed = await waitForStatus(user, disabledTask.task_id, ['failed', 'completed']);
      expect(failed.error).toMatchObject({ code: 'agent_disabled', retryable: false });
      expect((await call('DELETE', `/api/v1/agents/${agent.agent_id}`, { token: admin.token })).status).toBe(200);
      expect((await call('GET', `/api/v1/agents/${agent.agent_id}`, { token: admin.token })).status).toBe(404);
    });
  });
});
