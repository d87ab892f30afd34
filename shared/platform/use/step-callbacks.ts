import type { WorkflowRunner } from '../ports.js';
import type { Deps } from '../runtime.js';

/**
 * Answers a workflow run's waiting step (port `stepCallbacks`: SendTaskSuccess/SendTaskFailure on the
 * state machine). Separate from `workflowRunner` because every function that ends a step's task needs
 * it, while only a few may start or stop runs.
 */
export function stepCallbacks(deps: Pick<Deps, 'workflows'>): Pick<WorkflowRunner, 'sendTaskSuccess' | 'sendTaskFailure'> {
  return deps.workflows;
}
