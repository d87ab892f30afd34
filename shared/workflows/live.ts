/**
 * A workflow run's live events come from its stored changes, as a task's do (`tasks/live.ts`): the live
 * feed hands each change of a run's items (`EXECUTION#<id>`: the run's `META`, its steps' `STEP#<id>`)
 * here, and the events follow from the images. The engine, the API and the schedule firing then write
 * and go on; none of them waits on the fan-out, and a change stored just before its writer dies is
 * still told.
 *
 * - one `execution.updated` per run and batch on `workflows` and `execution:<id>`: the run as the batch
 *   leaves it, with the steps the batch changed (`changed_steps`, the ended ones first); a batch that
 *   changed only bookkeeping (the callback token, the state machine's run id) sends nothing;
 * - a run that has just completed or failed goes on the event bus (`execution.completed`,
 *   `execution.failed`: the plugins' events), once per change.
 * Only the run's owner (see `executionOwner`) and holders of `workflows:read_all` receive them.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Deps } from '../platform/runtime.js';
import type { Change, ChangeConsumer } from '../platform/feed.js';
import { publishSystemEvent } from '../platform/system-events.js';
import { publishAll, type LiveEvent } from '../realtime/publisher.js';
import { FINISHED_EXECUTION, isFinishedStep } from './engine.js';
import { definitionOf, executionOwner, executions, executionSummary, stepView, type StepView } from './reads.js';
import { EXECUTION_KEY_PREFIX, EXECUTION_SORT_KEY, STEP_SORT_KEY_PREFIX, executionOfItem, stepOfItem, type ExecutionRecord } from './repo.js';

export const executionChannels = (executionId: string) => ['workflows', `execution:${executionId}`];

/** The live event of a run (and the steps that changed with it). */
export async function executionEvent(deps: Deps, execution: ExecutionRecord, changedSteps: StepView[] = []): Promise<LiveEvent> {
  let ownerId = execution.created_by;
  try {
    ownerId = await executionOwner(deps, execution);
  } catch {
    // A failed lookup narrows the audience to the run's creator.
  }
  return {
    channels: executionChannels(execution.execution_id),
    type: 'execution.updated',
    data: { ...executionSummary(execution), changed_steps: changedSteps },
    options: { permission: 'workflows:read_all', ownerId },
  };
}

/** Publishes one run event now (the live feed does this for every stored change). */
export async function publishExecution(deps: Deps, execution: ExecutionRecord, changedSteps: StepView[] = []): Promise<number> {
  return publishAll(deps, [await executionEvent(deps, execution, changedSteps)]);
}

/** What a change of the run's own item tells: whether clients see a difference, and its bus event. */
export function runAnnouncement(change: Change): { visible: boolean; bus?: { type: string; detail: Record<string, unknown> } } {
  if (change.sk !== EXECUTION_SORT_KEY || !change.newImage) return { visible: false };
  const after = executionOfItem(change.newImage);
  const before = change.oldImage ? executionOfItem(change.oldImage) : undefined;
  const visible = !before || !isDeepStrictEqual({ ...executionSummary(before), output: before.output }, { ...executionSummary(after), output: after.output });
  const justEnded = (after.status === 'completed' || after.status === 'failed') && (!before || !FINISHED_EXECUTION.includes(before.status));
  return { visible, ...(justEnded ? { bus: { type: `execution.${after.status}`, detail: executionSummary(after) } } : {}) };
}

/**
 * The live feed's consumer of run items. Per run, one event for the batch; the run and its definition
 * are read only when the batch holds a step change but not the run's own item (the definition is cached).
 * Redelivered changes are told again (at least once).
 */
export const executionEventsConsumer: ChangeConsumer = {
  name: 'execution-events',
  keyPrefixes: [EXECUTION_KEY_PREFIX],
  async handleBatch(changes, deps) {
    interface RunChanges {
      run?: ExecutionRecord;
      visible: boolean;
      steps: Map<string, Record<string, unknown>>;
    }
    const runs = new Map<string, RunChanges>();
    for (const change of changes) {
      if (!change.newImage) continue;
      const executionId = change.pk.slice(EXECUTION_KEY_PREFIX.length);
      const entry: RunChanges = runs.get(executionId) ?? { visible: false, steps: new Map() };
      runs.set(executionId, entry);
      if (change.sk === EXECUTION_SORT_KEY) {
        const { visible, bus } = runAnnouncement(change);
        entry.run = executionOfItem(change.newImage);
        entry.visible ||= visible;
        if (bus) await publishSystemEvent(deps, bus.type, bus.detail);
      } else if (change.sk.startsWith(STEP_SORT_KEY_PREFIX)) {
        // The latest image of each step wins; a step seen again moves to the end (stream order).
        entry.steps.delete(change.sk);
        entry.steps.set(change.sk, change.newImage);
      }
    }
    const events: LiveEvent[] = [];
    for (const [executionId, entry] of runs) {
      if (!entry.visible && entry.steps.size === 0) continue;
      const run = entry.run ?? (await executions(deps).get(executionId));
      if (!run) continue;
      const definition = entry.steps.size ? await definitionOf(deps, run.workflow_id, run.workflow_version) : undefined;
      const byId = new Map((definition?.steps ?? []).map((s) => [s.id, s]));
      const views: StepView[] = [];
      for (const image of entry.steps.values()) {
        const state = stepOfItem(image);
        const step = byId.get(state.step_id);
        if (step) views.push(stepView(step, state));
      }
      // Ended steps first, then the steps they let start.
      const changed = [...views.filter((v) => isFinishedStep(v.status)), ...views.filter((v) => !isFinishedStep(v.status))];
      events.push(await executionEvent(deps, run, changed));
    }
    if (events.length) await publishAll(deps, events);
  },
};
