import '../local/quiet-sdk.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { pathToFileURL } from 'node:url';
import { ulid } from 'ulid';
import { startLocalRuntime, type LocalRuntime } from '../local/runtime.js';
import { AuthService } from '../shared/auth/service.js';
import { permissionsOf } from '../shared/platform/permissions.js';
import type { Principal } from '../shared/platform/principal.js';
import { definitionSchema, type WorkflowDefinition } from '../shared/workflows/definition.js';
import { validateDefinition } from '../shared/workflows/validation.js';
import { UserRepository } from '../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../shared/auth/sessions-repo.js';
import { ScheduleRepository } from '../shared/schedules/repo.js';
import { createWorkflow, getExecution, startExecution, type ExecutionView } from '../shared/workflows/service.js';
import { createSchedule, deleteSchedule } from '../shared/schedules/service.js';
import { getTask, listSessions } from '../shared/tasks/service.js';
import { fixed, median, printTable } from './lib/table.js';
import { dynamodbCpuSeconds } from './lib/cpu.js';

/**
 * Issue 4's figures, on the local provider:
 * - orchestration overhead per step: (run time − the steps' own provider time along the critical
 *   path) ÷ steps, for a 20-step chain and a 50-wide fan-out. Run time is from the run's creation to
 *   its end; provider time is each task's session latency (the provider call itself). For the chain
 *   the critical path is every step; for the fan-out it is the slowest step.
 * - schedule firing delay over 20 firings: when the schedule-fire handler took the firing, and when
 *   the run was stored, minus the instant it was due.
 * The state machine's Wait states run at the runtime's `workflowWaitScale` (1 unless stated: as on AWS).
 * `benchWorkflows(runtime)` is called by `bench/run.ts`; `npx tsx bench/workflows.ts` runs it alone.
 */

export const WORKFLOWS_BENCH = { chainSteps: 20, fanOutWidth: 50, firings: 20 };

interface Figure {
  what: string;
  value: string;
}

async function benchPrincipal(runtime: LocalRuntime): Promise<Principal> {
  const { deps } = runtime;
  const user = await new AuthService(deps, {
    users: new UserRepository(deps.store),
    sessions: new SessionRepository(deps.store),
    attempts: new LoginAttemptRepository(deps.store),
  }).createUser({ username: `bench-workflows-${ulid().toLowerCase()}`, password: 'bench-workflows-password', roles: ['operator'] });
  return { userId: user.user_id, username: user.username, roles: ['operator'], permissions: permissionsOf(['operator']), sessionId: 'bench' };
}

const localStep = (id: string, dependsOn: string[]) => ({ id, type: 'custom' as const, provider_id: 'local', payload: { prompt: `Bench step ${id}: list three checks.` }, depends_on: dependsOn });

/** Marks the bench's own reads (polling a run, reading its tasks afterwards), so that call counts leave them out. */
const benchReads = new AsyncLocalStorage<true>();

/** Counts the DynamoDB calls the runtime makes (the bench's own reads left out) while `fn` runs. */
async function countingCalls<T>(runtime: LocalRuntime, fn: () => Promise<T>): Promise<{ value: T; calls: number }> {
  let calls = 0;
  const name = `benchWorkflowCalls${ulid()}`;
  runtime.deps.store.raw.middlewareStack.add(
    (next) => async (args) => {
      if (!benchReads.getStore()) calls++;
      return next(args);
    },
    { step: 'initialize', name },
  );
  try {
    return { value: await fn(), calls };
  } finally {
    runtime.deps.store.raw.middlewareStack.remove(name);
  }
}

async function runToEnd(runtime: LocalRuntime, principal: Principal, definition: WorkflowDefinition): Promise<ExecutionView> {
  const workflow = await createWorkflow(runtime.deps, principal, definition);
  const started = await startExecution(runtime.deps, workflow.workflow_id, { trigger: 'api', actor: { userId: principal.userId, username: principal.username } });
  for (;;) {
    const run = await benchReads.run(true, () => getExecution(runtime.deps, workflow.workflow_id, started.execution_id));
    if (['completed', 'failed', 'cancelled'].includes(run.status)) {
      if (run.status !== 'completed') throw new Error(`bench run ${run.execution_id} ${run.status}: ${run.error?.message}`);
      return run;
    }
    // The run's times come from its record, not from this loop: it looks seldom, so as not to load the table it measures.
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Provider time of each step: the latency of the session that produced its output. */
async function providerMs(runtime: LocalRuntime, principal: Principal, run: ExecutionView): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  await Promise.all(
    run.steps.map(async (step) => {
      const sessions = await listSessions(runtime.deps, principal, step.task_id!, 20);
      out.set(step.step_id, sessions.items.filter((s) => s.outcome === 'completed').reduce((sum, s) => sum + s.latency_ms, 0));
    }),
  );
  return out;
}

/** Provider time along the longest path of the DAG (steps weighted by their provider time). */
function criticalProviderMs(run: ExecutionView, provider: Map<string, number>): number {
  const memo = new Map<string, number>();
  const byId = new Map(run.steps.map((s) => [s.step_id, s]));
  const longest = (id: string): number => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    const value = provider.get(id)! + Math.max(0, ...byId.get(id)!.depends_on.map(longest));
    memo.set(id, value);
    return value;
  };
  return Math.max(...run.steps.map((s) => longest(s.step_id)));
}

async function overhead(runtime: LocalRuntime, principal: Principal, label: string, definition: WorkflowDefinition) {
  const dynamodb0 = dynamodbCpuSeconds(runtime);
  const { value: run, calls } = await countingCalls(runtime, () => runToEnd(runtime, principal, definition));
  // DynamoDB Local's whole CPU over the run, per step: the step's calls and its feeds', and also the bench's
  // polling (one read every 500 ms) and the runtime's background work, which the call count leaves out.
  const dynamodbMsPerStep = ((dynamodbCpuSeconds(runtime) - dynamodb0) * 1000) / run.steps.length;
  const provider = await benchReads.run(true, () => providerMs(runtime, principal, run));
  const totalMs = Date.parse(run.completed_at!) - Date.parse(run.created_at);
  const critical = criticalProviderMs(run, provider);
  const steps = run.steps.length;
  return { label, run, provider, steps, totalMs, critical, perStep: (totalMs - critical) / steps, providerMedian: median([...provider.values()]), callsPerStep: calls / steps, dynamodbMsPerStep };
}

/**
 * Where a chain's overhead goes, per step (means over the steps): from the previous step's task ending
 * (the run's creation for the first) to this step's task being stored, which is the orchestration
 * proper (callback, Advance, step claim, task creation); from stored to claimed by the worker (queue,
 * resources, routing, quota and slot); the worker's time around the provider call (claimed to
 * completed, less the call); and the run's end after the last task.
 */
async function chainShares(runtime: LocalRuntime, run: ExecutionView, provider: Map<string, number>) {
  const tasks = await benchReads.run(true, () => Promise.all(run.steps.map((s) => getTask(runtime.deps, s.task_id!))));
  const at = (iso: string | null | undefined) => Date.parse(iso!);
  const orchestration: number[] = [];
  const pickup: number[] = [];
  const around: number[] = [];
  let previousEnd = at(run.created_at);
  tasks.forEach((task, i) => {
    orchestration.push(at(task!.created_at) - previousEnd);
    pickup.push(at(task!.started_at) - at(task!.created_at));
    around.push(at(task!.completed_at) - at(task!.started_at) - provider.get(run.steps[i].step_id)!);
    previousEnd = at(task!.completed_at);
  });
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  return { orchestration: mean(orchestration), pickup: mean(pickup), around: mean(around), end: at(run.completed_at) - previousEnd };
}

async function firingDelays(runtime: LocalRuntime, principal: Principal) {
  const { deps } = runtime;
  const workflow = await createWorkflow(deps, principal, {
    name: `bench-scheduled-${ulid().toLowerCase()}`,
    max_parallel: 5,
    on_failure: 'fail_fast',
    steps: [localStep('only', [])],
  });
  // Every schedule fires at the next minute boundary: 20 firings at once.
  const schedules = [];
  for (let i = 0; i < WORKFLOWS_BENCH.firings; i++) {
    schedules.push(
      await createSchedule(deps, principal, { workflow_id: workflow.workflow_id, name: `bench ${i}`, cron_expression: '* * * * *', timezone: 'UTC', overlap: 'allow', enabled: true }),
    );
  }
  const due = Date.parse(schedules[0].next_run_at!);
  const repo = new ScheduleRepository(deps.store);
  const delivery: number[] = [];
  const runStored: number[] = [];
  const deadline = due + 60_000;
  for (const schedule of schedules) {
    for (;;) {
      const [firing] = await repo.firings(schedule.schedule_id, 1);
      if (firing && firing.outcome !== 'starting') {
        delivery.push(Date.parse(firing.fired_at) - Date.parse(firing.scheduled_for));
        if (firing.execution_id) {
          const run = await getExecution(deps, workflow.workflow_id, firing.execution_id);
          runStored.push(Date.parse(run.created_at) - Date.parse(firing.scheduled_for));
        }
        break;
      }
      if (Date.now() > deadline) throw new Error(`schedule ${schedule.schedule_id} did not fire within a minute of ${new Date(due).toISOString()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  for (const schedule of schedules) await deleteSchedule(deps, principal, schedule.schedule_id);
  return { delivery, runStored };
}

/**
 * `POST /workflows/validate` on hostile definitions (issue 15): the time of one validation and the size
 * of its answer, for the worst inputs the body limit lets through.
 */
export function benchValidation(): Figure[] {
  const step = (id: string, dependsOn: string[]) => ({ id, type: 'custom', payload: { prompt: 'x' }, depends_on: dependsOn });
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `s${i}`);
  const cases: Array<[string, unknown]> = [
    ['1000 steps with back-edges (refused: too many steps)', { name: 'x', steps: ids(1000).map((id, i) => step(id, i ? [`s${i - 1}`, `s${(i * 7) % 1000}`] : ['s999'])) }],
    ['200 steps, each depending on every other (one big cycle group)', { name: 'x', steps: ids(200).map((id) => step(id, ids(200).filter((d) => d !== id))) }],
    ['200 steps, each depending on every earlier one (dense DAG)', { name: 'x', steps: ids(200).map((id, i) => step(id, ids(i))) }],
    ['200 steps, each with 1000 unknown dependencies (error list capped)', { name: 'x', steps: ids(200).map((id) => step(id, Array.from({ length: 1000 }, (_, j) => `u${j}`))) }],
    ['100 separate 2-step cycles (cycles capped at 20)', { name: 'x', steps: ids(200).map((id, i) => step(id, [`s${i ^ 1}`])) }],
  ];
  const rows = cases.map(([label, body]) => {
    const definition = definitionSchema.parse(body);
    const started = performance.now();
    const result = validateDefinition(definition);
    const ms = performance.now() - started;
    const bytes = Buffer.byteLength(JSON.stringify(result));
    return { label, ms, bytes, errors: result.errors.length, truncated: result.truncated };
  });
  printTable(
    'Workflow validation of hostile definitions (one validateDefinition call)',
    ['definition', 'time', 'answer size', 'errors listed', 'truncated'],
    rows.map((r) => [r.label, `${fixed(r.ms, 1)} ms`, `${fixed(r.bytes / 1024, 1)} KiB`, String(r.errors), String(r.truncated)]),
  );
  const worst = rows.reduce((a, b) => (b.ms > a.ms ? b : a));
  const largest = rows.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  return [
    { what: `workflow validation, worst time (${worst.label})`, value: `${fixed(worst.ms, 1)} ms` },
    { what: `workflow validation, largest answer (${largest.label})`, value: `${fixed(largest.bytes / 1024, 1)} KiB` },
  ];
}

export async function benchWorkflows(runtime: LocalRuntime): Promise<Figure[]> {
  const validation = benchValidation();
  const principal = await benchPrincipal(runtime);
  const chainSteps = Array.from({ length: WORKFLOWS_BENCH.chainSteps }, (_, i) => localStep(`s${i}`, i === 0 ? [] : [`s${i - 1}`]));
  const fanSteps = [localStep('root', []), ...Array.from({ length: WORKFLOWS_BENCH.fanOutWidth }, (_, i) => localStep(`f${i}`, ['root']))];
  // A short chain first, so that the figures are of warm code paths (JIT, connections, caches).
  await runToEnd(runtime, principal, { name: `bench-warmup-${ulid().toLowerCase()}`, max_parallel: 5, on_failure: 'fail_fast', steps: chainSteps.slice(0, 5) });
  const chain = await overhead(runtime, principal, `${WORKFLOWS_BENCH.chainSteps}-step chain`, {
    name: `bench-chain-${ulid().toLowerCase()}`,
    max_parallel: 5,
    on_failure: 'fail_fast',
    steps: chainSteps,
  });
  const fan = await overhead(runtime, principal, `${WORKFLOWS_BENCH.fanOutWidth}-wide fan-out (after one root step)`, {
    name: `bench-fan-${ulid().toLowerCase()}`,
    max_parallel: 50,
    on_failure: 'fail_fast',
    steps: fanSteps,
  });
  printTable(
    'Workflow orchestration overhead per step, local provider ((run time − provider time on the critical path) ÷ steps)',
    ['run', 'steps', 'run time', 'provider time (critical path)', 'median step provider time', 'overhead per step', 'DynamoDB calls per step', 'DynamoDB Local CPU per step (all of its process)'],
    [chain, fan].map((r) => [
      r.label,
      String(r.steps),
      `${fixed(r.totalMs / 1000, 2)} s`,
      `${fixed(r.critical)} ms`,
      `${fixed(r.providerMedian)} ms`,
      `${fixed(r.perStep)} ms`,
      fixed(r.callsPerStep, 1),
      `${fixed(r.dynamodbMsPerStep, 1)} ms`,
    ]),
  );
  const shares = await chainShares(runtime, chain.run, chain.provider);
  printTable(
    `Where the ${chain.label}'s overhead goes, mean per step`,
    ['share', 'time'],
    [
      ['orchestration: previous task ended → next task stored (callback, Advance, claim, create)', `${fixed(shares.orchestration, 1)} ms`],
      ['pickup: task stored → claimed by the worker (queue, resources, routing, quota, slot)', `${fixed(shares.pickup, 1)} ms`],
      ['around the call: claimed → completed, less the provider call', `${fixed(shares.around, 1)} ms`],
      ['the run\'s end after its last task (once per run)', `${fixed(shares.end, 1)} ms`],
    ],
  );

  const delays = await firingDelays(runtime, principal);
  const stats = (values: number[]) => ({ p50: median(values), max: Math.max(...values) });
  const delivery = stats(delays.delivery);
  const stored = stats(delays.runStored);
  printTable(
    `Schedule firing delay over ${delays.delivery.length} firings due at the same minute (LocalScheduler, schedule-fire handler)`,
    ['figure', 'p50', 'max'],
    [
      ['firing taken (fired − due)', `${fixed(delivery.p50)} ms`, `${fixed(delivery.max)} ms`],
      ['run stored (run created − due)', `${fixed(stored.p50)} ms`, `${fixed(stored.max)} ms`],
    ],
  );
  return [
    ...validation,
    { what: `workflow overhead per step, ${chain.label}`, value: `${fixed(chain.perStep)} ms (${fixed(chain.callsPerStep, 1)} DynamoDB calls and ${fixed(chain.dynamodbMsPerStep, 1)} ms of DynamoDB Local CPU per step)` },
    { what: `workflow orchestration per step (task ended → next task stored), ${chain.label}`, value: `${fixed(shares.orchestration, 1)} ms` },
    { what: `workflow step pickup / around the call, ${chain.label}`, value: `${fixed(shares.pickup, 1)} / ${fixed(shares.around, 1)} ms` },
    { what: `workflow overhead per step, ${fan.label}`, value: `${fixed(fan.perStep)} ms` },
    { what: `schedule firing delay p50 / max (${delays.delivery.length} firings)`, value: `${fixed(delivery.p50)} / ${fixed(delivery.max)} ms` },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const runtime = await startLocalRuntime({ port: 0, dataDir: null, log: () => undefined });
  try {
    await benchWorkflows(runtime);
  } finally {
    await runtime.stop();
  }
}
