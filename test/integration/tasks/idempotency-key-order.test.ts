import { describe, it, expect } from 'vitest';
import { ulid } from 'ulid';
import { call, userWithRole } from '../../support/client.js';
import { canonicalJson } from '../../../shared/platform/api/middleware.js';

describe('Idempotency-Key compares bodies by content, not by key order', () => {
  it('canonical JSON sorts object keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: null } })).toBe(canonicalJson({ a: { c: null, d: [2, 1] }, b: 1 }));
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
  });

  it('replays POST /api/v1/tasks for the same body sent with its keys in another order', async () => {
    const user = await userWithRole('user');
    const key = ulid();
    const first = await call('POST', '/api/v1/tasks', {
      token: user.token,
      headers: { 'idempotency-key': key, 'content-type': 'application/json' },
      rawBody: '{"type":"custom","priority":3,"payload":{"prompt":"order does not matter","system":"x"}}',
    });
    expect(first.status).toBe(201);
    const second = await call('POST', '/api/v1/tasks', {
      token: user.token,
      headers: { 'idempotency-key': key, 'content-type': 'application/json' },
      rawBody: '{"payload":{"system":"x","prompt":"order does not matter"},"priority":3,"type":"custom"}',
    });
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.body.data.task_id).toBe(first.body.data.task_id);
  });
});
