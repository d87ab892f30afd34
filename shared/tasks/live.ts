/**
 * A task's live events come from its stored changes, not from the code that made them: the live feed
 * (the table's stream, read with no batching window) hands each change of a task item here, and the
 * event follows from the item's images. So every writer (the API, the worker, the sweeper, the
 * dead-letter consumer, the workflow engine) announces its changes the same way, none of them waits on
 * the fan-out, and a change is announced once it is stored, even if its writer dies just after.
 *
 * - INSERT: `task.created` on `tasks` (and `task.created` on the event bus);
 * - MODIFY that changed what a client sees (`publicView`, apart from `BOOKKEEPING`):
 *   `task.updated` on `tasks` and `task:<id>`; a task that has just completed or failed also goes on
 *   the event bus (`task.completed`, `task.failed`: the plugins' events).
 * Events go only to the task's creator and to holders of `tasks:read_all`.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Deps } from '../platform/runtime.js';
import type { Change, ChangeConsumer } from '../platform/feed.js';
import { publishSystemEvent } from '../platform/system-events.js';
import { publishAll, type LiveEvent } from '../realtime/publisher.js';
import { publicView, TASK_KEY_PREFIX, TASK_SORT_KEY, type TaskRecord } from './repo.js';
import type { TaskView } from './model.js';

export const taskChannels = (taskId: string) => ['tasks', `task:${taskId}`];

/** The live event of a task's creation or change. */
export function taskEvent(type: 'task.created' | 'task.updated', task: TaskRecord | TaskView): LiveEvent {
  const view = publicView(task as TaskRecord);
  // A task created this instant has no subscriber on `task:<id>` yet: subscribing needs the task to exist,
  // and its id reaches a client with this event or the create's answer.
  const channels = type === 'task.created' ? ['tasks'] : taskChannels(view.task_id);
  return { channels, type, data: view, options: { permission: 'tasks:read_all', ownerId: view.created_by } };
}

/** Publishes one task event now (the live feed does this for every stored change). */
export function publishTask(deps: Deps, type: 'task.created' | 'task.updated', task: TaskRecord | TaskView): Promise<number> {
  return publishAll(deps, [taskEvent(type, task)]);
}

const ENDED = ['completed', 'failed', 'cancelled'];
/**
 * Fields whose change alone is not announced: `version` and `updated_at` change on every write, and a
 * queued task's next attempt moves on every re-send and every deferral for the reason it already waits for.
 */
const BOOKKEEPING: readonly (keyof TaskView)[] = ['version', 'updated_at', 'next_attempt_at'];

function seen(image: Record<string, unknown>): Record<string, unknown> {
  const view: Record<string, unknown> = { ...publicView(image as unknown as TaskRecord) };
  for (const field of BOOKKEEPING) delete view[field];
  return view;
}

/** What a stored change of a task item announces: its live event, and its event-bus event. */
export function announcementsOf(change: Change): { live?: LiveEvent; bus?: { type: string; detail: Record<string, unknown> } } {
  if (change.sk !== TASK_SORT_KEY || !change.newImage) return {};
  const after = change.newImage as unknown as TaskRecord;
  if (change.kind === 'INSERT' || !change.oldImage) {
    return { live: taskEvent('task.created', after), bus: { type: 'task.created', detail: { ...publicView(after) } } };
  }
  if (isDeepStrictEqual(seen(change.oldImage), seen(change.newImage))) return {};
  const before = change.oldImage as unknown as TaskRecord;
  const justEnded = (after.status === 'completed' || after.status === 'failed') && !ENDED.includes(before.status);
  return {
    live: taskEvent('task.updated', after),
    ...(justEnded ? { bus: { type: `task.${after.status}`, detail: { ...publicView(after) } } } : {}),
  };
}

/**
 * The live feed's consumer of task items. A batch's events go out in stream order, each channel's
 * subscribers read once for the batch. Redelivered changes are announced again (at least once).
 */
export const taskEventsConsumer: ChangeConsumer = {
  name: 'task-events',
  keyPrefixes: [TASK_KEY_PREFIX],
  async handleBatch(changes, deps) {
    const announced = changes.map(announcementsOf);
    for (const { bus } of announced) if (bus) await publishSystemEvent(deps, bus.type, bus.detail);
    const live = announced.flatMap(({ live }) => (live ? [live] : []));
    if (live.length) await publishAll(deps, live);
  },
};
