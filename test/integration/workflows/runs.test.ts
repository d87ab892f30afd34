import { beforeAll, describe, expect, it } from 'vitest';
import { adminSession, call, eventually, openSocket, userWithRole, type Session } from '../../support/client.js';
import {
  createWorkflow,
  execute,
  getExecution,
  peakConcurrency,
  registerDownProvider,
  registerSlowProvider,
  step,
  stepOf,
  waitForExecution,
  type Execution,
} from './helpers.js';

const getTask = async (token: string, taskId: string) => (await call('GET', `/api/v1/tasks/${taskId}`, { token })).body.data;
const ms = (iso: string | null) => Date.parse(iso!);

describe('workflow runs (state machine + tasks on the local runtime)', () => {
  let admin: Session;
  let owner: Session;
  /** About 0.5-1 s per step. */
  let brisk: string;
  /** Several seconds per step. */
  let slow: string;
  let down: string;

  beforeAll(async () => {
    admin = await adminSession();
    owner = await userWithRole('user', admin);
    [brisk, slow, down] = await Promise.all([registerSlowProvider(admin, 100), registerSlowProvider(admin, 1000), registerDownProvider(admin)]);
  });

  it('runs a diamond: b and c at the same time, d after both; outputs flow downstream; a false condition skips a branch', async () => {
    const socket = await openSocket('/ws', owner.token);
    socket.send({ action: 'subscribe', channels: ['workflows'] });
    await socket.waitFor((m) => m.type === 'subscribed');

    const workflowId = await createWorkflow(owner.token, {
      variables: { mode: 'quick' },
      steps: [
        step('a', { payload: { prompt: 'List the risks of the change.' } }),
        step('b', { depends_on: ['a'], provider_id: brisk, payload: { prompt: 'Expand on: {{steps.a.output}}' } }),
        step('c', { depends_on: ['a'], provider_id: brisk }),
        step('d', { depends_on: ['b', 'c'], payload: { prompt: 'Merge {{steps.b.output}} with {{steps.c.output}}' } }),
        step('e', { depends_on: ['a'], condition: 'variables.mode == "full"' }),
        step('f', { depends_on: ['e'] }),
      ],
    });
    const started = await execute(owner.token, workflowId);
    expect(['pending', 'running']).toContain(started.status);
    const run = await waitForExecution(owner.token, workflowId, started.execution_id);

    expect(run.status).toBe('completed');
    const [a, b, c, d, e, f] = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => stepOf(run, id));
    expect([a, b, c, d].map((s) => s.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    // b and c were running at the same time…
    expect(ms(b.started_at)).toBeLessThan(ms(c.completed_at));
    expect(ms(c.started_at)).toBeLessThan(ms(b.completed_at));
    // …after a, and d started only after both had finished.
    expect(ms(b.started_at)).toBeGreaterThanOrEqual(ms(a.completed_at));
    expect(ms(d.started_at)).toBeGreaterThanOrEqual(Math.max(ms(b.completed_at), ms(c.completed_at)));
    expect(e).toMatchObject({ status: 'skipped', skip_reason: 'condition is false', task_id: null });
    expect(f).toMatchObject({ status: 'skipped', skip_reason: "dependency 'e' skipped" });
    expect(run.output).toEqual({ d: d.output });
    expect(run.progress).toMatchObject({ total: 6, completed: 4, skipped: 2 });

    // Each step ran as a task linked to the run, with the upstream output rendered into its payload.
    const taskB = await getTask(owner.token, b.task_id!);
    expect(taskB).toMatchObject({ status: 'completed', workflow_execution_id: run.execution_id, workflow_step_id: 'b', provider_id: brisk });
    expect(taskB.payload.prompt).toBe(`Expand on: ${a.output}`);
    expect(taskB.result.output).toBe(b.output);
    const taskD = await getTask(owner.token, d.task_id!);
    expect(taskD.payload.prompt).toBe(`Merge ${b.output} with ${c.output}`);

    // Live updates: every step change and the end of the run, on the workflows channel.
    const done = await socket.waitFor((m) => m.type === 'execution.updated' && m.data.execution_id === run.execution_id && m.data.status === 'completed');
    expect(done.channel).toBe('workflows');
    const stepEvents = socket.messages.filter((m) => m.type === 'execution.updated' && m.data.execution_id === run.execution_id).flatMap((m) => m.data.changed_steps);
    expect(stepEvents.filter((s: { status: string }) => s.status === 'completed').map((s: { step_id: string }) => s.step_id).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(stepEvents.some((s: { step_id: string; status: string }) => s.step_id === 'e' && s.status === 'skipped')).toBe(true);
    await socket.close();
  });

  it('fail_fast cancels the running step and skips the rest; continue lets the independent branch finish', async () => {
    const steps = [
      step('broken', { provider_id: down, retry: { max_attempts: 1, backoff_seconds: 0 } }),
      step('long', { provider_id: slow }),
      step('after_broken', { depends_on: ['broken'] }),
      step('after_long', { depends_on: ['long'] }),
    ];
    const failFast = await createWorkflow(owner.token, { on_failure: 'fail_fast', steps });
    const keepGoing = await createWorkflow(owner.token, { on_failure: 'continue', steps });
    const [ff, cont] = await Promise.all([execute(owner.token, failFast), execute(owner.token, keepGoing)]);
    const [ffRun, contRun] = await Promise.all([
      waitForExecution(owner.token, failFast, ff.execution_id),
      waitForExecution(owner.token, keepGoing, cont.execution_id),
    ]);

    expect(ffRun.status).toBe('failed');
    expect(ffRun.error).toMatchObject({ code: 'step_failed', message: expect.stringContaining("step 'broken' failed") });
    expect(Object.fromEntries(ffRun.steps.map((s) => [s.step_id, s.status]))).toEqual({ broken: 'failed', long: 'cancelled', after_broken: 'skipped', after_long: 'skipped' });
    expect(stepOf(ffRun, 'long').error).toMatchObject({ code: 'cancelled', message: expect.stringContaining('fail_fast') });
    await eventually(() => getTask(owner.token, stepOf(ffRun, 'long').task_id!), (t) => t.status === 'cancelled');

    expect(contRun.status).toBe('failed');
    expect(Object.fromEntries(contRun.steps.map((s) => [s.step_id, s.status]))).toEqual({ broken: 'failed', long: 'completed', after_broken: 'skipped', after_long: 'completed' });
    expect(stepOf(contRun, 'broken').error?.code).toBeTruthy();
    expect(contRun.output).toEqual({ after_long: stepOf(contRun, 'after_long').output });
  });

  it('never runs more than max_parallel steps at once (observed peak from step timings)', async () => {
    const workflowId = await createWorkflow(owner.token, {
      max_parallel: 2,
      steps: Array.from({ length: 6 }, (_, i) => step(`s${i}`, { provider_id: brisk })),
    });
    const run = await waitForExecution(owner.token, workflowId, (await execute(owner.token, workflowId)).execution_id);
    expect(run.status).toBe('completed');
    expect(peakConcurrency(run.steps)).toBe(2);
  });

  it('cancel mid-run stops the run, cancels the running steps and their tasks, skips the rest; a second cancel is 409', async () => {
    const workflowId = await createWorkflow(owner.token, {
      steps: [step('a', { provider_id: slow }), step('b', { provider_id: slow }), step('c', { depends_on: ['a', 'b'] })],
    });
    const { execution_id } = await execute(owner.token, workflowId);
    const socket = await openSocket('/ws', owner.token);
    socket.send({ action: 'subscribe', channels: [`execution:${execution_id}`] });
    await socket.waitFor((m) => m.type === 'subscribed');
    const running = await waitForExecution(owner.token, workflowId, execution_id, (e) => e.steps.filter((s) => s.status === 'running' && s.task_id).length === 2);
    const taskIds = running.steps.filter((s) => s.task_id).map((s) => s.task_id!);

    const res = await call('POST', `/api/v1/workflows/${workflowId}/executions/${execution_id}/cancel`, { token: owner.token, body: { reason: 'changed my mind' } });
    expect(res.status).toBe(200);
    const cancelled = res.body.data as Execution;
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.error).toEqual({ code: 'cancelled', message: 'changed my mind' });
    expect(Object.fromEntries(cancelled.steps.map((s) => [s.step_id, s.status]))).toEqual({ a: 'cancelled', b: 'cancelled', c: 'skipped' });
    for (const taskId of taskIds) expect((await getTask(owner.token, taskId)).status).toBe('cancelled');
    const event = await socket.waitFor((m) => m.type === 'execution.updated' && m.data.status === 'cancelled');
    expect(event).toMatchObject({ channel: `execution:${execution_id}`, data: { execution_id, error: { code: 'cancelled' } } });
    await socket.close();

    const again = await call('POST', `/api/v1/workflows/${workflowId}/executions/${execution_id}/cancel`, { token: owner.token });
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('invalid_state');
    const list = await call('GET', `/api/v1/workflows/${workflowId}/executions?status=cancelled`, { token: owner.token });
    expect(list.body.data.items.map((e: { execution_id: string }) => e.execution_id)).toEqual([execution_id]);
    expect((await call('GET', `/api/v1/workflows/${workflowId}/executions?status=running`, { token: owner.token })).body.data.items).toEqual([]);
  });

  it('retries a failed step after its backoff: the second attempt, after the cause was fixed, succeeds', async () => {
    const agent = await call('POST', '/api/v1/agents', {
      token: admin.token,
      body: { name: 'switched off for now', provider_id: 'local', quota: { window: 'hourly' }, max_concurrency: 5, enabled: false },
    });
    expect(agent.status, JSON.stringify(agent.body)).toBe(201);
    const agentId = agent.body.data.agent_id;
    const workflowId = await createWorkflow(owner.token, {
      steps: [step('flaky', { provider_id: undefined, agent_id: agentId, retry: { max_attempts: 3, backoff_seconds: 5 } })],
    });
    const { execution_id } = await execute(owner.token, workflowId);

    const waiting = await waitForExecution(owner.token, workflowId, execution_id, (e) => stepOf(e, 'flaky').retry_at !== null || FINISHED(e));
    const first = stepOf(waiting, 'flaky');
    expect(first).toMatchObject({ status: 'running', attempts: 1, error: { code: 'agent_disabled' } });
    expect((await call('PUT', `/api/v1/agents/${agentId}`, { token: admin.token, body: { enabled: true } })).status).toBe(200);

    const run = await waitForExecution(owner.token, workflowId, execution_id);
    expect(run.status).toBe('completed');
    const flaky = stepOf(run, 'flaky');
    expect(flaky.attempts).toBeGreaterThanOrEqual(2);
    expect(flaky.task_ids).toHaveLength(flaky.attempts);
    const tasks = await Promise.all(flaky.task_ids.map((id) => getTask(owner.token, id)));
    expect(tasks.at(-1)).toMatchObject({ status: 'completed', max_attempts: 1, agent_id: agentId });
    for (const failedTask of tasks.slice(0, -1)) expect(failedTask).toMatchObject({ status: 'failed', error: { code: 'agent_disabled' } });
    // The second attempt waited out the backoff.
    expect(ms(tasks[1].created_at) - ms(tasks[0].completed_at)).toBeGreaterThanOrEqual(5000 - 50);
  });

  it('an execution timeout fails the run and cancels what was running', async () => {
    const workflowId = await createWorkflow(owner.token, { timeout_seconds: 2, steps: [step('long', { provider_id: slow }), step('next', { depends_on: ['long'] })] });
    const run = await waitForExecution(owner.token, workflowId, (await execute(owner.token, workflowId)).execution_id);
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('execution_timeout');
    expect(Object.fromEntries(run.steps.map((s) => [s.step_id, s.status]))).toEqual({ long: 'cancelled', next: 'skipped' });
    await eventually(() => getTask(owner.token, stepOf(run, 'long').task_id!), (t) => t.status === 'cancelled');
  });

  it('a step timeout fails the step and cancels its task', async () => {
    const workflowId = await createWorkflow(owner.token, { steps: [step('long', { provider_id: slow, timeout_seconds: 1 })] });
    const run = await waitForExecution(owner.token, workflowId, (await execute(owner.token, workflowId)).execution_id);
    expect(run.status).toBe('failed');
    expect(stepOf(run, 'long')).toMatchObject({ status: 'failed', error: { code: expect.stringMatching(/^(step_timeout|timeout)$/) } });
  });

  it('a run keeps the version it started with; delete is 409 while it runs, force cancels it', async () => {
    const workflowId = await createWorkflow(owner.token, { steps: [step('long', { provider_id: slow }), step('tail', { depends_on: ['long'] })] });
    const { execution_id } = await execute(owner.token, workflowId);
    const updated = await call('PUT', `/api/v1/workflows/${workflowId}`, { token: owner.token, body: { name: `renamed-${execution_id}`, steps: [step('other')] } });
    expect(updated.body.data.version).toBe(2);
    const during = await getExecution(owner.token, workflowId, execution_id);
    expect(during.workflow_version).toBe(1);
    expect(during.steps.map((s) => s.step_id)).toEqual(['long', 'tail']);

    const refused = await call('DELETE', `/api/v1/workflows/${workflowId}`, { token: owner.token });
    expect(refused.status).toBe(409);
    expect((await call('GET', `/api/v1/workflows/${workflowId}`, { token: owner.token })).status).toBe(200);

    const forced = await call('DELETE', `/api/v1/workflows/${workflowId}?force=true`, { token: owner.token });
    expect(forced.status).toBe(200);
    expect(forced.body.data).toMatchObject({ deleted: true, cancelled_executions: [execution_id] });
    expect((await call('GET', `/api/v1/workflows/${workflowId}`, { token: owner.token })).status).toBe(404);
  });

  it('execute honours Idempotency-Key: the same key and body start one run', async () => {
    const workflowId = await createWorkflow(owner.token, { steps: [step('a')] });
    const headers = { 'Idempotency-Key': `wf-${workflowId}` };
    const first = await execute(owner.token, workflowId, { triggered_by: 'ci' }, headers);
    const replay = await call('POST', `/api/v1/workflows/${workflowId}/execute`, { token: owner.token, body: { triggered_by: 'ci' }, headers });
    expect(replay.status).toBe(202);
    expect(replay.body.data.execution_id).toBe(first.execution_id);
    const other = await call('POST', `/api/v1/workflows/${workflowId}/execute`, { token: owner.token, body: { triggered_by: 'someone else' }, headers });
    expect(other.status).toBe(409);
    expect(other.body.error).toBe('idempotency_conflict');
    const list = await call('GET', `/api/v1/workflows/${workflowId}/executions`, { token: owner.token });
    expect(list.body.data.items).toHaveLength(1);
    expect(list.body.data.items[0]).toMatchObject({ trigger: 'api', triggered_by: 'ci' });
  });
});

function FINISHED(e: Execution): boolean {
  return ['completed', 'failed', 'cancelled'].includes(e.status);
}
