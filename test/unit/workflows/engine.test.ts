import { describe, expect, it } from 'vitest';
import { definitionSchema, type WorkflowDefinition } from '../../../shared/workflows/definition.js';
import {
  LOST_CLAIM_SECONDS,
  pendingStep,
  planAdvance,
  type AdvancePlan,
  type StepState,
  type TaskObservation,
} from '../../../shared/workflows/engine.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

function def(steps: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}): WorkflowDefinition {
  return definitionSchema.parse({ name: 'wf', ...extra, steps: steps.map((s) => ({ type: 'custom', payload: { prompt: `run ${s.id}` }, ...s })) });
}

const diamond = () =>
  def([
    { id: 'a' },
    { id: 'b', depends_on: ['a'], payload: { prompt: 'b got {{steps.a.output}}' } },
    { id: 'c', depends_on: ['a'] },
    { id: 'd', depends_on: ['b', 'c'] },
  ]);

/** Applies a plan the way the engine does (every write succeeds): the next state of every step. */
function apply(steps: Map<string, StepState>, plan: AdvancePlan, taskIds: string[] = []): Map<string, StepState> {
  const next = new Map(steps);
  for (const t of plan.transitions) next.set(t.after.step_id, { ...t.after, rev: t.before.rev + 1 });
  for (const start of plan.starts) {
    const id = taskIds.shift() ?? `task-${start.step_id}-${start.attempt}`;
    const s = next.get(start.step_id)!;
    next.set(start.step_id, { ...s, task_id: id, task_ids: [...s.task_ids, id], rev: s.rev + 1 });
  }
  return next;
}

const running = (output: string | null = null): TaskObservation => ({ status: 'running', output, error: null, completed_at: null });
const completed = (output: string, when = at(1)): TaskObservation => ({ status: 'completed', output, error: null, completed_at: when.toISOString() });
const failed = (code = 'provider_error'): TaskObservation => ({ status: 'failed', output: null, error: { code, message: `${code} happened` }, completed_at: at(1).toISOString() });

function run(definition: WorkflowDefinition, steps: Map<string, StepState>, tasks: Record<string, TaskObservation>, seconds: number, variables = {}, timeoutAt: string | null = null) {
  return planAdvance({ definition, execution: { status: 'running', variables, timeout_at: timeoutAt }, steps, tasks: new Map(Object.entries(tasks)), now: at(seconds) });
}

const statuses = (steps: Map<string, StepState>) => Object.fromEntries([...steps].map(([id, s]) => [id, s.status]));

describe('planAdvance', () => {
  it('runs a diamond: a, then b and c together, then d; output flows into templates', () => {
    const d = diamond();
    let steps = new Map<string, StepState>();
    let plan = run(d, steps, {}, 0);
    expect(plan.starts.map((s) => s.step_id)).toEqual(['a']);
    expect(plan.waitSeconds).toBe(1);
    steps = apply(steps, plan);

    plan = run(d, steps, { 'task-a-1': completed('A-OUT') }, 2);
    expect(plan.starts.map((s) => s.step_id)).toEqual(['b', 'c']);
    expect(plan.starts[0].payload).toEqual({ prompt: 'b got A-OUT' });
    steps = apply(steps, plan);
    expect(statuses(steps)).toEqual({ a: 'completed', b: 'running', c: 'running' });

    plan = run(d, steps, { 'task-b-1': completed('B'), 'task-c-1': running() }, 3);
    expect(plan.starts).toEqual([]);
    steps = apply(steps, plan);

    plan = run(d, steps, { 'task-c-1': completed('C') }, 4);
    expect(plan.starts.map((s) => s.step_id)).toEqual(['d']);
    steps = apply(steps, plan);

    plan = run(d, steps, { 'task-d-1': completed('D') }, 5);
    expect(plan.finish).toEqual({ status: 'completed', error: null, output: { d: 'D' } });
    expect(plan.waitSeconds).toBe(0);
  });

  it('never runs more than max_parallel steps at once', () => {
    const d = def(Array.from({ length: 5 }, (_, i) => ({ id: `s${i}` })), { max_parallel: 2 });
    let steps = new Map<string, StepState>();
    let plan = run(d, steps, {}, 0);
    expect(plan.starts.map((s) => s.step_id)).toEqual(['s0', 's1']);
    steps = apply(steps, plan);
    plan = run(d, steps, { 'task-s0-1': completed('x'), 'task-s1-1': running() }, 1);
    expect(plan.starts.map((s) => s.step_id)).toEqual(['s2']);
  });

  it('skips a step whose condition is false, and its dependents', () => {
    const d = def([
      { id: 'a' },
      { id: 'b', depends_on: ['a'], condition: 'contains(steps.a.output, "deploy")' },
      { id: 'c', depends_on: ['b'] },
      { id: 'e', depends_on: ['a'], condition: 'variables.env == "prod"' },
    ]);
    let steps = apply(new Map(), run(d, new Map(), {}, 0));
    const plan = run(d, steps, { 'task-a-1': completed('nothing to do') }, 1, { env: 'prod' });
    steps = apply(steps, plan);
    expect(statuses(steps)).toEqual({ a: 'completed', b: 'skipped', c: 'skipped', e: 'running' });
    expect(steps.get('b')!.skip_reason).toBe('condition is false');
    expect(steps.get('c')!.skip_reason).toBe("dependency 'b' skipped");
  });

  it('fail_fast: a failure cancels the running steps and skips the rest', () => {
    const d = def([{ id: 'a' }, { id: 'b' }, { id: 'c', depends_on: ['a'] }], { on_failure: 'fail_fast' });
    const steps = apply(new Map(), run(d, new Map(), {}, 0));
    const plan = run(d, steps, { 'task-a-1': failed(), 'task-b-1': running() }, 1);
    expect(plan.cancelTasks).toEqual(['task-b-1']);
    const after = apply(steps, plan);
    expect(statuses(after)).toEqual({ a: 'failed', b: 'cancelled', c: 'skipped' });
    expect(plan.finish).toMatchObject({ status: 'failed', error: { code: 'step_failed', message: expect.stringContaining("step 'a' failed") } });
  });

  it('continue: a failure skips only its dependents, the rest runs to the end', () => {
    const d = def([{ id: 'a' }, { id: 'b' }, { id: 'c', depends_on: ['a'] }, { id: 'd', depends_on: ['b'] }], { on_failure: 'continue' });
    let steps = apply(new Map(), run(d, new Map(), {}, 0));
    let plan = run(d, steps, { 'task-a-1': failed(), 'task-b-1': running() }, 1);
    expect(plan.cancelTasks).toEqual([]);
    expect(plan.finish).toBeUndefined();
    steps = apply(steps, plan);
    expect(statuses(steps)).toEqual({ a: 'failed', b: 'running', c: 'skipped' });
    plan = run(d, steps, { 'task-b-1': completed('B') }, 2);
    expect(plan.starts.map((s) => s.step_id)).toEqual(['d']);
    steps = apply(steps, plan);
    plan = run(d, steps, { 'task-d-1': completed('D') }, 3);
    expect(plan.finish).toMatchObject({ status: 'failed', output: { d: 'D' } });
  });

  it('retries a failed attempt after the backoff, then fails when attempts run out', () => {
    const d = def([{ id: 'a', retry: { max_attempts: 2, backoff_seconds: 30 } }]);
    let steps = apply(new Map(), run(d, new Map(), {}, 0));
    let plan = run(d, steps, { 'task-a-1': failed() }, 1);
    steps = apply(steps, plan);
    expect(steps.get('a')).toMatchObject({ status: 'running', attempt: 1, task_id: null, retry_at: at(31).toISOString(), error: { code: 'provider_error' } });
    expect(plan.waitSeconds).toBe(30);

    plan = run(d, steps, {}, 20);
    expect(plan.starts).toEqual([]);
    expect(plan.waitSeconds).toBe(11);

    plan = run(d, steps, {}, 31);
    expect(plan.starts).toEqual([{ step_id: 'a', attempt: 2, payload: { prompt: 'run a' } }]);
    steps = apply(steps, plan);
    expect(steps.get('a')!.task_ids).toEqual(['task-a-1', 'task-a-2']);

    plan = run(d, steps, { 'task-a-2': failed() }, 40);
    steps = apply(steps, plan);
    expect(steps.get('a')).toMatchObject({ status: 'failed', attempt: 2 });
    expect(plan.finish?.status).toBe('failed');
  });

  it('a step past its timeout has its task cancelled and the attempt fails', () => {
    const d = def([{ id: 'a', timeout_seconds: 5 }]);
    const steps = apply(new Map(), run(d, new Map(), {}, 0));
    expect(run(d, steps, { 'task-a-1': running() }, 2).waitSeconds).toBe(1);
    const plan = run(d, steps, { 'task-a-1': running() }, 5);
    expect(plan.cancelTasks).toEqual(['task-a-1']);
    expect(apply(steps, plan).get('a')).toMatchObject({ status: 'failed', error: { code: 'step_timeout' } });
  });

  it('the run timeout cancels running steps and skips the rest', () => {
    const d = def([{ id: 'a' }, { id: 'b', depends_on: ['a'] }], { timeout_seconds: 10 });
    const steps = apply(new Map(), run(d, new Map(), {}, 0, {}, at(10).toISOString()));
    const plan = run(d, steps, { 'task-a-1': running() }, 10, {}, at(10).toISOString());
    expect(plan.cancelTasks).toEqual(['task-a-1']);
    expect(statuses(apply(steps, plan))).toEqual({ a: 'cancelled', b: 'skipped' });
    expect(plan.finish).toEqual({ status: 'failed', error: { code: 'execution_timeout', message: expect.any(String) }, output: {} });
  });

  it('a retry that falls due when the run times out is not started', () => {
    const d = def([{ id: 'a', retry: { max_attempts: 3, backoff_seconds: 5 } }], { timeout_seconds: 10 });
    let steps = apply(new Map(), run(d, new Map(), {}, 0, {}, at(10).toISOString()));
    steps = apply(steps, run(d, steps, { 'task-a-1': failed() }, 5, {}, at(10).toISOString()));
    const plan = run(d, steps, {}, 10, {}, at(10).toISOString());
    expect(plan.starts).toEqual([]);
    expect(plan.finish?.error?.code).toBe('execution_timeout');
    expect(apply(steps, plan).get('a')!.status).toBe('cancelled');
  });

  it('a condition that cannot be evaluated fails its step', () => {
    const d = def([{ id: 'a' }, { id: 'b', depends_on: ['a'], condition: 'steps.a.output' }], { on_failure: 'continue' });
    const steps = apply(new Map(), run(d, new Map(), {}, 0));
    const after = apply(steps, run(d, steps, { 'task-a-1': completed('text') }, 1));
    expect(after.get('b')).toMatchObject({ status: 'failed', error: { code: 'condition_error' } });
  });

  it('a task cancelled from outside fails its step without a retry', () => {
    const d = def([{ id: 'a', retry: { max_attempts: 3, backoff_seconds: 0 } }]);
    const steps = apply(new Map(), run(d, new Map(), {}, 0));
    const plan = run(d, steps, { 'task-a-1': { status: 'cancelled', output: null, error: null, completed_at: null } }, 1);
    expect(apply(steps, plan).get('a')).toMatchObject({ status: 'failed', error: { code: 'task_cancelled' } });
  });

  it('claims again an attempt whose task was never created', () => {
    const d = def([{ id: 'a' }]);
    const claimed = new Map([['a', { ...pendingStep('a'), rev: 1, status: 'running' as const, attempt: 1, started_at: T0.toISOString(), attempt_started_at: T0.toISOString() }]]);
    expect(run(d, claimed, {}, 10).starts).toEqual([]);
    expect(run(d, claimed, {}, LOST_CLAIM_SECONDS).starts).toEqual([{ step_id: 'a', attempt: 1, payload: { prompt: 'run a' } }]);
  });

  it('plans transitions conditional on the state they were decided on', () => {
    const d = diamond();
    const steps = apply(new Map(), run(d, new Map(), {}, 0));
    const plan = run(d, steps, { 'task-a-1': completed('A') }, 1);
    const a = plan.transitions.find((t) => t.after.step_id === 'a')!;
    expect(a.before).toEqual(steps.get('a'));
    expect(plan.transitions.find((t) => t.after.step_id === 'b')!.before).toEqual(pendingStep('b'));
  });

  it('looks again less often the longer steps run, never past a deadline', () => {
    const d = def([{ id: 'a' }]);
    const steps = apply(new Map(), run(d, new Map(), {}, 0));
    expect(run(d, steps, { 'task-a-1': running() }, 5).waitSeconds).toBe(1);
    expect(run(d, steps, { 'task-a-1': running() }, 30).waitSeconds).toBe(2);
    expect(run(d, steps, { 'task-a-1': running() }, 120).waitSeconds).toBe(5);
    expect(run(d, steps, { 'task-a-1': running() }, 600).waitSeconds).toBe(15);
    expect(run(d, steps, { 'task-a-1': running() }, 1000).waitSeconds).toBe(60);
    expect(run(d, steps, { 'task-a-1': running() }, 1000, {}, at(1003).toISOString()).waitSeconds).toBe(3);
  });
});
