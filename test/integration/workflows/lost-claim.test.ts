import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { decodeTime, ulid } from 'ulid';
import { startLocalRuntime, type LocalRuntime } from '../../../local/runtime.js';
import { advanceExecution, stepTaskId } from '../../../shared/workflows/advance.js';
import { executions } from '../../../shared/workflows/reads.js';
import { LOST_CLAIM_SECONDS } from '../../../shared/workflows/engine.js';
import { eventually, type Session } from '../../support/client.js';
import { sessionAs } from '../tasks/helpers.js';

/**
 * An Advance that claimed a step and died after creating the step's task but before linking it: the
 * Advance that takes the claim over finds that task (the attempt's task id is derived from the
 * attempt) instead of creating a second one. On a runtime of this file's own, so that the engine can
 * be called in-process on its store.
 */
let runtime: LocalRuntime;
let admin: Session;

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${runtime.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${admin.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  runtime = await startLocalRuntime({ changeFeed: false, port: 0, dataDir: null, log: () => undefined, dynamodbEndpoint: inject('dynamodbEndpoint'), tableName: `claims${ulid().toLowerCase()}` });
  admin = await sessionAs('admin', { store: runtime.deps.store, baseUrl: runtime.url });
});

afterAll(async () => {
  await runtime?.stop();
});

describe('a step claim whose task was stored but never linked', () => {
  it('is taken over with the same task: one task for the attempt, not cancelled, and the run completes', { timeout: 90_000 }, async () => {
    expect((await api('POST', '/api/v1/providers/slow-claims/register', { type: 'local', name: 'slow', settings: { chunk_delay_ms: 400 } })).status).toBe(201);
    const wf = await api('POST', '/api/v1/workflows', { name: `lost-claim-${ulid().toLowerCase()}`, steps: [{ id: 'a', type: 'custom', provider_id: 'slow-claims', payload: { prompt: 'only step' } }] });
    expect(wf.status).toBe(201);
    const workflowId = wf.body.data.workflow_id as string;
    const started = await api('POST', `/api/v1/workflows/${workflowId}/execute`, {});
    expect(started.status).toBe(202);
    const executionId = started.body.data.execution_id as string;
    const repo = executions(runtime.deps);
    const stepA = async () => (await repo.load(executionId)).steps.get('a');

    const linked = await eventually(stepA, (s) => !!s?.task_id, 30_000);
    const taskId = stepTaskId(executionId, 'a', 1, linked!.started_at!);
    expect(linked!.task_id).toBe(taskId);
    // Listings order tasks by id: the step's task sorts at the step's start, not at the run's.
    expect(decodeTime(taskId)).toBe(Date.parse(linked!.started_at!));

    // What an Advance that died between creating the task and linking it leaves: a claim with no task,
    // old enough to be taken over.
    const past = new Date(Date.now() - (LOST_CLAIM_SECONDS + 5) * 1000).toISOString();
    expect(await repo.writeStep(executionId, linked!, { ...linked!, task_id: null, task_ids: [], attempt_started_at: past })).toBe(true);
    await advanceExecution(runtime.deps, { execution_id: executionId, workflow_id: workflowId });

    const retaken = await stepA();
    expect(retaken).toMatchObject({ status: 'running', attempt: 1, task_id: taskId, task_ids: [taskId] });
    const done = await eventually(
      async () => (await api('GET', `/api/v1/workflows/${workflowId}/executions/${executionId}`)).body.data,
      (e) => ['completed', 'failed', 'cancelled'].includes(e.status),
      60_000,
    );
    expect(done.status, JSON.stringify(done)).toBe('completed');
    expect(done.steps[0].task_ids).toEqual([taskId]);
    const sessions = await api('GET', `/api/v1/tasks/${taskId}/sessions`);
    expect(sessions.body.data.items.map((s: { outcome: string }) => s.outcome)).toEqual(['completed']);
    const tasks = await api('GET', `/api/v1/tasks?limit=100`);
    expect(tasks.body.data.items.filter((t: { workflow_execution_id: string }) => t.workflow_execution_id === executionId)).toHaveLength(1);
  });
});
