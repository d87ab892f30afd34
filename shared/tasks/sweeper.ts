import type { Deps } from '../platform/runtime.js';
import { logger } from '../platform/logger.js';
import { TASK_QUEUE } from '../platform/infra.js';
import { VersionConflictError } from '../platform/store/conflicts.js';
import { TaskRepository, type TaskRecord } from './repo.js';
import { commit, enqueue, sendRun } from './service.js';
import { recoverExpiredLease } from './runner.js';
import { interrupt, queueDelay, resend } from './transitions.js';
import { reclaimAllocations } from '../resources/service.js';

/**
 * The write of a task and the send of its message are not atomic, and workers die. The sweeper (every
 * minute on AWS, every 30 s locally) finds what fell between: tasks left `pending` (never handed to the
 * queue), `queued` tasks whose message should long have arrived (and was not sent within the queue's
 * visibility timeout), and `running` tasks whose lease expired.
 */
export const STUCK_PENDING_SECONDS = 60;
/** Longer than a message normally waits in the queue; a re-sent duplicate is harmless (claims are conditional). */
export const STUCK_QUEUED_SECONDS = 120;
/**
 * A queued task whose message was sent (`last_sent_at`) is re-sent only once that send is older than
 * the queue's visibility timeout plus this margin. Under a backlog the message waits its turn; it is
 * not lost, and re-sending it every sweep would give each waiting task one duplicate per sweep, each
 * taking a worker slot. A received message whose worker died comes back after the visibility timeout
 * by itself. Tasks with no recorded send (the send failed, or stored before it was recorded) are
 * re-sent after STUCK_QUEUED_SECONDS as before.
 */
export const RESEND_MARGIN_SECONDS = 300;
export const RESEND_AFTER_SECONDS = TASK_QUEUE.visibilityTimeoutSeconds + RESEND_MARGIN_SECONDS;
/** Bounds one sweep's work; what is left is found by the next sweep. */
const MAX_PER_STATUS = 1000;
const PAGE = 100;

export interface SweepReport {
  pending_enqueued: number;
  queued_resent: number;
  leases_recovered: number;
  allocations_reclaimed: number;
}

type Page = { items: TaskRecord[]; lastKey?: Record<string, unknown> };

export async function sweepTasks(deps: Deps): Promise<SweepReport> {
  const repo = new TaskRepository(deps.store);
  const now = deps.clock.now();
  const report: SweepReport = { pending_enqueued: 0, queued_resent: 0, leases_recovered: 0, allocations_reclaimed: 0 };

  await eachTask('pending', (startKey) => repo.stuckTasks('pending', ago(now, STUCK_PENDING_SECONDS), PAGE, startKey), async (task) => {
    if (await enqueue(deps, task)) report.pending_enqueued++;
  });

  await eachTask('queued', (startKey) => repo.stuckTasks('queued', ago(now, STUCK_QUEUED_SECONDS), PAGE, startKey, ago(now, RESEND_AFTER_SECONDS)), async (task) => {
    try {
      if ((await commit(deps, task, resend(task, deps.clock.now()))).sent) report.queued_resent++;
    } catch (err) {
      if (err instanceof VersionConflictError) return; // changed meanwhile: it is moving
      throw err;
    }
  });

  await eachTask('running', (startKey) => repo.expiredLeases(now, PAGE, startKey), async (task) => {
    try {
      await recoverExpiredLease(deps, task);
      report.leases_recovered++;
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
    }
  });

  // Resources held past their lease (a dead worker) or by ended tasks go back to their pools.
  try {
    report.allocations_reclaimed = await reclaimAllocations(deps);
  } catch (err) {
    logger.error('sweeper could not reclaim resource allocations', { error: err as Error });
  }

  if (report.pending_enqueued || report.queued_resent || report.leases_recovered || report.allocations_reclaimed) logger.info('sweeper moved stuck tasks', { ...report });
  return report;
}

export interface RestartReport {
  interrupted: number;
  pending_enqueued: number;
  queued_resent: number;
}

/**
 * What a local runtime does as it starts, instead of waiting for leases and the sweeper:
 * - the running tasks whose lease a dead instance (a previous runtime on this table) holds go back to
 *   the queue at once, the attempt recorded as `interrupted`;
 * - with `resendQueued` (the queue lost its messages with the process, and no other runtime shares the
 *   table), every queued task's message is sent again with its token, delayed until its
 *   next_attempt_at, and pending tasks are enqueued.
 */
export async function recoverAtStart(deps: Deps, options: { deadInstances: string[]; resendQueued: boolean }): Promise<RestartReport> {
  const repo = new TaskRepository(deps.store);
  const report: RestartReport = { interrupted: 0, pending_enqueued: 0, queued_resent: 0 };
  for (const instance of options.deadInstances) {
    await eachTask('running', (startKey) => repo.leasesOf(instance, PAGE, startKey), async (task) => {
      try {
        await commit(deps, task, interrupt(task, deps.clock.now(), 'instance_gone'));
        report.interrupted++;
      } catch (err) {
        if (!(err instanceof VersionConflictError)) throw err;
      }
    }, Infinity);
  }
  if (options.resendQueued) {
    const everything = new Date('9999-12-31T23:59:59.999Z');
    await eachTask('pending', (startKey) => repo.stuckTasks('pending', everything, PAGE, startKey), async (task) => {
      if (await enqueue(deps, task)) report.pending_enqueued++;
    }, Infinity);
    await eachTask('queued', (startKey) => repo.stuckTasks('queued', everything, PAGE, startKey), async (task) => {
      if (!task.run_token) {
        if ((await commit(deps, task, resend(task, deps.clock.now()))).sent) report.queued_resent++;
        return;
      }
      const wait = task.next_attempt_at ? (Date.parse(task.next_attempt_at) - deps.clock.now().getTime()) / 1000 : 0;
      if (await sendRun(deps, task.task_id, task.run_token, queueDelay(wait))) report.queued_resent++;
    }, Infinity);
  }
  if (report.interrupted || report.pending_enqueued || report.queued_resent) logger.info('tasks recovered at start', { ...report });
  return report;
}

async function eachTask(status: TaskRecord['status'], page: (startKey?: Record<string, unknown>) => Promise<Page>, fn: (task: TaskRecord) => Promise<void>, max = MAX_PER_STATUS): Promise<void> {
  let startKey: Record<string, unknown> | undefined;
  let seen = 0;
  do {
    const { items, lastKey } = await page(startKey);
    for (const task of items) {
      try {
        await fn(task);
      } catch (err) {
        logger.error('sweeper could not move a task', { task_id: task.task_id, status, error: err as Error });
      }
    }
    seen += items.length;
    startKey = lastKey;
  } while (startKey && seen < max);
}

function ago(now: Date, seconds: number): Date {
  return new Date(now.getTime() - seconds * 1000);
}
