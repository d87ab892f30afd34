import type { Deps } from '../platform/runtime.js';
import type { CreateTaskInput, ExecuteBatchInput, TaskView } from './model.js';
import { isTerminal } from './status.js';
import { TaskRepository, publicView } from './repo.js';
import { checkRouting, createTask, type TaskActor } from './service.js';
import { validationError } from '../platform/errors.js';
import { derivedUlid, newUlid } from '../platform/ids.js';

/**
 * The execute endpoints: task creation plus a bounded wait, so that an HTTP caller gets the result in
 * one request when the provider is quick, and a task id to follow when it is not (API Gateway ends
 * requests at 30 s).
 */
const POLL_MS = 200;
/** Tasks of a batch created at once. */
const CREATE_PARALLELISM = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `taskId`: the id an idempotent request chose; a task already stored under it is answered, not created again. */
export async function executeOne(deps: Deps, actor: TaskActor, input: CreateTaskInput, waitSeconds: number, taskId?: string): Promise<{ task: TaskView; finished: boolean }> {
  const created = await createTask(deps, actor, input, undefined, { taskId });
  const deadline = Date.now() + waitSeconds * 1000;
  const repo = new TaskRepository(deps.store);
  let task = created;
  while (!isTerminal(task.status) && Date.now() < deadline) {
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
    const current = await repo.get(created.task_id);
    if (!current) break;
    task = publicView(current);
  }
  return { task, finished: isTerminal(task.status) };
}

/**
 * `batchId`: the id an idempotent request chose. Each item's task id is derived from it and the item's
 * index, so a retry of a request that died half-way creates only the tasks the first attempt did not.
 */
export async function executeBatch(deps: Deps, actor: TaskActor, input: ExecuteBatchInput, chosenBatchId?: string) {
  // Every item is checked before any is created: a bad item stores nothing.
  const errors = (await Promise.all(input.items.map((item, i) => checkRouting(deps, item, `items.${i}.`)))).flat();
  if (errors.length) throw validationError(errors);
  const batchId = chosenBatchId ?? newUlid();
  const concurrency = { group: `batch:${batchId}`, limit: input.max_concurrency };
  const created: TaskView[] = new Array(input.items.length);
  for (let i = 0; i < input.items.length; i += CREATE_PARALLELISM) {
    const slice = input.items.slice(i, i + CREATE_PARALLELISM);
    const tasks = await Promise.all(slice.map((item, j) => createTask(deps, actor, item, undefined, { concurrency, batchId, taskId: chosenBatchId ? derivedUlid(batchId, String(i + j)) : undefined })));
    tasks.forEach((t, j) => (created[i + j] = t));
  }
  const deadline = Date.now() + input.wait_seconds * 1000;
  const repo = new TaskRepository(deps.store);
  let current = created;
  while (current.some((t) => !isTerminal(t.status)) && Date.now() < deadline) {
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
    const found = await repo.getMany(created.map((t) => t.task_id));
    current = created.map((t) => (found.has(t.task_id) ? publicView(found.get(t.task_id)!) : t));
  }
  const items = current.map((t, index) => ({ index, task_id: t.task_id, status: t.status, result: t.result, error: t.error }));
  return {
    batch_id: batchId,
    items,
    completed: items.filter((i) => i.status === 'completed').length,
    failed: items.filter((i) => i.status === 'failed').length,
    unfinished: items.filter((i) => !isTerminal(i.status)).length,
  };
}
