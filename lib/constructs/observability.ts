import { LogGroup } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { StageConfig } from '../stage.js';

/**
 * A log group with the stage's retention and removal policy: every log group of the stack (each
 * function's, the APIs' access logs, the state machine's) is made here.
 */
export function stageLogGroup(scope: Construct, id: string, stageConfig: StageConfig, logGroupName?: string): LogGroup {
  return new LogGroup(scope, id, {
    ...(logGroupName === undefined ? {} : { logGroupName }),
    retention: stageConfig.logRetention,
    removalPolicy: stageConfig.logRemovalPolicy,
  });
}

export interface SupervisorObservabilityProps {
  readonly stageConfig: StageConfig;
}

/**
 * Logs and monitoring of the stack that belong to no single function or API. Function log groups
 * (`SupervisorFunction`) and the API stages' access logs (`SupervisorHttpApi`, `SupervisorWebSocketApi`)
 * are made with `stageLogGroup` by their owners; tracing is on for every function and the state
 * machine. No CloudWatch alarms exist yet: they belong here.
 *
 * Resources are created in the given scope (the stack) so that their logical ids stay those of the
 * stack's direct children.
 */
export class SupervisorObservability {
  constructor(
    private readonly scope: Construct,
    private readonly props: SupervisorObservabilityProps,
  ) {}

  /** The workflow state machine's execution log, under `/aws/vendedlogs/states/`. */
  stateMachineLogs(stateMachineName: string): LogGroup {
    return stageLogGroup(this.scope, 'WorkflowStateMachineLogs', this.props.stageConfig, `/aws/vendedlogs/states/${stateMachineName}`);
  }
}
