/**
 * A schedule runs under its owner's id: once the owner is deleted, deactivated or loses
 * workflows:execute, its firings start nothing, are recorded as skipped, and the schedule is paused
 * with a reason the API shows. Against a local runtime of this file's own, driven by a ManualClock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ulid } from 'ulid';
import '../../../local/quiet-sdk.js';
import { startLocalRuntime, type LocalRuntime } from '../../../local/runtime.js';
import { ManualClock } from '../../../local/scheduler.js';
import { AuthService } from '../../../shared/auth/service.js';
import { permissionsOf, type Role } from '../../../shared/platform/permissions.js';
import type { Principal } from '../../../shared/platform/principal.js';
import { UserRepository } from '../../../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../../../shared/auth/sessions-repo.js';
import { ScheduleRepository } from '../../../shared/schedules/repo.js';
import { schedulerNameOf } from '../../../shared/schedules/schedule.js';
import { createSchedule } from '../../../shared/schedules/service.js';
import { checkResponse } from '../../support/contract.js';

const ADMIN = { username: 'owner-test-admin', password: 'owner-test-admin-password' };
const MINUTE = 60_000;

let runtime: LocalRuntime;
let clock: ManualClock;
let token: string;
let workflowId: string;

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${runtime.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  await checkResponse(method, res.url, res.status, res.headers.get('content-type') ?? undefined, text);
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

function auth() {
  const deps = runtime.deps;
  return new AuthService(deps, { users: new UserRepository(deps.store), sessions: new SessionRepository(deps.store), attempts: new LoginAttemptRepository(deps.store) });
}

/** An operator (schedules:manage, workflows:execute) and an active schedule of theirs. */
async function ownedSchedule(userId?: string) {
  const roles: Role[] = ['operator'];
  const user = userId ? undefined : await auth().createUser({ username: `owner-${ulid().toLowerCase()}`, password: 'a-long-enough-password', roles });
  const owner: Principal = { userId: user?.user_id ?? userId!, username: user?.username ?? 'ghost', roles, permissions: permissionsOf(roles), sessionId: 'in-process' };
  const schedule = await createSchedule(runtime.deps, owner, { workflow_id: workflowId, name: 'owned', cron_expression: '*/5 * * * *', timezone: 'UTC', overlap: 'allow', enabled: true });
  return { owner, schedule };
}

const getSchedule = async (id: string) => (await api('GET', `/api/v1/workflows/schedules/${id}`)).body.data;
const executionsOf = async (scheduleId: string) =>
  ((await api('GET', `/api/v1/workflows/${workflowId}/executions`)).body.data.items as Array<{ schedule_id: string | null }>).filter((e) => e.schedule_id === scheduleId);

async function tickAt(at: string | Date) {
  clock.set(at);
  await runtime.scheduler.tick();
}

/** The firing at the schedule's next run: skipped, nothing started, the schedule paused with `reason`. */
async function expectSkippedAndPaused(schedule: { schedule_id: string; next_run_at: string | null }, reason: string) {
  if (!schedule.next_run_at) throw new Error('the schedule has no next run');
  await tickAt(schedule.next_run_at);
  const firings = await new ScheduleRepository(runtime.deps.store).firings(schedule.schedule_id, 10);
  expect(firings).toEqual([expect.objectContaining({ scheduled_for: schedule.next_run_at, outcome: 'skipped', execution_id: null, reason: expect.stringContaining(reason) })]);
  expect(await executionsOf(schedule.schedule_id)).toEqual([]);
  const after = await getSchedule(schedule.schedule_id);
  expect(after).toMatchObject({ status: 'paused', paused_reason: reason, runs: 0, skipped_runs: 1, last_outcome: 'skipped', next_run_at: null });
  expect(runtime.scheduler.get(schedulerNameOf(schedule.schedule_id))).toMatchObject({ enabled: false });
  // Later due instants pass without a firing.
  await tickAt(new Date(Date.parse(schedule.next_run_at) + 5 * MINUTE));
  expect(await new ScheduleRepository(runtime.deps.store).firings(schedule.schedule_id, 10)).toHaveLength(1);
}

beforeAll(async () => {
  clock = new ManualClock(Math.floor(Date.now() / MINUTE) * MINUTE - MINUTE + 5_000);
  runtime = await startLocalRuntime({
    // No analytics here: the table needs no stream (every write to a table with one costs DynamoDB Local more).
    changeFeed: false,
    port: 0,
    dataDir: null,
    log: () => undefined,
    clock,
    dynamodbEndpoint: inject('dynamodbEndpoint'),
    tableName: `schedule-owners-${ulid().toLowerCase()}`,
    workflowWaitScale: 0.1,
  });
  await auth().createUser({ ...ADMIN, roles: ['admin'] });
  const login = await fetch(`${runtime.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) });
  const loginText = await login.text();
  await checkResponse('POST', login.url, login.status, login.headers.get('content-type') ?? undefined, loginText);
  token = (JSON.parse(loginText) as { data: { access_token: string } }).data.access_token;
  const wf = await api('POST', '/api/v1/workflows', { name: `owned-${ulid().toLowerCase()}`, steps: [{ id: 'only', type: 'custom', provider_id: 'local', payload: { prompt: 'hello' } }] });
  expect(wf.status, JSON.stringify(wf.body)).toBe(201);
  workflowId = wf.body.data.workflow_id;
});

afterAll(async () => {
  await runtime?.stop();
});

describe('a schedule whose owner may no longer run it', () => {
  it('still fires while its owner may run it, and shows no paused_reason', async () => {
    const { schedule } = await ownedSchedule();
    expect(schedule).toMatchObject({ status: 'active', paused_reason: null });
    await tickAt(schedule.next_run_at!);
    expect(await getSchedule(schedule.schedule_id)).toMatchObject({ status: 'active', runs: 1, last_outcome: 'started', paused_reason: null });
  });

  it('owner demoted to viewer (no workflows:execute): the firing is skipped and the schedule paused', async () => {
    const { owner, schedule } = await ownedSchedule();
    expect((await api('PUT', `/auth/users/${owner.userId}`, { roles: ['viewer'] })).status).toBe(200);
    await expectSkippedAndPaused(schedule, 'the owner no longer holds workflows:execute');
  });

  it('owner deactivated: the firing is skipped and the schedule paused', async () => {
    const { owner, schedule } = await ownedSchedule();
    expect((await api('PUT', `/auth/users/${owner.userId}`, { is_active: false })).status).toBe(200);
    await expectSkippedAndPaused(schedule, 'the owner account is deactivated');
  });

  it('owner gone without the delete path having paused it: the firing is skipped and the schedule paused', async () => {
    const { schedule } = await ownedSchedule(ulid());
    await expectSkippedAndPaused(schedule, 'the owner account was deleted');
  });

  it('deleting the owner pauses their schedules at once, with the reason; a resume by an admin fires again only if allowed', async () => {
    const { owner, schedule } = await ownedSchedule();
    const other = await ownedSchedule();
    expect((await api('DELETE', `/auth/users/${owner.userId}`)).status).toBe(200);
    const after = await getSchedule(schedule.schedule_id);
    expect(after).toMatchObject({ status: 'paused', paused_reason: 'the owner account was deleted', next_run_at: null, upcoming_runs: [] });
    expect(runtime.scheduler.get(schedulerNameOf(schedule.schedule_id))).toMatchObject({ enabled: false });
    // Another user's schedule is untouched.
    expect(await getSchedule(other.schedule.schedule_id)).toMatchObject({ status: 'active', paused_reason: null });

    await tickAt(schedule.next_run_at!);
    expect(await new ScheduleRepository(runtime.deps.store).firings(schedule.schedule_id, 10)).toEqual([]);
    expect(await executionsOf(schedule.schedule_id)).toEqual([]);

    // An admin resumes it: the reason goes; its next firing finds the owner gone and pauses it again.
    const resumed = await api('POST', `/api/v1/workflows/schedules/${schedule.schedule_id}/resume`);
    expect(resumed.body.data).toMatchObject({ status: 'active', paused_reason: null });
    await expectSkippedAndPaused(resumed.body.data, 'the owner account was deleted');
  });
});
