import type { Deps } from '../platform/runtime.js';
import { logger } from '../platform/logger.js';
import { VersionConflictError } from '../platform/store/conflicts.js';
import { TaskRepository, type TaskRecord } from './repo.js';
import { commit, enqueue } from './service.js';
import { recoverExpiredLease } from './runner.js';
import { resend } from './transitions.js';
import { reclaimAllocations } from '../resources/service.js';

/**
 * The write of a task and the send of its message are not atomic, and workers die. The sweeper (every
 * minute on AWS, every 30 s locally) finds what fell between: tasks left `pending` (never handed to the
 * queue), `queued` tasks whose message should long have arrived, and `running` tasks whose lease expired.
 */
export const STUCK_PENDING_SECONDS = 60;
/** Longer than a message normally waits in the queue; a re-sent duplicate is harmless (claims are conditional). */
export const STUCK_QUEUED_SECONDS = 120;
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

  await eachTask('queued', (startKey) => repo.stuckTasks('queued', ago(now, STUCK_QUEUED_SECONDS), PAGE, startKey), async (task) => {
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

async function eachTask(status: TaskRecord['status'], page: (startKey?: Record<string, unknown>) => Promise<Page>, fn: (task: TaskRecord) => Promise<void>): Promise<void> {
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
  } while (startKey && seen < MAX_PER_STATUS);
}

function ago(now: Date, seconds: number): Date {
  return new Date(now.getTime() - seconds * 1000);
}
