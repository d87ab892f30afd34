import { ArnFormat, Stack } from 'aws-cdk-lib';
import type { WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import { PolicyStatement, type IRole } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { ENV } from '../shared/platform/config.js';
import type { FunctionPorts } from '../shared/platform/infra.js';
import type { SupervisorFunction } from './constructs/supervisor-function.js';

export type AccessMode = 'read' | 'read-write';

/** Everything a function can be bound to. */
export interface BindableResources {
  readonly table: ITable;
  /** GSI names of the table (Query on an index needs the index ARN). */
  readonly tableIndexes: readonly string[];
  readonly taskQueue: IQueue;
  /** Audit entries whose write failed (sent by the API functions, consumed by audit-retry). */
  readonly auditQueue: IQueue;
  readonly stateMachineName: string;
  readonly stateMachineArn: string;
  readonly scheduleGroupName: string;
  readonly schedulerRole: IRole;
  /** The schedule target's ARN, built from its fixed name (schedule-fire manages schedules that target itself). */
  readonly scheduleTargetArn: string;
  readonly scheduleDlq: IQueue;
  readonly eventBus: IEventBus;
  readonly signingKey: IKey;
  readonly appSecret: ISecret;
  /** `supervisor/<stage>/providers/` */
  readonly secretPrefix: string;
  readonly wsStage: WebSocketStage;
  /** The task queue → worker event source mapping (its UUID and ARN): `workerScaling` updates its maximum concurrency. */
  readonly workerEventSourceMapping: { readonly id: string; readonly arn: string };
  /** The worker's reserved concurrency, when the stage reserves one. */
  readonly workerReservedConcurrency?: number;
  /** Files handed out by presigned URL (the `files` port). */
  readonly filesBucket: IBucket;
  /**
   * Bedrock models and inference profiles the providers may invoke (ARNs); by default every
   * foundation model (any region, for cross-region inference profiles) and the account's inference
   * profiles in the stack's region. The CDK context `bedrockModelArns` narrows it.
   */
  readonly bedrockModelArns?: readonly string[];
}

const TABLE_READ_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:ConditionCheckItem',
  'dynamodb:DescribeTable',
];
const TABLE_WRITE_ACTIONS = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];

/**
 * `bind…` helpers: each grants exactly what one capability needs and sets the environment variable
 * the code reads for it (names from `shared/platform/config.ts`), in one call, so a function never holds a
 * permission it has no configuration for, and vice versa. No helper grants `Scan` or a wildcard
 * beyond a documented, acknowledged prefix.
 */
export class Bindings {
  constructor(private readonly r: BindableResources) {}

  private get stack(): Stack {
    return Stack.of(this.r.table);
  }

  /**
   * Everything a function declares in `FUNCTION_PORTS` (`shared/platform/infra.ts`), and nothing else:
   * one grant and its environment variables per port, plus the function's label, by which its `Deps`
   * refuse any port it did not declare.
   */
  ports(fn: SupervisorFunction, ports: FunctionPorts): void {
    fn.addEnvironment(ENV.functionLabel, fn.functionLabel);
    if (ports.table) this.table(fn, ports.table);
    if (ports.queue) this.queue(fn, ports.queue);
    if (ports.auditQueue) this.auditQueue(fn);
    if (ports.workflows) this.stateMachine(fn, ports.workflows);
    if (ports.stepCallbacks) this.stepCallbacks(fn);
    if (ports.scheduler) this.scheduler(fn, ports.scheduler);
    if (ports.connections) this.connections(fn);
    if (ports.events) this.eventBus(fn, ports.events);
    if (ports.secrets) this.providerSecrets(fn, ports.secrets);
    if (ports.mail) this.mail(fn);
    if (ports.signer) this.signingKey(fn, ports.signer);
    if (ports.appSecret) this.appSecret(fn);
    if (ports.bedrock) this.bedrock(fn);
    if (ports.workerScaling) this.workerScaling(fn);
    if (ports.files) this.files(fn);
  }

  /** Table items and GSIs, and `TABLE_NAME`. */
  table(fn: SupervisorFunction, mode: AccessMode): void {
    const { table, tableIndexes } = this.r;
    fn.addEnvironment(ENV.tableName, table.tableName);
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: mode === 'read-write' ? [...TABLE_READ_ACTIONS, ...TABLE_WRITE_ACTIONS] : TABLE_READ_ACTIONS,
        resources: [table.tableArn, ...tableIndexes.map((index) => `${table.tableArn}/index/${index}`)],
      }),
    );
  }

  /** Send audit entries whose write failed to the audit retry queue (`AUDIT_QUEUE_URL`). */
  auditQueue(fn: SupervisorFunction): void {
    const { auditQueue } = this.r;
    fn.addEnvironment(ENV.auditQueueUrl, auditQueue.queueUrl);
    auditQueue.grantSendMessages(fn);
  }

  /** `send`: enqueue tasks; `check`: only the health probe (queue attributes). */
  queue(fn: SupervisorFunction, mode: 'send' | 'check'): void {
    const { taskQueue } = this.r;
    fn.addEnvironment(ENV.taskQueueUrl, taskQueue.queueUrl);
    if (mode === 'send') taskQueue.grantSendMessages(fn);
    else taskQueue.grant(fn, 'sqs:GetQueueAttributes');
  }

  /**
   * The workflow state machine, referenced by its ARN built from its fixed name (so the engine it
   * invokes can also hold the ARN without a dependency cycle). `start` adds StartExecution, `manage`
   * adds StartExecution and StopExecution; every mode may describe the machine and its executions.
   */
  stateMachine(fn: SupervisorFunction, mode: 'describe' | 'start' | 'manage'): void {
    const { stateMachineArn, stateMachineName } = this.r;
    fn.addEnvironment(ENV.stateMachineArn, stateMachineArn);
    const executions = this.stack.formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const machineActions = ['states:DescribeStateMachine'];
    const executionActions = ['states:DescribeExecution'];
    if (mode !== 'describe') machineActions.push('states:StartExecution');
    if (mode === 'manage') executionActions.push('states:StopExecution');
    fn.addToRolePolicy(new PolicyStatement({ actions: machineActions, resources: [stateMachineArn] }));
    fn.addToRolePolicy(new PolicyStatement({ actions: executionActions, resources: [executions] }));
    fn.acknowledgeWildcard(
      executions,
      'Executions of the workflow state machine are named at run time; the grant is limited to executions of this one state machine.',
    );
  }

  /**
   * Step callbacks: a function that ends a workflow step's task answers the run's waiting `Advance`
   * (SendTaskSuccess/SendTaskFailure), which IAM scopes to the state machine.
   */
  stepCallbacks(fn: SupervisorFunction): void {
    const { stateMachineArn } = this.r;
    fn.addEnvironment(ENV.stateMachineArn, stateMachineArn);
    fn.addToRolePolicy(new PolicyStatement({ actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'], resources: [stateMachineArn] }));
  }

  /** EventBridge Scheduler: `manage` schedules in the stack's group only; `check`: only read the group. */
  scheduler(fn: SupervisorFunction, mode: 'manage' | 'check'): void {
    const { scheduleGroupName, schedulerRole, scheduleTargetArn, scheduleDlq } = this.r;
    // The adapter needs all four to exist (even for its health check); only `manage` may use them.
    fn.addEnvironment(ENV.scheduleGroup, scheduleGroupName);
    fn.addEnvironment(ENV.schedulerRoleArn, schedulerRole.roleArn);
    fn.addEnvironment(ENV.scheduleTargetArn, scheduleTargetArn);
    fn.addEnvironment(ENV.scheduleDlqArn, scheduleDlq.queueArn);
    const group = this.stack.formatArn({ service: 'scheduler', resource: 'schedule-group', resourceName: scheduleGroupName });
    fn.addToRolePolicy(new PolicyStatement({ actions: ['scheduler:GetScheduleGroup'], resources: [group] }));
    if (mode === 'check') return;
    const schedules = this.stack.formatArn({
      service: 'scheduler',
      resource: 'schedule',
      resourceName: `${scheduleGroupName}/*`,
    });
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule', 'scheduler:GetSchedule'],
        resources: [schedules],
      }),
    );
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [schedulerRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      }),
    );
    fn.acknowledgeWildcard(
      schedules,
      'Schedules are created at run time, one per workflow schedule; the grant is limited to the stack\'s own schedule group.',
    );
  }

  /** `publish`: put events on the stage bus; `check`: only describe it (the health probe). */
  eventBus(fn: SupervisorFunction, mode: 'check' | 'publish'): void {
    const { eventBus } = this.r;
    fn.addEnvironment(ENV.eventBusName, eventBus.eventBusName);
    if (mode === 'publish') eventBus.grantPutEventsTo(fn);
    fn.addToRolePolicy(new PolicyStatement({ actions: ['events:DescribeEventBus'], resources: [eventBus.eventBusArn] }));
  }

  /** SES v2: send email (the email plugin) and read the account's sending status (its health check). */
  mail(fn: SupervisorFunction): void {
    const identities = this.stack.formatArn({ service: 'ses', resource: 'identity', resourceName: '*' });
    fn.addToRolePolicy(new PolicyStatement({ actions: ['ses:SendEmail'], resources: [identities] }));
    fn.addToRolePolicy(new PolicyStatement({ actions: ['ses:GetAccount'], resources: ['*'] }));
    fn.acknowledgeWildcard(identities, 'The sender identity is the email plugin\'s configured address, chosen at run time; only SendEmail on SES identities of this account and region.');
    fn.acknowledgeWildcard('*', 'ses:GetAccount has no resource-level permissions.');
  }

  /** `verify`: read the public key to verify access tokens; `sign`: also sign them (auth only). */
  signingKey(fn: SupervisorFunction, mode: 'verify' | 'sign'): void {
    fn.addEnvironment(ENV.signingKeyId, this.r.signingKey.keyId);
    this.r.signingKey.grant(fn, ...(mode === 'sign' ? ['kms:GetPublicKey', 'kms:Sign'] : ['kms:GetPublicKey']));
  }

  /** The generated application secret (cursor / HMAC signing). */
  appSecret(fn: SupervisorFunction): void {
    fn.addEnvironment(ENV.appSecretArn, this.r.appSecret.secretArn);
    this.r.appSecret.grantRead(fn);
  }

  /**
   * Provider credentials under `SECRET_PREFIX`: `manage` creates, replaces, deletes (and restores a
   * secret pending deletion under the same name); `read` reads them.
   */
  providerSecrets(fn: SupervisorFunction, mode: 'manage' | 'read'): void {
    const { secretPrefix } = this.r;
    fn.addEnvironment(ENV.secretPrefix, secretPrefix);
    const secrets = this.stack.formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `${secretPrefix}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const actions =
      mode === 'manage'
        ? [
            'secretsmanager:CreateSecret',
            'secretsmanager:GetSecretValue',
            'secretsmanager:PutSecretValue',
            'secretsmanager:DeleteSecret',
            'secretsmanager:RestoreSecret',
            'secretsmanager:DescribeSecret',
          ]
        : ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'];
    fn.addToRolePolicy(new PolicyStatement({ actions, resources: [secrets] }));
    fn.acknowledgeWildcard(
      secrets,
      `Provider credentials are stored at run time as one secret per provider; the grant is limited to the ${secretPrefix} prefix of this stage.`,
    );
  }

  /** Post to / close WebSocket connections (`@connections`) of the stack's WebSocket stage. */
  connections(fn: SupervisorFunction): void {
    const { wsStage } = this.r;
    fn.addEnvironment(ENV.wsManagementEndpoint, wsStage.callbackUrl);
    wsStage.grantManagementApiAccess(fn);
    const connections = `${this.stack.formatArn({ service: 'execute-api', resource: wsStage.api.apiId })}/${wsStage.stageName}/*/@connections/*`;
    fn.acknowledgeWildcard(
      connections,
      'Connection ids are only known at run time; the grant is limited to @connections of this WebSocket API stage.',
    );
  }

  /** Invoke Bedrock models (Converse and ConverseStream need InvokeModel and InvokeModelWithResponseStream). */
  bedrock(fn: SupervisorFunction): void {
    const { stack } = this;
    const narrowed = this.r.bedrockModelArns !== undefined && this.r.bedrockModelArns.length > 0;
    const resources = narrowed
      ? [...this.r.bedrockModelArns!]
      : [
          `arn:${stack.partition}:bedrock:*::foundation-model/*`,
          stack.formatArn({ service: 'bedrock', resource: 'inference-profile', resourceName: '*' }),
        ];
    fn.addToRolePolicy(
      new PolicyStatement({ actions: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'], resources }),
    );
    for (const arn of resources.filter((r) => r.includes('*'))) {
      fn.acknowledgeWildcard(
        arn,
        'Bedrock models are chosen per provider at run time; the grant is limited to invoking foundation models and this account\'s ' +
          'inference profiles (CDK context bedrockModelArns narrows it to named ones).',
      );
    }
  }

  /**
   * Scale the worker: UpdateEventSourceMapping on the task queue's one mapping (its ARN, no wildcard),
   * whose `ScalingConfig.MaximumConcurrency` is how many worker invocations run at once.
   */
  workerScaling(fn: SupervisorFunction): void {
    const { workerEventSourceMapping, workerReservedConcurrency } = this.r;
    fn.addEnvironment(ENV.workerEventSourceMappingId, workerEventSourceMapping.id);
    if (workerReservedConcurrency !== undefined) fn.addEnvironment(ENV.workerReservedConcurrency, String(workerReservedConcurrency));
    fn.addToRolePolicy(new PolicyStatement({ actions: ['lambda:UpdateEventSourceMapping'], resources: [workerEventSourceMapping.arn] }));
  }

  /**
   * Hand out files: put objects under `exports/` of the files bucket and read them back (a presigned GET
   * URL acts with the signer's permissions), and `EXPORT_BUCKET`.
   */
  files(fn: SupervisorFunction): void {
    const { filesBucket } = this.r;
    const objects = filesBucket.arnForObjects('exports/*');
    fn.addEnvironment(ENV.exportBucket, filesBucket.bucketName);
    fn.addToRolePolicy(new PolicyStatement({ actions: ['s3:PutObject', 's3:GetObject'], resources: [objects] }));
    fn.acknowledgeWildcard(objects, 'Each export is a new object under exports/<ulid>/ of the files bucket, named at run time; nothing else in the bucket.');
  }
}
