import type { WorkflowRunner } from '../ports.js';
import type { Deps } from '../runtime.js';

/** The workflow state machine (port `workflows`); see queue.ts for why each port has its own module. */
export function workflowRunner(deps: Pick<Deps, 'workflows'>): WorkflowRunner {
  return deps.workflows;
}
