import { Duration } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Alarm, ComparisonOperator, MathExpression, Metric, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { FAILURE_QUEUES, FUNCTIONS } from '../../shared/platform/infra.js';
import { METRICS, metricsNamespace } from '../../shared/platform/metrics.js';
import { acknowledge } from '../nag.js';
import { stackInstanceSuffix, type StageConfig } from '../stage.js';
import type { SupervisorFunction, SupervisorFunctions } from './supervisor-function.js';

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

/**
 * The task queue's oldest message may be this old before the alarm fires: past the longest a message
 * is held back on purpose (a delayed re-send waits at most 900 s, SQS's maximum delay) plus a worker's
 * longest run (900 s), so only a queue the worker does not keep up with, or a stopped worker, trips it.
 */
export const TASK_QUEUE_AGE_ALARM_SECONDS = 900 + FUNCTIONS.worker.timeoutSeconds;

export interface SupervisorObservabilityProps {
  readonly stageConfig: StageConfig;
  /** An address the alarm topic mails (CDK context `alarmEmail`); none: subscribe to the topic yourself. */
  readonly alarmEmail?: string;
}

/** What the alarms watch (`SupervisorObservability.alarms`). */
export interface AlarmedResources {
  readonly functions: ReadonlyMap<string, SupervisorFunction>;
  readonly taskQueue: Queue;
  readonly taskDlq: Queue;
  /** Queues that only collect failures (their consumer drains them: arrivals count, not only depth). */
  readonly failureQueues: readonly Queue[];
  readonly httpApi: HttpApi;
  readonly stateMachine: StateMachine;
}

/**
 * Logs, alarms and the failure-queue consumer: what belongs to no single function or API. Function
 * log groups (`SupervisorFunction`) and the API stages' access logs are made with `stageLogGroup` by
 * their owners; tracing is on for every function and the state machine.
 *
 * Every alarm notifies one SNS topic (`AlarmTopic`), mailed to the `alarmEmail` context if given.
 * Resources are created in the given scope (the stack) so that their logical ids stay those of the
 * stack's direct children.
 */
export class SupervisorObservability {
  readonly alarmTopic: Topic;
  private readonly action: SnsAction;

  constructor(
    private readonly scope: Construct,
    private readonly props: SupervisorObservabilityProps,
  ) {
    this.alarmTopic = new Topic(scope, 'AlarmTopic', {
      displayName: `Supervisor ${props.stageConfig.stage} alarms`,
      enforceSSL: true,
    });
    acknowledge(
      this.alarmTopic,
      'AwsSolutions-SNS2',
      'The topic carries CloudWatch alarm notifications only (alarm names, states and metric values, no data of the application). ' +
        'CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key, and a customer-managed key for alarm names is not worth its cost.',
    );
    if (props.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));
    this.action = new SnsAction(this.alarmTopic);
  }

  /** The workflow state machine's execution log, under `/aws/vendedlogs/states/`. */
  stateMachineLogs(stateMachineName: string): LogGroup {
    // Retained in production-like stages: the suffix keeps a re-created stack from colliding with it.
    const name = `/aws/vendedlogs/states/${stateMachineName}-${stackInstanceSuffix(this.scope)}`;
    return stageLogGroup(this.scope, 'WorkflowStateMachineLogs', this.props.stageConfig, name);
  }

  /**
   * The consumer of the failure queues (functions/failures): records a dead-lettered schedule firing
   * on its schedule and a failed sweep in the sweeper's health, where the API shows them.
   */
  failureConsumer(functions: SupervisorFunctions, queues: readonly Queue[]): SupervisorFunction {
    const { stage } = this.props.stageConfig;
    const fn = functions.add('FailureQueueFunction', {
      name: 'failures',
      description: `Supervisor ${stage}: records failed schedule firings and sweeps from the failure queues`,
      limits: FUNCTIONS.background,
      noDlqReason: `Consumes the failure queues through event source mappings; a message it cannot record stays in its queue (${FAILURE_QUEUES.retentionDays} days) and is retried.`,
    });
    for (const queue of queues) {
      fn.addEventSource(new SqsEventSource(queue, { batchSize: FAILURE_QUEUES.batchSize, reportBatchItemFailures: true }));
    }
    acknowledge(
      fn,
      'Serverless-LambdaEventSourceMappingDestination',
      'SQS event source mappings do not support on-failure destinations; these queues are already the end of their failure chains, and an unrecorded message stays in its queue.',
    );
    return fn;
  }

  /**
   * The stack's alarms: every DLQ and failure queue receiving or holding a message, the task queue's
   * oldest message, each function's errors and throttles, HTTP API 5xx answers, failed and timed-out
   * workflow executions, and dead-lettered tasks.
   */
  alarms(r: AlarmedResources): Alarm[] {
    const { stage } = this.props.stageConfig;
    const made: Alarm[] = [];
    const alarm = (id: string, description: string, metric: IMetric, threshold = 0, comparisonOperator = ComparisonOperator.GREATER_THAN_THRESHOLD) => {
      const a = new Alarm(this.scope, id, {
        alarmDescription: `Supervisor ${stage}: ${description}`,
        metric,
        threshold,
        comparisonOperator,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(this.action);
      made.push(a);
      return a;
    };
    const period = Duration.minutes(1);

    alarm('TaskDeadLetterQueueDepthAlarm', 'task messages in the dead-letter queue', r.taskDlq.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }));
    for (const queue of r.failureQueues) {
      const id = queue.node.id;
      // Its consumer drains it within seconds: messages sent count as well as messages waiting.
      alarm(
        `${id}Alarm`,
        `messages arrived in or wait in ${id}`,
        new MathExpression({
          expression: 'sent + visible',
          usingMetrics: {
            sent: queue.metricNumberOfMessagesSent({ period, statistic: 'Sum' }),
            visible: queue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
          },
          period,
          label: `${id} arrivals and depth`,
        }),
      );
    }
    alarm(
      'TaskQueueAgeAlarm',
      `the task queue's oldest message is over ${TASK_QUEUE_AGE_ALARM_SECONDS} s old`,
      r.taskQueue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5), statistic: 'Maximum' }),
      TASK_QUEUE_AGE_ALARM_SECONDS,
    );
    for (const [label, fn] of [...r.functions].sort(([a], [b]) => a.localeCompare(b))) {
      const id = label.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());
      alarm(`${id}ErrorsAlarm`, `the ${label} function failed`, fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }));
      alarm(`${id}ThrottlesAlarm`, `the ${label} function was throttled`, fn.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }));
    }
    alarm('HttpApi5xxAlarm', 'the HTTP API answered 5xx', r.httpApi.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }));
    alarm('WorkflowExecutionsFailedAlarm', 'workflow executions failed', r.stateMachine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' }));
    alarm('WorkflowExecutionsTimedOutAlarm', 'workflow executions timed out', r.stateMachine.metricTimedOut({ period: Duration.minutes(5), statistic: 'Sum' }));
    alarm(
      'TasksDeadLetteredAlarm',
      'tasks failed as dead-lettered (their message kept failing in the worker)',
      new Metric({
        namespace: metricsNamespace(stage),
        metricName: METRICS.tasksDeadLettered,
        dimensionsMap: { service: 'supervisor-dead-letter' },
        period: Duration.minutes(5),
        statistic: 'Sum',
      }),
    );
    return made;
  }
}
