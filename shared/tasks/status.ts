/** Task statuses and the transitions between them. Every transition is a conditional write on the old status. */
export const TASK_STATUSES = ['pending', 'queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const TASK_TYPES = [
  'pr_review',
  'issue_summary',
  'code_analysis',
  'refactor',
  'bug_fix',
  'feature',
  'documentation',
  'testing',
  'security_audit',
  'custom',
] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/**
 * pending: stored, not yet handed to the queue; queued: a message is (or will be, after a delay) on the
 * queue; running: a worker holds its lease; completed / failed / cancelled: terminal until a manual retry.
 * running → queued is a retry after a retryable error (never `failed` mid-retry).
 */
export const TRANSITIONS: Record<TaskStatus, readonly TaskStatus[]> = {
  pending: ['queued', 'running', 'cancelled', 'failed'],
  queued: ['running', 'cancelled', 'failed', 'queued'],
  running: ['completed', 'failed', 'queued', 'cancelled'],
  completed: [],
  failed: ['pending'],
  cancelled: ['pending'],
};

export const ACTIVE_STATUSES: readonly TaskStatus[] = ['pending', 'queued', 'running'];
export const WAITING_STATUSES: readonly TaskStatus[] = ['pending', 'queued'];
export const TERMINAL_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export const isTerminal = (s: TaskStatus) => TERMINAL_STATUSES.includes(s);
export const canCancel = (s: TaskStatus) => ACTIVE_STATUSES.includes(s);
export const canRetry = (s: TaskStatus) => s === 'failed' || s === 'cancelled';
/** Title, priority and tags change only while the task has not started. */
export const canEdit = (s: TaskStatus) => WAITING_STATUSES.includes(s);
export const canDelete = (s: TaskStatus) => s !== 'running';
