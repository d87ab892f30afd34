import { Duration } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ALERT_EVALUATOR_INTERVAL_MINUTES, FUNCTIONS } from '../../shared/platform/infra.js';
import type { StageConfig } from '../stage.js';
import type { SupervisorFunction, SupervisorFunctions } from './supervisor-function.js';

export interface AlertingProps {
  readonly stageConfig: StageConfig;
  readonly functions: SupervisorFunctions;
  /** Failed asynchronous invocations (the evaluator's). */
  readonly asyncFailureQueue: Queue;
}

/**
 * The alert evaluator (`functions/alert-evaluator`) on an EventBridge rule every minute. Stopping
 * monitoring (POST /api/v1/monitoring/stop) is stored in the table: the scheduled runs then do nothing,
 * and a run within the configured evaluation interval of the last one is skipped.
 */
export class Alerting extends Construct {
  readonly evaluator: SupervisorFunction;

  constructor(scope: Construct, id: string, props: AlertingProps) {
    super(scope, id);
    const { stage } = props.stageConfig;
    this.evaluator = props.functions.add('AlertEvaluatorFunction', {
      name: 'alert-evaluator',
      description: `Supervisor ${stage}: evaluates the alert rules over the metrics store every minute`,
      limits: FUNCTIONS.background,
      deadLetterQueue: props.asyncFailureQueue,
    });
    new Rule(this, 'AlertEvaluatorSchedule', {
      description: `Supervisor ${stage}: run the alert evaluator every ${ALERT_EVALUATOR_INTERVAL_MINUTES === 1 ? 'minute' : `${ALERT_EVALUATOR_INTERVAL_MINUTES} minutes`}`,
      schedule: Schedule.rate(Duration.minutes(ALERT_EVALUATOR_INTERVAL_MINUTES)),
      targets: [new LambdaFunction(this.evaluator, { deadLetterQueue: props.asyncFailureQueue, retryAttempts: 2, maxEventAge: Duration.minutes(5) })],
    });
  }
}
