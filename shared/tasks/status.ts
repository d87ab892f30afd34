/** Task statuses and types; the transitions between statuses are in transitions.ts. */
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

export const ACTIVE_STATUSES: readonly TaskStatus[] = ['pending', 'queued', 'running'];
export const WAITING_STATUSES: readonly TaskStatus[] = ['pending', 'queued'];
export const TERMINAL_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];

export const isTerminal = (s: TaskStatus) => TERMINAL_STATUSES.includes(s);
/** Title, priority and tags change only while the task has not started. */
export const canEdit = (s: TaskStatus) => WAITING_STATUSES.includes(s);
export const canDelete = (s: TaskStatus) => s !== 'running';
