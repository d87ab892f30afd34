import { afterAll, describe, expect, it } from 'vitest';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { FAILURE_QUEUES, SCHEDULE_FIRE_ASYNC, TASK_QUEUE } from '../../shared/platform/infra.js';
import { TASK_QUEUE_AGE_ALARM_SECONDS } from '../../lib/constructs/observability.js';
import { stageConfig } from '../../lib/stage.js';
import { buildStack, removeOutdirs } from './helpers.js';

/** Alarms, the failure-queue consumer, schedule-fire's retries, the worker's reserved concurrency, stage settings. */

afterAll(removeOutdirs);

type Resource = { Type: string; Properties: Record<string, any> };
const dev = buildStack({ stage: 'dev' });
const template = Template.fromStack(dev.stack);
const resources = (type: string, t: Template = template) => t.findResources(type) as Record<string, Resource>;
const functions = resources('AWS::Lambda::Function');
function fnId(label: string): string {
  const id = Object.keys(functions).find((k) => functions[k].Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME === `supervisor-${label}`);
  if (!id) throw new Error(`no function ${label}`);
  return id;
}
const alarms = Object.values(resources('AWS::CloudWatch::Alarm'));
const topicId = Object.keys(resources('AWS::SNS::Topic'))[0];
const queueId = (prefix: string) => Object.keys(resources('AWS::SQS::Queue')).find((k) => k.startsWith(prefix))!;

describe('alarms', () => {
  it('notify one SNS topic (TLS only), mailed when alarmEmail is given', () => {
    expect(Object.keys(resources('AWS::SNS::Topic'))).toHaveLength(1);
    for (const a of alarms) expect(a.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    expect(Object.keys(resources('AWS::SNS::Subscription'))).toHaveLength(0);
    const mailed = Template.fromStack(buildStack({ stage: 'mailed', alarmEmail: 'ops@example.com' }).stack);
    mailed.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });

  it('watch every DLQ and failure queue (> 0), the failure queues by arrivals too', () => {
    const dlq = alarms.find((a) => a.Properties.MetricName === 'ApproximateNumberOfMessagesVisible' && a.Properties.Dimensions?.[0]?.Value?.['Fn::GetAtt']?.[0] === queueId('TaskDeadLetterQueue'));
    expect(dlq?.Properties).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', Statistic: 'Maximum' });
    for (const name of ['AsyncFailureQueue', 'ScheduleDeadLetterQueue']) {
      const id = queueId(name);
      const alarm = alarms.find((a) => JSON.stringify(a.Properties.Metrics ?? []).includes(id));
      expect(alarm, name).toBeDefined();
      expect(alarm!.Properties).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
      const metrics = alarm!.Properties.Metrics as Array<{ Expression?: string; MetricStat?: { Metric: { MetricName: string } } }>;
      expect(metrics.find((m) => m.Expression)?.Expression).toBe('sent + visible');
      expect(metrics.flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.MetricName] : [])).sort()).toEqual(['ApproximateNumberOfMessagesVisible', 'NumberOfMessagesSent']);
    }
  });

  it('watch the age of the task queue\'s oldest message', () => {
    const age = alarms.find((a) => a.Properties.MetricName === 'ApproximateAgeOfOldestMessage');
    expect(age?.Properties).toMatchObject({ Threshold: TASK_QUEUE_AGE_ALARM_SECONDS, Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId('TaskQueue'), 'QueueName'] } }] });
  });

  it('watch errors and throttles of every function', () => {
    for (const id of Object.keys(functions)) {
      for (const metric of ['Errors', 'Throttles']) {
        const found = alarms.filter((a) => a.Properties.Namespace === 'AWS/Lambda' && a.Properties.MetricName === metric && a.Properties.Dimensions?.[0]?.Value?.Ref === id);
        expect(found, `${metric} of ${id}`).toHaveLength(1);
      }
    }
  });

  it('watch HTTP API 5xx, failed and timed-out workflow executions, and dead-lettered tasks', () => {
    expect(alarms.some((a) => a.Properties.Namespace === 'AWS/ApiGateway' && a.Properties.MetricName === '5xx')).toBe(true);
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut']) {
      expect(alarms.some((a) => a.Properties.Namespace === 'AWS/States' && a.Properties.MetricName === metric), metric).toBe(true);
    }
    expect(alarms.find((a) => a.Properties.MetricName === 'TasksDeadLettered')?.Properties).toMatchObject({
      Namespace: 'Supervisor/dev',
      Dimensions: [{ Name: 'service', Value: 'supervisor-dead-letter' }],
      Threshold: 0,
    });
    // The namespace the alarm watches is the one every function writes its metrics to.
    for (const fn of Object.values(functions)) expect(fn.Properties.Environment.Variables.POWERTOOLS_METRICS_NAMESPACE).toBe('Supervisor/dev');
  });
});

describe('the failure queues', () => {
  it('are consumed by the failures function, with a visibility timeout of 6 × its timeout', () => {
    for (const name of ['AsyncFailureQueue', 'ScheduleDeadLetterQueue']) {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [queueId(name), 'Arn'] },
        FunctionName: { Ref: fnId('failures') },
        BatchSize: FAILURE_QUEUES.batchSize,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
      expect(resources('AWS::SQS::Queue')[queueId(name)].Properties.VisibilityTimeout).toBe(FAILURE_QUEUES.visibilityTimeoutSeconds);
    }
  });
});

describe('schedule-fire', () => {
  it('has Lambda\'s asynchronous retries and event age set explicitly', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnId('schedule-fire') },
      MaximumRetryAttempts: SCHEDULE_FIRE_ASYNC.retryAttempts,
      MaximumEventAgeInSeconds: SCHEDULE_FIRE_ASYNC.maxEventAgeSeconds,
    });
  });
});

describe('concurrency', () => {
  it('reserves (and caps) the worker\'s concurrency; the API functions keep the unreserved pool', () => {
    expect(functions[fnId('worker')].Properties.ReservedConcurrentExecutions).toBe(TASK_QUEUE.reservedConcurrency);
    for (const label of ['tasks', 'auth', 'workflows', 'ws-connect', 'ws-message']) {
      expect(functions[fnId(label)].Properties.ReservedConcurrentExecutions, label).toBeUndefined();
    }
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fnId('worker') },
      ScalingConfig: { MaximumConcurrency: Math.min(TASK_QUEUE.maxConcurrency, TASK_QUEUE.reservedConcurrency) },
    });
  });

  it('takes another reservation, or none, from the workerReservedConcurrency setting', () => {
    expect(stageConfig({ workerReservedConcurrency: '50' }).workerReservedConcurrency).toBe(50);
    expect(stageConfig({ workerReservedConcurrency: 'none' }).workerReservedConcurrency).toBeUndefined();
    expect(() => stageConfig({ workerReservedConcurrency: '1' })).toThrow(/at least 2/);
  });
});

describe('stages', () => {
  it('are production-like by the productionStages list or the production flag, not by the name prod', () => {
    expect(stageConfig({ stage: 'prod' }).isProd).toBe(true);
    expect(stageConfig({ stage: 'staging' }).isProd).toBe(false);
    expect(stageConfig({ stage: 'staging', productionStages: 'staging,live' }).isProd).toBe(true);
    expect(stageConfig({ stage: 'prod', productionStages: 'live' }).isProd).toBe(false);
    expect(stageConfig({ stage: 'eu', production: 'true' }).isProd).toBe(true);
    expect(() => stageConfig({ stage: 'eu', production: 'yes' })).toThrow(/true or false/);
  });

  it('give a production-like stage retention, deletion protection, registration off and stricter throttles', () => {
    const live = stageConfig({ stage: 'live', production: true });
    expect(live).toMatchObject({ allowRegistration: false, throttle: { rateLimit: 500, burstLimit: 1000 } });
    expect(stageConfig({ stage: 'live', production: true, allowRegistration: 'true' }).allowRegistration).toBe(true);
    const t = Template.fromStack(buildStack({ stage: 'staging', productionStages: ['staging'] }).stack);
    t.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', Properties: Match.objectLike({ DeletionProtectionEnabled: true }) });
    t.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Retain' });
    for (const fn of Object.values(resources('AWS::Lambda::Function', t))) {
      expect(fn.Properties.Environment.Variables.ALLOW_REGISTRATION).toBe('false');
      // Loopback and private addresses stay closed on AWS: the stack never opens them.
      expect(fn.Properties.Environment.Variables).not.toHaveProperty('OUTBOUND_ALLOW_PRIVATE');
      expect(fn.Properties.Environment.Variables).not.toHaveProperty('PLUGINS_ALLOW_PRIVATE_URLS');
    }
  });
});
