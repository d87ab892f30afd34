import { beforeAll, describe, expect, inject, it } from 'vitest';
import { Store } from '../../../shared/platform/store/client.js';
import { WorkflowRepository } from '../../../shared/workflows/repo.js';
import { VersionConflictError as ConcurrentChangeError } from '../../../shared/platform/store/conflicts.js';
import { adminSession, call, userWithRole, type Session } from '../../support/client.js';
import { createWorkflow, step, uniqueName } from './helpers.js';

const UNKNOWN = '01JD0000000000000000000000';

const diamond = () => ({
  max_parallel: 3,
  steps: [step('a'), step('b', { depends_on: ['a'] }), step('c', { depends_on: ['a'] }), step('d', { depends_on: ['b', 'c'] })],
});

/** Every error validation knows, each with the definition that provokes it. */
const BAD_DEFINITIONS: Array<[code: string, definition: Record<string, unknown>, path: string]> = [
  ['cycle', { steps: [step('a', { depends_on: ['b'] }), step('b', { depends_on: ['a'] })] }, 'steps.0.depends_on'],
  ['unknown_dependency', { steps: [step('a', { depends_on: ['ghost'] })] }, 'steps.0.depends_on.0'],
  ['self_dependency', { steps: [step('a', { depends_on: ['a'] })] }, 'steps.0.depends_on.0'],
  ['duplicate_step_id', { steps: [step('a'), step('a')] }, 'steps.1.id'],
  ['unknown_type', { steps: [step('a', { type: 'deploy_to_prod' })] }, 'steps.0.type'],
  ['invalid_payload', { steps: [step('a', { payload: { prompt: 'x', extra: 1 } })] }, 'steps.0.payload.extra'],
  ['unknown_template_step', { steps: [step('a', { payload: { prompt: '{{steps.ghost.output}}' } })] }, 'steps.0.payload.prompt'],
  ['template_not_upstream', { steps: [step('a'), step('b', { payload: { prompt: '{{steps.a.output}}' } })] }, 'steps.1.payload.prompt'],
  ['invalid_template', { steps: [step('a', { payload: { prompt: '{{env.HOME}}' } })] }, 'steps.0.payload.prompt'],
  ['invalid_condition', { steps: [step('a'), step('b', { depends_on: ['a'], condition: 'steps.a.status ==' })] }, 'steps.1.condition'],
  ['invalid_condition', { steps: [step('a'), step('b', { depends_on: ['a'], condition: 'eval("1")' })] }, 'steps.1.condition'],
  ['too_many_steps', { steps: Array.from({ length: 201 }, (_, i) => step(`s${i}`)) }, 'steps'],
];

describe('workflow definitions', () => {
  let admin: Session;
  let owner: Session;
  let other: Session;
  let viewer: Session;
  let operator: Session;
  /** Only ever sends bad definitions: owns nothing. */
  let rejected: Session;
  /** Owns exactly the workflows of the pagination test. */
  let author: Session;

  beforeAll(async () => {
    admin = await adminSession();
    // Few logins: the login route is rate limited per IP, and every test file logs in from 127.0.0.1.
    [owner, other, viewer, operator, rejected, author] = await Promise.all([
      userWithRole('user', admin),
      userWithRole('user', admin),
      userWithRole('viewer', admin),
      userWithRole('operator', admin),
      userWithRole('user', admin),
      userWithRole('user', admin),
    ]);
  });

  it('creates a workflow (201) with its levels and critical path, and reads it back', async () => {
    const name = uniqueName('diamond');
    const res = await call('POST', '/api/v1/workflows', { token: owner.token, body: { name, description: 'review then test', ...diamond() } });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({
      name,
      description: 'review then test',
      version: 1,
      step_count: 4,
      levels: [['a'], ['b', 'c'], ['d']],
      critical_path: ['a', 'b', 'd'],
      created_by: owner.userId,
      definition: { max_parallel: 3, on_failure: 'fail_fast' },
    });
    const got = await call('GET', `/api/v1/workflows/${res.body.data.workflow_id}`, { token: viewer.token });
    expect(got.status).toBe(200);
    expect(got.body.data.definition.steps.map((s: { id: string }) => s.id)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('refuses a duplicate name (409, case-insensitive) and stores nothing more', async () => {
    const name = uniqueName('Unique');
    await createWorkflow(owner.token, { name, ...diamond() });
    const again = await call('POST', '/api/v1/workflows', { token: owner.token, body: { name: name.toUpperCase(), ...diamond() } });
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('conflict');
    const search = await call('GET', `/api/v1/workflows?search=${encodeURIComponent(name)}`, { token: owner.token });
    expect(search.body.data.items).toHaveLength(1);
  });

  it('validate answers errors, warnings, levels and the critical path without storing anything', async () => {
    const ok = await call('POST', '/api/v1/workflows/validate', {
      token: viewer.token,
      body: { name: 'x', variables: { unused: 1 }, steps: [step('a'), step('b', { depends_on: ['a', 'a'] })] },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.data).toMatchObject({ valid: true, errors: [], levels: [['a'], ['b']], critical_path: ['a', 'b'] });
    expect(ok.body.data.warnings.map((w: { code: string }) => w.code).sort()).toEqual(['duplicate_dependency', 'unused_variable']);

    const cyclic = await call('POST', '/api/v1/workflows/validate', {
      token: viewer.token,
      body: { name: 'x', steps: [step('a', { depends_on: ['c'] }), step('b', { depends_on: ['a'] }), step('c', { depends_on: ['b'] })] },
    });
    expect(cyclic.status).toBe(200);
    expect(cyclic.body.data).toMatchObject({ valid: false, levels: [], critical_path: [] });
    expect(cyclic.body.data.errors).toEqual([{ code: 'cycle', message: 'dependency cycle: a → c → b → a', path: 'steps.0.depends_on' }]);
  });

  it('a malformed definition is a 422 on validate too', async () => {
    const res = await call('POST', '/api/v1/workflows/validate', { token: viewer.token, body: { name: 'x', steps: [{ id: 'a' }], colour: 'red' } });
    expect(res.status).toBe(422);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(expect.arrayContaining(['steps.0.type', 'colour']));
  });

  it.each(BAD_DEFINITIONS)('create refuses %s with 422 and the error validate reports; nothing is stored', async (code, definition, path) => {
    const body = { name: uniqueName('bad'), ...definition };
    const validated = await call('POST', '/api/v1/workflows/validate', { token: rejected.token, body });
    expect(validated.status).toBe(200);
    expect(validated.body.data.errors).toContainEqual(expect.objectContaining({ code, path }));

    const res = await call('POST', '/api/v1/workflows', { token: rejected.token, body });
    expect(res.status).toBe(422);
    expect(res.body.error).toBe('validation_error');
    expect(res.body.errors).toEqual(validated.body.data.errors);

    const mine = await call('GET', `/api/v1/workflows?created_by=${rejected.userId}`, { token: rejected.token });
    expect(mine.body.data.items).toEqual([]);
  });

  it('PUT makes a new version; an invalid one is refused and the current version stays', async () => {
    const id = await createWorkflow(owner.token, diamond());
    const updated = await call('PUT', `/api/v1/workflows/${id}`, { token: owner.token, body: { name: uniqueName('v2'), steps: [step('only')] } });
    expect(updated.status).toBe(200);
    expect(updated.body.data).toMatchObject({ version: 2, step_count: 1, levels: [['only']] });

    const bad = await call('PUT', `/api/v1/workflows/${id}`, { token: owner.token, body: { name: 'v3', steps: [step('x', { depends_on: ['x'] })] } });
    expect(bad.status).toBe(422);
    expect(bad.body.errors[0]).toMatchObject({ code: 'self_dependency', path: 'steps.0.depends_on.0' });

    const current = await call('GET', `/api/v1/workflows/${id}`, { token: owner.token });
    expect(current.body.data.version).toBe(2);
    const first = await call('GET', `/api/v1/workflows/${id}?version=1`, { token: owner.token });
    expect(first.body.data).toMatchObject({ version: 1, step_count: 4 });
    expect((await call('GET', `/api/v1/workflows/${id}?version=3`, { token: owner.token })).status).toBe(404);
  });

  it('only the owner or workflows:manage_all changes, runs or deletes a workflow; another user does not even see it', async () => {
    const id = await createWorkflow(owner.token, diamond());
    const body = { name: uniqueName('theirs'), steps: [step('a')] };
    expect((await call('PUT', `/api/v1/workflows/${id}`, { token: other.token, body })).status).toBe(404);
    expect((await call('POST', `/api/v1/workflows/${id}/execute`, { token: other.token, body: {} })).status).toBe(404);
    expect((await call('DELETE', `/api/v1/workflows/${id}`, { token: other.token })).status).toBe(404);
    expect((await call('GET', `/api/v1/workflows/${id}`, { token: other.token })).status).toBe(404);
    expect((await call('GET', `/api/v1/workflows/${id}/executions`, { token: other.token })).status).toBe(404);
    expect((await call('GET', `/api/v1/workflows/${id}`, { token: viewer.token })).status).toBe(200);
    expect((await call('PUT', `/api/v1/workflows/${id}`, { token: operator.token, body })).status).toBe(200);
    expect((await call('DELETE', `/api/v1/workflows/${id}`, { token: operator.token })).status).toBe(200);
  });

  it('a delete racing a rename neither succeeds on the stale read nor leaves the new name claimed', async () => {
    // The shared runtime's table (see test/support/global-setup.ts).
    const repo = new WorkflowRepository(new Store({ tableName: 'supervisor', endpoint: inject('dynamodbEndpoint') }));
    const id = await createWorkflow(owner.token, diamond());
    const stale = (await repo.get(id))!;
    const renamed = uniqueName('renamed');
    expect((await call('PUT', `/api/v1/workflows/${id}`, { token: owner.token, body: { name: renamed, steps: [step('a')] } })).status).toBe(200);
    // DELETE read the workflow before the rename and deletes after it.
    await expect(repo.delete(stale)).rejects.toBeInstanceOf(ConcurrentChangeError);
    expect((await call('GET', `/api/v1/workflows/${id}`, { token: owner.token })).body.data).toMatchObject({ name: renamed, version: 2 });
    expect((await call('DELETE', `/api/v1/workflows/${id}`, { token: owner.token })).status).toBe(200);
    // The name is free again, and a second delete of the same workflow is a 404, not a 500.
    expect((await call('POST', '/api/v1/workflows', { token: owner.token, body: { name: renamed, steps: [step('a')] } })).status).toBe(201);
    await expect(repo.delete(stale)).rejects.toBeInstanceOf(ConcurrentChangeError);
    expect((await call('DELETE', `/api/v1/workflows/${id}`, { token: owner.token })).status).toBe(404);
  });

  it('unknown ids are 404, malformed ids 422', async () => {
    for (const [method, path] of [
      ['GET', `/api/v1/workflows/${UNKNOWN}`],
      ['PUT', `/api/v1/workflows/${UNKNOWN}`],
      ['DELETE', `/api/v1/workflows/${UNKNOWN}`],
      ['POST', `/api/v1/workflows/${UNKNOWN}/execute`],
      ['GET', `/api/v1/workflows/${UNKNOWN}/executions`],
      ['GET', `/api/v1/workflows/${UNKNOWN}/executions/${UNKNOWN}`],
      ['POST', `/api/v1/workflows/${UNKNOWN}/executions/${UNKNOWN}/cancel`],
    ] as const) {
      const body = method === 'PUT' ? { name: 'x', steps: [step('a')] } : method === 'POST' ? {} : undefined;
      const res = await call(method, path, { token: admin.token, body });
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    expect((await call('GET', '/api/v1/workflows/not-a-ulid', { token: admin.token })).status).toBe(422);
  });

  it('lists with cursor pagination and filters; a tampered cursor is a 400', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await createWorkflow(author.token, { name: uniqueName(`page${i}`), steps: [step('a')] }));
    const first = await call('GET', `/api/v1/workflows?created_by=${author.userId}&limit=2`, { token: viewer.token });
    expect(first.body.data.items.map((w: { workflow_id: string }) => w.workflow_id)).toEqual([ids[2], ids[1]]);
    expect(first.body.data.items[0]).not.toHaveProperty('definition');
    const second = await call('GET', `/api/v1/workflows?created_by=${author.userId}&limit=2&cursor=${first.body.data.next_cursor}`, { token: viewer.token });
    expect(second.body.data).toEqual({ items: [expect.objectContaining({ workflow_id: ids[0] })], next_cursor: null });
    const tampered = await call('GET', `/api/v1/workflows?created_by=${author.userId}&limit=2&cursor=${first.body.data.next_cursor}x`, { token: viewer.token });
    expect(tampered.status).toBe(400);
    const foreign = await call('GET', `/api/v1/workflows?limit=2&cursor=${first.body.data.next_cursor}`, { token: viewer.token });
    expect(foreign.status).toBe(400);
  });

  it('a run needs a value for every variable its steps use (422 naming it); nothing starts', async () => {
    const id = await createWorkflow(owner.token, { steps: [step('a', { payload: { prompt: 'Review {{variables.repo}}' } })] });
    const res = await call('POST', `/api/v1/workflows/${id}/execute`, { token: owner.token, body: {} });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: 'variables.repo', message: expect.any(String) }]);
    const bad = await call('POST', `/api/v1/workflows/${id}/execute`, { token: owner.token, body: { variables: { repo: { nested: true } } } });
    expect(bad.status).toBe(422);
    const list = await call('GET', `/api/v1/workflows/${id}/executions`, { token: owner.token });
    expect(list.body.data.items).toEqual([]);
  });

  it('health reports the state machine, the scheduler and stored counts', async () => {
    const res = await call('GET', '/api/v1/workflows/health', { token: viewer.token });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      status: 'healthy',
      state_machine: { status: 'healthy', error: null },
      scheduler: { status: 'healthy', error: null },
      running_executions: expect.any(Number),
      failed_last_24h: expect.any(Number),
      schedules: { active: expect.any(Number), overdue: expect.any(Number) },
    });
  });
});
