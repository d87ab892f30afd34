import { Duration } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { FilterCriteria, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { CHANGE_FEED, FAILURE_QUEUE_RETENTION_DAYS, FUNCTIONS, METRICS_COLLECTOR_INTERVAL_MINUTES } from '../../shared/platform/infra.js';
import { CHANGE_FEED_KEY_PREFIXES } from '../../shared/change-feed.js';
import { acknowledge } from '../nag.js';
import type { StageConfig } from '../stage.js';
import type { SupervisorFunction, SupervisorFunctions } from './supervisor-function.js';
import { QUEUE_DEFAULTS } from './task-processing.js';

export interface ChangeFeedProps {
  readonly stageConfig: StageConfig;
  readonly functions: SupervisorFunctions;
  readonly table: Table;
  /** Failed asynchronous invocations (the collector's). */
  readonly asyncFailureQueue: Queue;
}

/**
 * The table's change feed and what hangs off it: the change-feed function on the table's stream
 * (partial batch failures, bisect on error, bounded retries, then the batch's description to an SQS
 * failure queue), and the metrics collector on an EventBridge rule. Settings from `CHANGE_FEED` of
 * `shared/platform/infra.ts`, which the local poller uses too.
 */
export class ChangeFeed {
  readonly consumer: SupervisorFunction;
  readonly collector: SupervisorFunction;
  /** Stream batches that failed every retry (their shard, sequence numbers; the records stay in the stream 24 h). */
  readonly failureQueue: Queue;

  constructor(scope: Construct, props: ChangeFeedProps) {
    const { stage } = props.stageConfig;
    this.failureQueue = new Queue(scope, 'ChangeFeedFailureQueue', {
      ...QUEUE_DEFAULTS,
      retentionPeriod: Duration.days(FAILURE_QUEUE_RETENTION_DAYS),
    });
    acknowledge(
      this.failureQueue,
      'AwsSolutions-SQS3',
      'This queue is the on-failure destination of the change feed (it is itself where failures end), not a work queue needing a DLQ.',
    );
    acknowledge(
      this.failureQueue,
      'Serverless-SQSRedrivePolicy',
      'This queue is the on-failure destination of the change feed (the end of the chain); a redrive policy would only move the same messages once more.',
    );
    this.consumer = props.functions.add('ChangeFeedFunction', {
      name: 'change-feed',
      description: `Supervisor ${stage}: consumes the table's stream (metrics and other side effects)`,
      limits: FUNCTIONS.background,
      noDlqReason: 'Consumes the table stream through an event source mapping whose on-failure destination is the change-feed failure queue.',
    });
    this.consumer.addEventSource(
      new DynamoEventSource(props.table, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: CHANGE_FEED.batchSize,
        maxBatchingWindow: Duration.seconds(CHANGE_FEED.maxBatchingWindowSeconds),
        bisectBatchOnError: CHANGE_FEED.bisectBatchOnError,
        retryAttempts: CHANGE_FEED.retryAttempts,
        maxRecordAge: Duration.hours(CHANGE_FEED.maxRecordAgeHours),
        reportBatchItemFailures: true,
        onFailure: new SqsDlq(this.failureQueue),
        // Only the items some consumer wants reach the function (not, e.g., the metric rollups it writes).
        filters: [FilterCriteria.filter({ dynamodb: { Keys: { pk: { S: CHANGE_FEED_KEY_PREFIXES.map((prefix) => ({ prefix })) } } } })],
      }),
    );

    this.collector = props.functions.add('MetricsCollectorFunction', {
      name: 'metrics-collector',
      description: `Supervisor ${stage}: samples task and workflow gauges into the metrics store every minute`,
      limits: FUNCTIONS.background,
      deadLetterQueue: props.asyncFailureQueue,
    });
    new Rule(scope, 'MetricsCollectorSchedule', {
      description: `Supervisor ${stage}: run the metrics collector every ${METRICS_COLLECTOR_INTERVAL_MINUTES === 1 ? 'minute' : `${METRICS_COLLECTOR_INTERVAL_MINUTES} minutes`}`,
      schedule: Schedule.rate(Duration.minutes(METRICS_COLLECTOR_INTERVAL_MINUTES)),
      targets: [new LambdaFunction(this.collector, { deadLetterQueue: props.asyncFailureQueue, retryAttempts: 2, maxEventAge: Duration.minutes(5) })],
    });
  }
}
