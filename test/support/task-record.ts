import { ulid } from 'ulid';
import { createTaskBody } from '../../shared/tasks/model.js';
import type { TaskRecord } from '../../shared/tasks/repo.js';

/**
 * A whole task record as the service stores it, `queued` and never sent to the queue, for tests that write
 * a task straight into the table (the state a worker or a crash left behind). `overrides` say what differs:
 * who created it at least; a `type` with its `payload` replaces the default custom task.
 */
export function taskRecord(overrides: Partial<TaskRecord> & Pick<TaskRecord, 'created_by'>, now = new Date()): TaskRecord {
  const at = now.toISOString();
  const input = overrides.type && overrides.payload ? { type: overrides.type, payload: overrides.payload } : { type: 'custom', payload: { prompt: 'stored by a test' } };
  return {
    ...createTaskBody.parse(input),
    task_id: ulid(now.getTime()),
    title: 'stored by a test',
    status: 'queued',
    result: null,
    error: null,
    attempts: 0,
    max_cost_usd: null,
    agent_id: null,
    provider_id: 'local',
    model: null,
    tokens_in: 0,
    tokens_out: 0,
    cost_usd: 0,
    created_at: at,
    updated_at: at,
    queued_at: at,
    started_at: null,
    completed_at: null,
    duration_ms: null,
    next_attempt_at: at,
    waiting_reason: null,
    workflow_execution_id: null,
    workflow_step_id: null,
    batch_id: null,
    version: 1,
    run_token: ulid(),
    ...overrides,
  } as TaskRecord;
}
