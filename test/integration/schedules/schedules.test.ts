/**
 * Schedules against a local runtime of this file's own, driven by a ManualClock: the LocalScheduler
 * fires exactly when the clock reaches a firing and `tick()` is called, through the real schedule-fire
 * handler, which starts real runs on the state machine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ulid } from 'ulid';
import '../../../local/quiet-sdk.js';
import { startLocalRuntime, type LocalRuntime } from '../../../local/runtime.js';
import { ManualClock } from '../../../local/scheduler.js';
import { AuthService } from '../../../shared/auth/service.js';
import { permissionsOf } from '../../../shared/platform/permissions.js';
import type { Principal } from '../../../shared/platform/principal.js';
import { UserRepository } from '../../../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../../../shared/auth/sessions-repo.js';
import { ScheduleRepository } from '../../../shared/schedules/repo.js';
import { schedulerNameOf } from '../../../shared/schedules/schedule.js';
import { createSchedule, FIRING_TAKEOVER_SECONDS, FiringInProgressError } from '../../../shared/schedules/service.js';
import { createWorkflow as createWorkflowService, startExecution } from '../../../shared/workflows/service.js';
import { removeSchedule } from '../../../shared/schedules/service.js';
import { ExecutionRepository } from '../../../shared/workflows/repo.js';
import { VersionConflictError as ConcurrentChangeError } from '../../../shared/platform/store/conflicts.js';
import { eventually } from '../../support/client.js';
import { checkResponse } from '../../support/contract.js';

const ADMIN = { username: 'schedule-admin', password: 'schedule-admin-password' };
const MINUTE = 60_000;

let runtime: LocalRuntime;
let clock: ManualClock;
const tableName = `schedules-${ulid().toLowerCase()}`;
let token: string;
let principal: Principal;

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

async function newWorkflow(steps: unknown[] = [{ id: 'only', type: 'custom', provider_id: 'local', payload: { prompt: 'Nightly summary of {{variables.repo}}' } }]) {
  const res = await api('POST', '/api/v1/workflows', { name: `scheduled-${ulid().toLowerCase()}`, variables: { repo: 'api' }, steps });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.data.workflow_id as string;
}

async function newSchedule(workflowId: string, extra: Record<string, unknown> = {}) {
  const res = await api('POST', '/api/v1/workflows/schedules', { workflow_id: workflowId, name: 'every five minutes', cron_expression: '*/5 * * * *', timezone: 'UTC', ...extra });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.data;
}

const getSchedule = async (id: string) => (await api('GET', `/api/v1/workflows/schedules/${id}`)).body.data;
const firingsOf = (scheduleId: string) => runtime.scheduler.firings().filter((f) => f.name === schedulerNameOf(scheduleId));

/** Moves the clock to `at` and lets the scheduler fire what is due. */
async function tickAt(at: string | Date) {
  clock.set(at);
  await runtime.scheduler.tick();
}

beforeAll(async () => {
  // Just behind real time: access tokens (issued by the manual clock) are checked against the real one.
  clock = new ManualClock(Math.floor(Date.now() / MINUTE) * MINUTE - MINUTE + 5_000);
  runtime = await startLocalRuntime({
    // No analytics here: the table needs no stream (every write to a table with one costs DynamoDB Local more).
    changeFeed: false,
    port: 0,
    dataDir: null,
    log: () => undefined,
    clock,
    dynamodbEndpoint: inject('dynamodbEndpoint'),
    tableName,
    workflowWaitScale: 0.1,
  });
  const deps = runtime.deps;
  const user = await new AuthService(deps, {
    users: new UserRepository(deps.store),
    sessions: new SessionRepository(deps.store),
    attempts: new LoginAttemptRepository(deps.store),
  }).createUser({ ...ADMIN, roles: ['admin'] });
  principal = { userId: user.user_id, username: user.username, roles: ['admin'], permissions: permissionsOf(['admin']), sessionId: 'in-process' };
  const login = await fetch(`${runtime.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) });
  const loginText = await login.text();
  await checkResponse('POST', login.url, login.status, login.headers.get('content-type') ?? undefined, loginText);
  token = (JSON.parse(loginText) as { data: { access_token: string } }).data.access_token;
});

afterAll(async () => {
  await runtime?.stop();
});

describe('schedules', () => {
  it('creates a schedule kept in step with the Scheduler, and refuses a bad cron or time zone naming the field', async () => {
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId, { cron_expression: '30 9 * * MON-FRI', timezone: 'Europe/Paris', variables: { repo: 'web' } });
    expect(schedule).toMatchObject({ status: 'active', overlap: 'skip', schedule_expression: 'cron(30 9 ? * 2-6 *)', runs: 0, skipped_runs: 0, last_run_at: null });
    expect(schedule.upcoming_runs[0]).toBe(schedule.next_run_at);
    expect(runtime.scheduler.get(schedulerNameOf(schedule.schedule_id))).toMatchObject({ cron: '30 9 * * MON-FRI', timezone: 'Europe/Paris', enabled: true });

    for (const [field, body] of [
      ['cron_expression', { cron_expression: '0 25 * * *', timezone: 'UTC' }],
      ['cron_expression', { cron_expression: '0 9 * *', timezone: 'UTC' }],
      ['timezone', { cron_expression: '0 9 * * *', timezone: 'Europe/Atlantis' }],
    ] as const) {
      const res = await api('POST', '/api/v1/workflows/schedules', { workflow_id: workflowId, name: 'bad', ...body });
      expect(res.status).toBe(422);
      expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual([field]);
    }
    const update = await api('PUT', `/api/v1/workflows/schedules/${schedule.schedule_id}`, { timezone: 'Nowhere/City' });
    expect(update.status).toBe(422);
    expect(update.body.errors[0].path).toBe('timezone');
    expect(await getSchedule(schedule.schedule_id)).toMatchObject({ timezone: 'Europe/Paris', next_run_at: schedule.next_run_at, updated_at: schedule.updated_at });
    expect((await api('POST', '/api/v1/workflows/schedules', { workflow_id: '01JD0000000000000000000000', name: 'x', cron_expression: '* * * * *' })).status).toBe(404);
    const listed = await api('GET', `/api/v1/workflows/schedules?workflow_id=${workflowId}`);
    expect(listed.body.data.items.map((s: { schedule_id: string }) => s.schedule_id)).toEqual([schedule.schedule_id]);
  });

  it('fires at the right minute: not a second before, then starts a run and moves to the next one', async () => {
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId);
    const due = Date.parse(schedule.next_run_at);
    expect(new Date(due).getUTCMinutes() % 5).toBe(0);

    await tickAt(new Date(due - 1000));
    expect(firingsOf(schedule.schedule_id)).toEqual([]);

    await tickAt(new Date(due));
    expect(firingsOf(schedule.schedule_id)).toEqual([{ name: schedulerNameOf(schedule.schedule_id), scheduledTime: new Date(due).toISOString().replace('.000Z', 'Z'), attempts: 1, ok: true }]);
    const after = await getSchedule(schedule.schedule_id);
    expect(after).toMatchObject({ runs: 1, last_outcome: 'started', last_run_at: new Date(due).toISOString(), next_run_at: new Date(due + 5 * MINUTE).toISOString() });

    const run = await eventually(
      () => api('GET', `/api/v1/workflows/${workflowId}/executions/${after.last_execution_id}`),
      (r) => r.body.data.status === 'completed',
    );
    expect(run.body.data).toMatchObject({ trigger: 'schedule', schedule_id: schedule.schedule_id, triggered_by: 'schedule:every five minutes', variables: { repo: 'api' } });
    const firings = await new ScheduleRepository(runtime.deps.store).firings(schedule.schedule_id, 10);
    expect(firings).toEqual([expect.objectContaining({ scheduled_for: new Date(due).toISOString(), outcome: 'started', execution_id: after.last_execution_id })]);
  });

  it('a redelivered firing starts nothing new', async () => {
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId, { cron_expression: '0 * * * *' });
    const { handler } = await import('../../../functions/schedule-fire/handler.js');
    const payload = { schedule_id: schedule.schedule_id, scheduled_time: schedule.next_run_at.replace('.000Z', 'Z') };
    clock.set(schedule.next_run_at);
    expect(await handler(payload)).toMatchObject({ outcome: 'started' });
    expect(await handler(payload)).toEqual({ outcome: 'duplicate' });
    expect((await getSchedule(schedule.schedule_id)).runs).toBe(1);
  });

  it('pause stops firings; resume starts from now without a burst of missed runs; trigger runs now as manual', async () => {
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId);
    const paused = await api('POST', `/api/v1/workflows/schedules/${schedule.schedule_id}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body.data).toMatchObject({ status: 'paused', next_run_at: null, upcoming_runs: [] });
    expect(runtime.scheduler.nextRunOf(schedulerNameOf(schedule.schedule_id))).toBeNull();

    // Three due instants pass while paused.
    const firstDue = Date.parse(schedule.next_run_at);
    for (let i = 0; i < 3; i++) await tickAt(new Date(firstDue + i * 5 * MINUTE));
    expect(firingsOf(schedule.schedule_id)).toEqual([]);

    clock.set(firstDue + 12 * MINUTE);
    const resumed = await api('POST', `/api/v1/workflows/schedules/${schedule.schedule_id}/resume`);
    expect(resumed.body.data).toMatchObject({ status: 'active', next_run_at: new Date(firstDue + 15 * MINUTE).toISOString() });
    await runtime.scheduler.tick();
    expect(firingsOf(schedule.schedule_id)).toEqual([]);
    await tickAt(new Date(firstDue + 15 * MINUTE));
    expect(firingsOf(schedule.schedule_id)).toHaveLength(1);

    const triggered = await api('POST', `/api/v1/workflows/schedules/${schedule.schedule_id}/trigger`);
    expect(triggered.status).toBe(202);
    expect(triggered.body.data).toMatchObject({ trigger: 'manual', schedule_id: schedule.schedule_id, triggered_by: ADMIN.username });
    const after = await getSchedule(schedule.schedule_id);
    expect(after).toMatchObject({ runs: 2, last_execution_id: triggered.body.data.execution_id, last_outcome: 'started' });
  });

  it('overlap "skip" records a skip while the previous run is still going; "allow" starts another', async () => {
    const register = await api('POST', `/api/v1/providers/slow-${ulid().toLowerCase().slice(-8)}/register`, { type: 'local', name: 'slow', settings: { chunk_delay_ms: 1000 } });
    expect(register.status).toBe(201);
    const workflowId = await newWorkflow([{ id: 'long', type: 'custom', provider_id: register.body.data.provider_id, payload: { prompt: 'a long job' } }]);
    const skip = await newSchedule(workflowId, { cron_expression: '* * * * *', overlap: 'skip' });
    const allow = await newSchedule(workflowId, { cron_expression: '* * * * *', overlap: 'allow' });
    const first = Date.parse(skip.next_run_at);
    await tickAt(new Date(first));
    const afterFirst = await getSchedule(skip.schedule_id);
    expect(afterFirst.last_outcome).toBe('started');

    await tickAt(new Date(first + MINUTE));
    const skipped = await getSchedule(skip.schedule_id);
    expect(skipped).toMatchObject({ runs: 1, skipped_runs: 1, last_outcome: 'skipped', last_skipped_at: new Date(first + MINUTE).toISOString(), last_execution_id: afterFirst.last_execution_id });
    const records = await new ScheduleRepository(runtime.deps.store).firings(skip.schedule_id, 10);
    expect(records[0]).toMatchObject({ outcome: 'skipped', execution_id: null, reason: expect.stringContaining(afterFirst.last_execution_id) });

    expect(await getSchedule(allow.schedule_id)).toMatchObject({ runs: 2, skipped_runs: 0 });
    const executions = await api('GET', `/api/v1/workflows/${workflowId}/executions`);
    expect(executions.body.data.items).toHaveLength(3);
    await api('DELETE', `/api/v1/workflows/${workflowId}?force=true`);
  });

  it('a change made on a read from before a firing does not wipe what the firing recorded', async () => {
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId, { cron_expression: '0 * * * *' });
    const repo = new ScheduleRepository(runtime.deps.store);
    // A PUT or pause reads the schedule, a firing lands, then the PUT writes.
    const stale = (await repo.get(schedule.schedule_id))!;
    const { handler } = await import('../../../functions/schedule-fire/handler.js');
    clock.set(schedule.next_run_at);
    const fired = await handler({ schedule_id: schedule.schedule_id, scheduled_time: schedule.next_run_at });
    expect(fired).toMatchObject({ outcome: 'started' });
    await expect(repo.replace(stale, { ...stale, status: 'paused' })).rejects.toBeInstanceOf(ConcurrentChangeError);
    expect(await repo.get(schedule.schedule_id)).toMatchObject({ status: 'active', runs: 1, last_execution_id: fired.execution_id, last_outcome: 'started' });
    // A manual run is recorded the same way.
    const afterFiring = (await repo.get(schedule.schedule_id))!;
    const triggered = await api('POST', `/api/v1/workflows/schedules/${schedule.schedule_id}/trigger`);
    expect(triggered.status).toBe(202);
    await expect(repo.replace(afterFiring, { ...afterFiring, name: 'renamed' })).rejects.toBeInstanceOf(ConcurrentChangeError);
    expect(await repo.get(schedule.schedule_id)).toMatchObject({ runs: 2, last_execution_id: triggered.body.data.execution_id });
  });

  it('a firing recorded after a change of cron keeps the new next run, and still counts the run it started', async () => {
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId, { cron_expression: '0 * * * *' });
    const repo = new ScheduleRepository(runtime.deps.store);
    // The firing reads the schedule and starts a run; meanwhile a PUT changes the cron.
    const stale = (await repo.get(schedule.schedule_id))!;
    const changed = await api('PUT', `/api/v1/workflows/schedules/${schedule.schedule_id}`, { cron_expression: '30 * * * *' });
    expect(changed.status).toBe(200);
    const staleNext = new Date(Date.parse(schedule.next_run_at) + 60 * MINUTE).toISOString();
    await repo.recordFiring(stale, { scheduledFor: schedule.next_run_at, firedAt: new Date(schedule.next_run_at), outcome: 'started', executionId: '01JD0000000000000000000001', reason: null, nextRunAt: staleNext });
    expect(await repo.get(schedule.schedule_id)).toMatchObject({
      cron_expression: '30 * * * *',
      next_run_at: changed.body.data.next_run_at,
      runs: 1,
      last_execution_id: '01JD0000000000000000000001',
    });
    const due = await repo.allActive();
    expect(due.find((s) => s.schedule_id === schedule.schedule_id)?.next_run_at).toBe(changed.body.data.next_run_at);
  });

  it('a delete racing a change still removes the schedule from the table and the Scheduler', async () => {
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId);
    const stale = (await new ScheduleRepository(runtime.deps.store).get(schedule.schedule_id))!;
    expect((await api('PUT', `/api/v1/workflows/schedules/${schedule.schedule_id}`, { name: 'renamed meanwhile' })).status).toBe(200);
    // DELETE read the schedule before the PUT and deletes after it.
    await removeSchedule(runtime.deps, stale);
    expect((await api('GET', `/api/v1/workflows/schedules/${schedule.schedule_id}`)).status).toBe(404);
    expect(runtime.scheduler.get(schedulerNameOf(schedule.schedule_id))).toBeUndefined();
  });

  it('overlap "skip" does not skip forever behind a run that never reached the runner', async () => {
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId, { cron_expression: '0 * * * *', overlap: 'skip' });
    const due = Date.parse(schedule.next_run_at);
    // A trigger whose process died between storing the run (pending) and starting it on the runner.
    clock.set(due - 10 * MINUTE);
    const at = clock.now();
    const lost = {
      execution_id: ulid(at.getTime()),
      workflow_id: workflowId,
      workflow_name: 'lost',
      workflow_version: 1,
      status: 'pending' as const,
      trigger: 'manual' as const,
      triggered_by: ADMIN.username,
      schedule_id: schedule.schedule_id,
      variables: {},
      created_by: principal.userId,
      created_by_username: principal.username,
      created_at: at.toISOString(),
      started_at: null,
      completed_at: null,
      timeout_at: new Date(at.getTime() + 3600_000).toISOString(),
      run_id: null,
      error: null,
      output: null,
      updated_at: at.toISOString(),
    };
    await new ExecutionRepository(runtime.deps.store).create(lost);
    await new ScheduleRepository(runtime.deps.store).recordManualRun(schedule.schedule_id, lost.execution_id, at);

    clock.set(due);
    const { handler } = await import('../../../functions/schedule-fire/handler.js');
    expect(await handler({ schedule_id: schedule.schedule_id, scheduled_time: schedule.next_run_at })).toMatchObject({ outcome: 'started' });
    expect(await new ExecutionRepository(runtime.deps.store).get(lost.execution_id)).toMatchObject({ status: 'failed', error: { code: 'engine_stopped' } });
    expect(await getSchedule(schedule.schedule_id)).toMatchObject({ runs: 2, skipped_runs: 0, last_outcome: 'started' });
  });

  it('deleting a workflow deletes its schedules, in the Scheduler too', async () => {
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId);
    const res = await api('DELETE', `/api/v1/workflows/${workflowId}`);
    expect(res.body.data.deleted_schedules).toEqual([schedule.schedule_id]);
    expect((await api('GET', `/api/v1/workflows/schedules/${schedule.schedule_id}`)).status).toBe(404);
    expect(runtime.scheduler.get(schedulerNameOf(schedule.schedule_id))).toBeUndefined();
  });

  it('health counts active and overdue schedules from the table', async () => {
    const before = (await api('GET', '/api/v1/workflows/health')).body.data;
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId, { cron_expression: '0 * * * *' });
    const withOne = (await api('GET', '/api/v1/workflows/health')).body.data;
    expect(withOne.schedules.active).toBe(before.schedules.active + 1);
    expect(withOne.schedules.overdue).toBe(before.schedules.overdue);
    // Past its next run (plus the grace) without a firing recorded: overdue.
    clock.set(Date.parse(schedule.next_run_at) + 10 * MINUTE);
    const overdue = (await api('GET', '/api/v1/workflows/health')).body.data;
    expect(overdue.schedules.overdue).toBeGreaterThanOrEqual(before.schedules.overdue + 1);
    await api('DELETE', `/api/v1/workflows/schedules/${schedule.schedule_id}`);
    expect((await api('GET', '/api/v1/workflows/health')).body.data.schedules.active).toBe(before.schedules.active);
  });
});

describe('a firing whose claimer died (claim left "starting")', () => {
  const TAKEOVER = FIRING_TAKEOVER_SECONDS * 1000;

  /** A schedule whose firing at its next run was claimed by a worker that then died. */
  async function leftStarting() {
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId, { cron_expression: '0 * * * *' });
    const repo = new ScheduleRepository(runtime.deps.store);
    const due = Date.parse(schedule.next_run_at);
    const plannedId = ulid(due);
    expect(await repo.claimFiring(schedule.schedule_id, schedule.next_run_at, new Date(due), plannedId)).toBe(true);
    const payload = { schedule_id: schedule.schedule_id, scheduled_time: schedule.next_run_at.replace('.000Z', 'Z') };
    const { handler } = await import('../../../functions/schedule-fire/handler.js');
    const executions = async () => (await api('GET', `/api/v1/workflows/${workflowId}/executions`)).body.data.items as Array<{ execution_id: string }>;
    return { workflowId, schedule, repo, due, plannedId, payload, handler, executions };
  }

  it('with no run: a retry after the takeover age starts exactly one run and records the firing', async () => {
    const { schedule, repo, due, plannedId, payload, handler, executions, workflowId } = await leftStarting();
    clock.set(due + TAKEOVER + 1000);
    const fired = await handler(payload);
    expect(fired).toEqual({ outcome: 'started', execution_id: plannedId });
    expect((await executions()).map((e) => e.execution_id)).toEqual([plannedId]);
    expect(await repo.firings(schedule.schedule_id, 10)).toEqual([
      expect.objectContaining({ scheduled_for: schedule.next_run_at, outcome: 'started', execution_id: plannedId, takeovers: 1 }),
    ]);
    expect(await getSchedule(schedule.schedule_id)).toMatchObject({ runs: 1, last_execution_id: plannedId, last_outcome: 'started' });
    await eventually(() => api('GET', `/api/v1/workflows/${workflowId}/executions/${plannedId}`), (r) => r.body.data.status === 'completed');
    // A later redelivery of the same firing is a plain duplicate.
    expect(await handler(payload)).toEqual({ outcome: 'duplicate' });
  });

  it('with its run already started: the retry completes the claim with that run, no second run', async () => {
    const { workflowId, schedule, repo, due, plannedId, payload, handler, executions } = await leftStarting();
    // The worker stored and started the run, then died before recording the firing.
    clock.set(due + 2000);
    await startExecution(runtime.deps, workflowId, {
      variables: schedule.variables,
      trigger: 'schedule',
      triggered_by: `schedule:${schedule.name}`,
      schedule_id: schedule.schedule_id,
      actor: { userId: principal.userId, username: principal.username },
      execution_id: plannedId,
    });
    clock.set(due + TAKEOVER + 1000);
    expect(await handler(payload)).toMatchObject({ outcome: 'started', execution_id: plannedId });
    expect((await executions()).map((e) => e.execution_id)).toEqual([plannedId]);
    expect((await repo.firings(schedule.schedule_id, 10))[0]).toMatchObject({ outcome: 'started', execution_id: plannedId });
    expect(await getSchedule(schedule.schedule_id)).toMatchObject({ runs: 1, last_execution_id: plannedId });
    await eventually(() => api('GET', `/api/v1/workflows/${workflowId}/executions/${plannedId}`), (r) => r.body.data.status === 'completed');
  });

  it('with its run stored but never started on the runner: the retry starts that run, not another', async () => {
    const { workflowId, schedule, due, plannedId, payload, handler, executions } = await leftStarting();
    const at = new Date(due + 2000).toISOString();
    await new ExecutionRepository(runtime.deps.store).create({
      execution_id: plannedId,
      workflow_id: workflowId,
      workflow_name: 'left',
      workflow_version: 1,
      status: 'pending',
      trigger: 'schedule',
      triggered_by: `schedule:${schedule.name}`,
      schedule_id: schedule.schedule_id,
      variables: { repo: 'api' },
      created_by: principal.userId,
      created_by_username: principal.username,
      created_at: at,
      started_at: null,
      completed_at: null,
      timeout_at: new Date(due + 3600_000).toISOString(),
      run_id: null,
      error: null,
      output: null,
      updated_at: at,
    });
    clock.set(due + TAKEOVER + 1000);
    expect(await handler(payload)).toMatchObject({ outcome: 'started', execution_id: plannedId });
    expect((await executions()).map((e) => e.execution_id)).toEqual([plannedId]);
    await eventually(() => api('GET', `/api/v1/workflows/${workflowId}/executions/${plannedId}`), (r) => r.body.data.status === 'completed');
    expect((await new ExecutionRepository(runtime.deps.store).get(plannedId))?.run_id).toBeTruthy();
    expect(await getSchedule(schedule.schedule_id)).toMatchObject({ runs: 1, last_execution_id: plannedId });
  });

  it('before the takeover age: an error (so the Scheduler retries later), nothing started, the claim left as it is', async () => {
    const { schedule, repo, due, payload, handler, executions } = await leftStarting();
    clock.set(due + TAKEOVER - 1000);
    await expect(handler(payload)).rejects.toThrow(FiringInProgressError);
    expect(await executions()).toEqual([]);
    expect(await repo.firings(schedule.schedule_id, 10)).toEqual([
      expect.objectContaining({ outcome: 'starting', execution_id: null, fired_at: new Date(due).toISOString() }),
    ]);
    expect(await getSchedule(schedule.schedule_id)).toMatchObject({ runs: 0 });
  });

  it('two concurrent retries after the takeover age start one run', async () => {
    const { schedule, repo, due, plannedId, payload, handler, executions } = await leftStarting();
    clock.set(due + TAKEOVER + 1000);
    const results = await Promise.allSettled([handler(payload), handler(payload)]);
    // The loser either lost the conditional takeover (duplicate) or read the claim just taken over
    // (in progress: an error, so that the Scheduler retries it later); only one starts the run.
    const outcomes = results.map((r) => (r.status === 'fulfilled' ? r.value.outcome : r.reason instanceof FiringInProgressError ? 'in_progress' : String(r.reason)));
    expect(outcomes.filter((o) => o === 'started')).toHaveLength(1);
    expect(outcomes.filter((o) => o !== 'started')[0]).toMatch(/^(duplicate|in_progress)$/);
    expect((await executions()).map((e) => e.execution_id)).toEqual([plannedId]);
    expect((await repo.firings(schedule.schedule_id, 10))[0]).toMatchObject({ outcome: 'started', execution_id: plannedId, takeovers: 1 });
    expect(await getSchedule(schedule.schedule_id)).toMatchObject({ runs: 1 });
  });
});

describe('daylight saving time (America/New_York, EventBridge Scheduler rule)', () => {
  it('02:30 does not fire on the spring-forward day (2026-03-08): 03-07, then 03-09', async () => {
    clock.set('2026-03-06T12:00:00Z');
    const workflow = await createWorkflowService(runtime.deps, principal, {
      name: `dst-spring-${ulid().toLowerCase()}`,
      max_parallel: 5,
      on_failure: 'fail_fast',
      steps: [{ id: 'only', type: 'custom', provider_id: 'local', payload: { prompt: 'dst' }, depends_on: [] }],
    });
    const schedule = await createSchedule(runtime.deps, principal, {
      workflow_id: workflow.workflow_id,
      name: 'half past two',
      cron_expression: '30 2 * * *',
      timezone: 'America/New_York',
      overlap: 'allow',
      enabled: true,
    });
    expect(schedule.next_run_at).toBe('2026-03-07T07:30:00.000Z');
    for (const at of ['2026-03-07T07:30:00Z', '2026-03-08T06:30:00Z', '2026-03-08T07:00:00Z', '2026-03-08T07:30:00Z', '2026-03-08T12:00:00Z', '2026-03-09T06:30:00Z']) await tickAt(at);
    expect(firingsOf(schedule.schedule_id).map((f) => f.scheduledTime)).toEqual(['2026-03-07T07:30:00Z', '2026-03-09T06:30:00Z']);
    const records = await new ScheduleRepository(runtime.deps.store).firings(schedule.schedule_id, 10);
    expect(records.map((r) => [r.scheduled_for, r.outcome])).toEqual([
      ['2026-03-09T06:30:00.000Z', 'started'],
      ['2026-03-07T07:30:00.000Z', 'started'],
    ]);
  });

  it('01:30 fires once on the fall-back day (2026-11-01), not again an hour later', async () => {
    clock.set('2026-10-31T12:00:00Z');
    const workflow = await createWorkflowService(runtime.deps, principal, {
      name: `dst-fall-${ulid().toLowerCase()}`,
      max_parallel: 5,
      on_failure: 'fail_fast',
      steps: [{ id: 'only', type: 'custom', provider_id: 'local', payload: { prompt: 'dst' }, depends_on: [] }],
    });
    const schedule = await createSchedule(runtime.deps, principal, {
      workflow_id: workflow.workflow_id,
      name: 'half past one',
      cron_expression: '30 1 * * *',
      timezone: 'America/New_York',
      overlap: 'allow',
      enabled: true,
    });
    expect(schedule.next_run_at).toBe('2026-11-01T05:30:00.000Z');
    for (const at of ['2026-11-01T05:30:00Z', '2026-11-01T06:00:00Z', '2026-11-01T06:30:00Z', '2026-11-01T12:00:00Z', '2026-11-02T06:30:00Z']) await tickAt(at);
    expect(firingsOf(schedule.schedule_id).map((f) => f.scheduledTime)).toEqual(['2026-11-01T05:30:00Z', '2026-11-02T06:30:00Z']);
    expect((await new ScheduleRepository(runtime.deps.store).get(schedule.schedule_id))).toMatchObject({ runs: 2, next_run_at: '2026-11-03T06:30:00.000Z' });
  });
});

describe('when the Scheduler fails', () => {
  it('nothing half-made remains: create, update and pause change nothing stored (503)', async () => {
    clock.set(Math.ceil(Date.now() / MINUTE) * MINUTE + 5_000);
    const workflowId = await newWorkflow();
    const existing = await newSchedule(workflowId);
    runtime.scheduler.stop();

    const created = await api('POST', '/api/v1/workflows/schedules', { workflow_id: workflowId, name: 'never', cron_expression: '0 * * * *' });
    expect(created.status).toBe(503);
    expect(created.body.error).toBe('dependency_unavailable');
    const updated = await api('PUT', `/api/v1/workflows/schedules/${existing.schedule_id}`, { cron_expression: '0 12 * * *', name: 'renamed' });
    expect(updated.status).toBe(503);
    const paused = await api('POST', `/api/v1/workflows/schedules/${existing.schedule_id}/pause`);
    expect(paused.status).toBe(503);

    const listed = await api('GET', `/api/v1/workflows/schedules?workflow_id=${workflowId}`);
    expect(listed.body.data.items).toHaveLength(1);
    expect(listed.body.data.items[0]).toMatchObject({ schedule_id: existing.schedule_id, name: existing.name, cron_expression: '*/5 * * * *', status: 'active', next_run_at: existing.next_run_at });
    const health = (await api('GET', '/api/v1/workflows/health')).body.data;
    expect(health).toMatchObject({ status: 'degraded', scheduler: { status: 'unhealthy' }, state_machine: { status: 'healthy' } });
  });
});

describe('restart', () => {
  it('a restarted local runtime registers every stored active schedule again, from now', async () => {
    const stored = await new ScheduleRepository(runtime.deps.store).allActive();
    expect(stored.length).toBeGreaterThan(0);
    await runtime.stop();
    clock.set(Math.floor(Date.now() / MINUTE) * MINUTE + 5_000);
    runtime = await startLocalRuntime({ changeFeed: false, port: 0, dataDir: null, log: () => undefined, clock, dynamodbEndpoint: inject('dynamodbEndpoint'), tableName, workflowWaitScale: 0.1 });
    const registered = runtime.scheduler.list().map((d) => d.name).sort();
    expect(registered).toEqual(stored.map((s) => schedulerNameOf(s.schedule_id)).sort());
    for (const s of await new ScheduleRepository(runtime.deps.store).allActive()) {
      expect(Date.parse(s.next_run_at!)).toBeGreaterThan(clock.now().getTime());
      expect(runtime.scheduler.nextRunOf(schedulerNameOf(s.schedule_id))!.toISOString()).toBe(s.next_run_at);
    }
  });
});

describe('the failure queues\' consumer (functions/failures)', () => {
  beforeAll(async () => {
    // Earlier tests moved the clock ahead: back to real time, with a token issued at it.
    clock.set(Date.now());
    const login = await fetch(`${runtime.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) });
    token = ((await login.json()) as { data: { access_token: string } }).data.access_token;
  });

  /** A dead letter as Lambda writes it to AsyncFailureQueue after its retries of an asynchronous invocation. */
  const deadLetter = (body: unknown, error: string) => ({
    Records: [
      {
        messageId: ulid(),
        receiptHandle: 'r',
        body: JSON.stringify(body),
        attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(clock.now().getTime()), SenderId: 'lambda', ApproximateFirstReceiveTimestamp: '0' },
        messageAttributes: { ErrorCode: { stringValue: '200', dataType: 'String' }, ErrorMessage: { stringValue: error, dataType: 'String' } },
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:local:000000000000:AsyncFailureQueue',
        awsRegion: 'local',
      },
    ],
  });

  it('records a dead-lettered firing as the schedule\'s failed firing with its error, once', async () => {
    const { handler: failures } = await import('../../../functions/failures/handler.js');
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId, { cron_expression: '0 * * * *' });
    const payload = { schedule_id: schedule.schedule_id, scheduled_time: schedule.next_run_at.replace('.000Z', 'Z') };
    const message = deadLetter(payload, 'firing 2026 of schedule x is being started by another invocation; retry later');
    expect(await failures(message as never)).toEqual({ batchItemFailures: [] });
    const after = await getSchedule(schedule.schedule_id);
    expect(after).toMatchObject({ last_outcome: 'failed', runs: 0 });
    expect(after.last_error).toMatch(/^dead-lettered after retries: 200: firing 2026/);
    const repo = new ScheduleRepository(runtime.deps.store);
    expect(await repo.firings(schedule.schedule_id, 10)).toEqual([
      expect.objectContaining({ scheduled_for: schedule.next_run_at, outcome: 'failed', reason: after.last_error }),
    ]);
    // Delivered again (SQS is at least once): nothing changes.
    expect(await failures(message as never)).toEqual({ batchItemFailures: [] });
    expect((await repo.firings(schedule.schedule_id, 10)).length).toBe(1);
    expect((await getSchedule(schedule.schedule_id)).updated_at).toBe(after.updated_at);
  });

  it('leaves a firing that was recorded meanwhile as it is', async () => {
    const { handler: failures } = await import('../../../functions/failures/handler.js');
    const workflowId = await newWorkflow();
    const schedule = await newSchedule(workflowId, { cron_expression: '0 * * * *' });
    const repo = new ScheduleRepository(runtime.deps.store);
    const due = new Date(schedule.next_run_at);
    await repo.claimFiring(schedule.schedule_id, schedule.next_run_at, due);
    await repo.recordFiring((await repo.get(schedule.schedule_id))!, { scheduledFor: schedule.next_run_at, firedAt: due, outcome: 'skipped', executionId: null, reason: 'previous run still going', nextRunAt: schedule.next_run_at });
    await failures(deadLetter({ schedule_id: schedule.schedule_id, scheduled_time: schedule.next_run_at }, 'late') as never);
    expect(await getSchedule(schedule.schedule_id)).toMatchObject({ last_outcome: 'skipped', last_error: null });
  });

  it('records a failed sweep in the sweeper\'s health, which a finished sweep clears', async () => {
    const { handler: failures } = await import('../../../functions/failures/handler.js');
    const { handler: sweeper } = await import('../../../functions/sweeper/handler.js');
    await sweeper();
    const sweeperCheck = async () => {
      const res = await api('GET', '/api/v1/health/detailed');
      return (res.body.data.dependencies as Array<{ name: string; status: string; error?: string }>).find((d) => d.name === 'sweeper')!;
    };
    expect(await sweeperCheck()).toMatchObject({ status: 'healthy', required: false });
    clock.advance(1000);
    const scheduledEvent = { version: '0', id: ulid(), 'detail-type': 'Scheduled Event', source: 'aws.events', time: clock.now().toISOString(), resources: [], detail: {} };
    expect(await failures(deadLetter(scheduledEvent, 'Task timed out after 60.00 seconds') as never)).toEqual({ batchItemFailures: [] });
    const failed = await sweeperCheck();
    expect(failed.status).toBe('unhealthy');
    expect(failed.error).toContain(`the last sweep failed at ${clock.now().toISOString()}`);
    clock.advance(1000);
    await sweeper();
    expect(await sweeperCheck()).toMatchObject({ status: 'healthy' });
  });
});
