import type { Deps } from '../platform/runtime.js';
import { logger } from '../platform/logger.js';
import { VersionConflictError } from '../platform/store/conflicts.js';
import { TaskRepository, type TaskRecord } from './repo.js';
import { enqueue, sendRun } from './service.js';
import { recoverExpiredLease } from './runner.js';
import { ulid } from 'ulid';

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
}

export async function sweepTasks(deps: Deps): Promise<SweepReport> {
  const repo = new TaskRepository(deps.store);
  const now = deps.clock.now();
  const report: SweepReport = { pending_enqueued: 0, queued_resent: 0, leases_recovered: 0 };

  await eachTask(repo, 'pending', 'next_attempt_at < :cutoff', { ':cutoff': iso(now, -STUCK_PENDING_SECONDS) }, async (task) => {
    if (await enqueue(deps, task)) report.pending_enqueued++;
  });

  await eachTask(repo, 'queued', 'next_attempt_at < :cutoff', { ':cutoff': iso(now, -STUCK_QUEUED_SECONDS) }, async (task) => {
    // Same token: the message in the queue (if any) stays valid, so a long queue never starves a task.
    const token = task.run_token ?? ulid();
    const nowIso = deps.clock.now().toISOString();
    try {
      await repo.apply(task, { set: { next_attempt_at: nowIso, run_token: token } });
    } catch (err) {
      if (err instanceof VersionConflictError) return; // changed meanwhile: it is moving
      throw err;
    }
    if (await sendRun(deps, task.task_id, token, 0)) report.queued_resent++;
  });

  await eachTask(repo, 'running', 'lease_until < :now', { ':now': now.toISOString() }, async (task) => {
    try {
      await recoverExpiredLease(deps, task);
      report.leases_recovered++;
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
    }
  });

  if (report.pending_enqueued || report.queued_resent || report.leases_recovered) logger.info('sweeper moved stuck tasks', { ...report });
  return report;
}

async function eachTask(repo: TaskRepository, status: TaskRecord['status'], expr: string, values: Record<string, unknown>, fn: (task: TaskRecord) => Promise<void>): Promise<void> {
  let startKey: Record<string, unknown> | undefined;
  let seen = 0;
  do {
    const page = await repo.byStatusBefore(status, { expr, values }, PAGE, startKey);
    for (const task of page.items) {
      try {
        await fn(task);
      } catch (err) {
        logger.error('sweeper could not move a task', { task_id: task.task_id, status, error: err as Error });
      }
    }
    seen += page.items.length;
    startKey = page.lastKey;
  } while (startKey && seen < MAX_PER_STATUS);
}

function iso(now: Date, offsetSeconds: number): string {
  return new Date(now.getTime() + offsetSeconds * 1000).toISOString();
}
