import { Duration } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import {
  FAILURE_QUEUES,
  FUNCTIONS,
  SWEEPER_INTERVAL_MINUTES,
  TASK_DEAD_LETTER_QUEUE,
  TASK_QUEUE,
} from '../../shared/platform/infra.js';
import { acknowledge } from '../nag.js';
import type { StageConfig } from '../stage.js';
import type { SupervisorFunction, SupervisorFunctions } from './supervisor-function.js';

/** Every queue of the stack: SSE with SQS-managed keys, TLS only. */
export const QUEUE_DEFAULTS = { encryption: QueueEncryption.SQS_MANAGED, enforceSSL: true } as const;

export interface TaskProcessingProps {
  readonly stageConfig: StageConfig;
  readonly functions: SupervisorFunctions;
}

/**
 * How tasks run: the SQS task queue (settings from `TASK_QUEUE` of `shared/platform/infra.ts`, which
 * the local queue uses too) consumed by the worker, its dead-letter queue consumed by the dead-letter
 * function, the sweeper on an EventBridge rule, and the queue that collects failed asynchronous
 * invocations (the sweeper's, and the schedule target's).
 *
 * Resources are created in the given scope (the stack) so that their logical ids stay those of the
 * stack's direct children.
 */
export class TaskProcessing {
  readonly taskQueue: Queue;
  readonly taskDlq: Queue;
  /** Failed asynchronous invocations (sweeper, schedule target) and failed sweeper rule deliveries. */
  readonly asyncFailureQueue: Queue;
  readonly worker: SupervisorFunction;
  /** The task queue → worker mapping; scaling worker_concurrency updates its maximum concurrency. */
  readonly workerEventSource: SqsEventSource;
  /** The worker's reserved concurrency, when the stage reserves one (the mapping's maximum concurrency stays below it). */
  readonly workerReservedConcurrency?: number;
  readonly deadLetter: SupervisorFunction;
  readonly sweeper: SupervisorFunction;

  constructor(scope: Construct, props: TaskProcessingProps) {
    const { stage } = props.stageConfig;

    // ---------------------------------------------------------------- queues
    this.taskDlq = new Queue(scope, 'TaskDeadLetterQueue', {
      ...QUEUE_DEFAULTS,
      retentionPeriod: Duration.days(TASK_DEAD_LETTER_QUEUE.retentionDays),
      visibilityTimeout: Duration.seconds(TASK_DEAD_LETTER_QUEUE.visibilityTimeoutSeconds),
    });
    this.taskQueue = new Queue(scope, 'TaskQueue', {
      ...QUEUE_DEFAULTS,
      retentionPeriod: Duration.days(TASK_QUEUE.retentionDays),
      visibilityTimeout: Duration.seconds(TASK_QUEUE.visibilityTimeoutSeconds),
      deadLetterQueue: { queue: this.taskDlq, maxReceiveCount: TASK_QUEUE.maxReceiveCount },
    });
    this.asyncFailureQueue = new Queue(scope, 'AsyncFailureQueue', {
      ...QUEUE_DEFAULTS,
      retentionPeriod: Duration.days(FAILURE_QUEUES.retentionDays),
      visibilityTimeout: Duration.seconds(FAILURE_QUEUES.visibilityTimeoutSeconds),
    });
    for (const dlq of [this.taskDlq, this.asyncFailureQueue]) {
      acknowledge(
        dlq,
        'Serverless-SQSRedrivePolicy',
        'This queue is a dead-letter queue (the end of a redrive chain); giving it a redrive policy of its own would only move the same messages once more.',
      );
    }

    // ---------------------------------------------------------------- functions
    const { functions } = props;
    this.worker = functions.add('WorkerFunction', {
      name: 'worker',
      description: `Supervisor ${stage}: runs tasks from the task queue`,
      limits: FUNCTIONS.worker,
      noDlqReason: 'Consumes the task queue through an event source mapping; failed messages go to the queue\'s redrive DLQ.',
    });
    // Reserved (and so capped): 900-second runs never take the account's unreserved concurrency,
    // which the API functions draw from (see docs/deploy.md for the account quota this assumes).
    const { workerReservedConcurrency } = props.stageConfig;
    this.workerReservedConcurrency = workerReservedConcurrency;
    if (workerReservedConcurrency !== undefined) {
      (this.worker.node.defaultChild as CfnFunction).reservedConcurrentExecutions = workerReservedConcurrency;
    }
    this.deadLetter = functions.add('DeadLetterFunction', {
      name: 'dead-letter',
      description: `Supervisor ${stage}: fails tasks whose messages reached the dead-letter queue`,
      limits: FUNCTIONS.background,
      noDlqReason: `Consumes the task dead-letter queue through an event source mapping; unprocessed messages stay in that queue (${TASK_DEAD_LETTER_QUEUE.retentionDays} days).`,
    });
    this.sweeper = functions.add('SweeperFunction', {
      name: 'sweeper',
      description: `Supervisor ${stage}: re-enqueues tasks stuck in pending/queued`,
      limits: FUNCTIONS.background,
      deadLetterQueue: this.asyncFailureQueue,
    });

    // ---------------------------------------------------------------- queue consumers and the sweeper schedule
    this.workerEventSource = new SqsEventSource(this.taskQueue, {
      batchSize: TASK_QUEUE.batchSize,
      reportBatchItemFailures: true,
      // Never above the reservation: the mapping would be throttled by it.
      maxConcurrency: Math.min(TASK_QUEUE.maxConcurrency, workerReservedConcurrency ?? TASK_QUEUE.maxConcurrency),
    });
    this.worker.addEventSource(this.workerEventSource);
    this.deadLetter.addEventSource(
      new SqsEventSource(this.taskDlq, { batchSize: TASK_DEAD_LETTER_QUEUE.batchSize, reportBatchItemFailures: true }),
    );
    const sqsNoDestination =
      'Lambda event source mappings for SQS do not support on-failure destinations; failed messages are handled by ' +
      `the queue's redrive policy (task queue → DLQ after ${TASK_QUEUE.maxReceiveCount} receives) and the DLQ keeps what its consumer cannot process.`;
    acknowledge(this.worker, 'Serverless-LambdaEventSourceMappingDestination', sqsNoDestination);
    acknowledge(this.deadLetter, 'Serverless-LambdaEventSourceMappingDestination', sqsNoDestination);

    new Rule(scope, 'SweeperSchedule', {
      description: `Supervisor ${stage}: run the sweeper every ${SWEEPER_INTERVAL_MINUTES === 1 ? 'minute' : `${SWEEPER_INTERVAL_MINUTES} minutes`}`,
      schedule: Schedule.rate(Duration.minutes(SWEEPER_INTERVAL_MINUTES)),
      targets: [
        new LambdaFunction(this.sweeper, {
          deadLetterQueue: this.asyncFailureQueue,
          retryAttempts: 2,
          maxEventAge: Duration.minutes(5),
        }),
      ],
    });
  }
}
