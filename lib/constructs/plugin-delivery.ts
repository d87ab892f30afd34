import { Duration } from 'aws-cdk-lib';
import { Rule, Schedule, type IEventBus } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { FUNCTIONS } from '../../shared/platform/infra.js';
import type { StageConfig } from '../stage.js';
import type { SupervisorFunction, SupervisorFunctions } from './supervisor-function.js';

export interface PluginDeliveryProps {
  readonly stageConfig: StageConfig;
  readonly functions: SupervisorFunctions;
  readonly eventBus: IEventBus;
  readonly asyncFailureQueue: IQueue;
}

/**
 * Plugin event delivery: the `plugin-delivery` function as the target of a rule on the stage bus
 * (every event with source `supervisor`) and of a one-minute schedule that runs the stored retries
 * that are due. Failed invocations (after EventBridge's own retries) go to the async failure queue.
 */
export class PluginDelivery {
  readonly fn: SupervisorFunction;

  constructor(scope: Construct, props: PluginDeliveryProps) {
    const { stage } = props.stageConfig;
    this.fn = props.functions.add('PluginDeliveryFunction', {
      name: 'plugin-delivery',
      description: `Supervisor ${stage}: delivers bus events to the active plugins and runs their due retries`,
      limits: FUNCTIONS.background,
      deadLetterQueue: props.asyncFailureQueue,
    });
    const target = () => new LambdaFunction(this.fn, { deadLetterQueue: props.asyncFailureQueue, retryAttempts: 2, maxEventAge: Duration.hours(1) });
    new Rule(scope, 'PluginEventsRule', {
      description: `Supervisor ${stage}: platform and custom events to the plugin delivery function`,
      eventBus: props.eventBus,
      eventPattern: { source: ['supervisor'] },
      targets: [target()],
    });
    new Rule(scope, 'PluginRetrySchedule', {
      description: `Supervisor ${stage}: run due plugin delivery retries every minute`,
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [target()],
    });
  }
}
