import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { AUDIT_QUEUE, FUNCTIONS } from '../../shared/platform/infra.js';
import { acknowledge } from '../nag.js';
import type { StageConfig } from '../stage.js';
import type { SupervisorFunction, SupervisorFunctions } from './supervisor-function.js';
import { QUEUE_DEFAULTS } from './task-processing.js';

export interface AuditRetryProps {
  readonly stageConfig: StageConfig;
  readonly functions: SupervisorFunctions;
}

/**
 * Audit entries whose write failed during their request: the API functions send them to the audit
 * retry queue, the audit-retry function writes them (idempotently, by audit id), and an entry it
 * could not write after `AUDIT_QUEUE.maxReceiveCount` tries lands in the audit dead-letter queue,
 * whose alarm fires on its first message. An entry is never only logged.
 */
export class AuditRetry {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly consumer: SupervisorFunction;
  /** In alarm while any audit entry could not be written at all. */
  readonly deadLetterAlarm: Alarm;

  constructor(scope: Construct, props: AuditRetryProps) {
    const { stage } = props.stageConfig;
    this.deadLetterQueue = new Queue(scope, 'AuditDeadLetterQueue', {
      ...QUEUE_DEFAULTS,
      retentionPeriod: Duration.days(AUDIT_QUEUE.retentionDays),
    });
    acknowledge(
      this.deadLetterQueue,
      'Serverless-SQSRedrivePolicy',
      'This queue is a dead-letter queue (the end of a redrive chain); its alarm is the way out.',
    );
    this.queue = new Queue(scope, 'AuditRetryQueue', {
      ...QUEUE_DEFAULTS,
      retentionPeriod: Duration.days(AUDIT_QUEUE.retentionDays),
      visibilityTimeout: Duration.seconds(AUDIT_QUEUE.visibilityTimeoutSeconds),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: AUDIT_QUEUE.maxReceiveCount },
    });
    this.consumer = props.functions.add('AuditRetryFunction', {
      name: 'audit-retry',
      description: `Supervisor ${stage}: writes audit entries whose write failed during their request`,
      limits: FUNCTIONS.background,
      noDlqReason: `Consumes the audit retry queue through an event source mapping; entries it cannot write go to the audit dead-letter queue after ${AUDIT_QUEUE.maxReceiveCount} receives.`,
    });
    this.consumer.addEventSource(new SqsEventSource(this.queue, { batchSize: AUDIT_QUEUE.batchSize, reportBatchItemFailures: true }));
    acknowledge(
      this.consumer,
      'Serverless-LambdaEventSourceMappingDestination',
      'Lambda event source mappings for SQS do not support on-failure destinations; the queue\'s redrive policy moves what fails to the audit dead-letter queue.',
    );
    this.deadLetterAlarm = new Alarm(scope, 'AuditDeadLetterAlarm', {
      alarmDescription: `Supervisor ${stage}: audit entries could not be written (audit dead-letter queue not empty)`,
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }
}
