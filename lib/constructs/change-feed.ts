import { Duration } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { FilterCriteria, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { CHANGE_FEED, FAILURE_QUEUE_RETENTION_DAYS, FUNCTIONS, LIVE_FEED, METRICS_COLLECTOR_INTERVAL_MINUTES, type FeedSettings } from '../../shared/platform/infra.js';
import { CHANGE_FEED_KEY_PREFIXES } from '../../shared/change-feed.js';
import { LIVE_FEED_KEY_PREFIXES } from '../../shared/live-feed.js';
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
 * The table's change feed and what hangs off it: two functions on the table's stream, each with
 * partial batch failures, bisect on error, bounded retries, then the batch's description to an SQS
 * failure queue: the change-feed function (metrics, the analytics stream; `CHANGE_FEED`: large batches
 * over a few seconds) and the live-feed function (task events; `LIVE_FEED`: no batching window). And the
 * metrics collector on an EventBridge rule. Settings from `shared/platform/infra.ts`, which the local
 * pollers use too.
 */
export class ChangeFeed {
  readonly consumer: SupervisorFunction;
  readonly live: SupervisorFunction;
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
    this.consumer.addEventSource(this.streamSource(props, CHANGE_FEED, CHANGE_FEED_KEY_PREFIXES));
    this.live = props.functions.add('LiveFeedFunction', {
      name: 'live-feed',
      description: `Supervisor ${stage}: consumes the table's stream at once (WebSocket and event-bus events of task changes)`,
      limits: FUNCTIONS.background,
      noDlqReason: 'Consumes the table stream through an event source mapping whose on-failure destination is the change-feed failure queue.',
    });
    this.live.addEventSource(this.streamSource(props, LIVE_FEED, LIVE_FEED_KEY_PREFIXES));

    this.collector = props.functions.add('MetricsCollectorFunction', {
      name: 'metrics-collector',
      description: `Supervisor ${stage}: samples task and workflow gauges into the metrics store and compacts its closed hours and days, every minute`,
      limits: FUNCTIONS.background,
      deadLetterQueue: props.asyncFailureQueue,
    });
    new Rule(scope, 'MetricsCollectorSchedule', {
      description: `Supervisor ${stage}: run the metrics collector every ${METRICS_COLLECTOR_INTERVAL_MINUTES === 1 ? 'minute' : `${METRICS_COLLECTOR_INTERVAL_MINUTES} minutes`}`,
      schedule: Schedule.rate(Duration.minutes(METRICS_COLLECTOR_INTERVAL_MINUTES)),
      targets: [new LambdaFunction(this.collector, { deadLetterQueue: props.asyncFailureQueue, retryAttempts: 2, maxEventAge: Duration.minutes(5) })],
    });
  }

  /** An event source mapping on the table's stream; only the items whose key starts with one of `prefixes` reach the function. */
  private streamSource(props: ChangeFeedProps, settings: FeedSettings, prefixes: readonly string[]): DynamoEventSource {
    return new DynamoEventSource(props.table, {
      startingPosition: StartingPosition.TRIM_HORIZON,
      batchSize: settings.batchSize,
      maxBatchingWindow: Duration.seconds(settings.maxBatchingWindowSeconds),
      bisectBatchOnError: settings.bisectBatchOnError,
      retryAttempts: settings.retryAttempts,
      maxRecordAge: Duration.hours(settings.maxRecordAgeHours),
      reportBatchItemFailures: true,
      onFailure: new SqsDlq(this.failureQueue),
      // Only the items some consumer wants reach the function (not, e.g., the metric rollups it writes).
      filters: [FilterCriteria.filter({ dynamodb: { Keys: { pk: { S: prefixes.map((prefix) => ({ prefix })) } } } })],
    });
  }
}
