import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table } from 'aws-cdk-lib/aws-dynamodb';
import { EventBus, Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key, KeySpec, KeyUsage } from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { CfnScheduleGroup } from 'aws-cdk-lib/aws-scheduler';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import type { FunctionGroup, RouteSpec } from '../shared/platform/api/route.js';
import { buildWorkflowDefinition } from '../shared/workflows/asl.js';
import { Bindings } from './bindings.js';
import { SupervisorHttpApi } from './constructs/http-api.js';
import { SupervisorFunction, type SupervisorFunctionProps } from './constructs/supervisor-function.js';
import type { ICommandHooks } from 'aws-cdk-lib/aws-lambda-nodejs';
import { SupervisorWebSocketApi } from './constructs/websocket-api.js';
import { acknowledge, XRAY_REASON } from './nag.js';
import { apiRoutes, routedGroups } from './routes.js';
import type { StageConfig } from './stage.js';

/** The repository root (holds `functions/` and `package-lock.json`). */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

export const TABLE_INDEXES = ['gsi1', 'gsi2', 'gsi3'] as const;

/** Timeouts: API Gateway ends HTTP requests at 30 s; a task runs at most 900 s. */
export const API_TIMEOUT = Duration.seconds(29);
export const WORKER_TIMEOUT = Duration.seconds(900);
export const ENGINE_TIMEOUT = Duration.seconds(60);
export const BACKGROUND_TIMEOUT = Duration.seconds(60);
/** SQS visibility timeout of a Lambda-consumed queue: at least 6 × the consumer's timeout (AWS guidance). */
export const VISIBILITY_FACTOR = 6;
export const TASK_MAX_RECEIVE_COUNT = 5;
export const WORKER_BATCH_SIZE = 5;
export const WORKER_MAX_CONCURRENCY = 20;

/**
 * Functions (by label) that publish realtime events to WebSocket subscribers (`shared/realtime/publisher.ts`)
 * and so may post to `@connections`: everything that changes a task, execution, provider, plugin or alert.
 * Publishing never throws, so a function missing here would silently drop its events.
 */
export const WS_PUBLISHERS = [
  'tasks',
  'providers',
  'workflows',
  'monitoring',
  'plugins',
  'worker',
  'workflow-engine',
  'dead-letter',
  'sweeper',
  'schedule-fire',
  'ws-message',
] as const;

/** Entries besides the API groups': `functions/<name>/handler.ts`. */
export const BACKGROUND_ENTRIES = ['worker', 'dead-letter', 'sweeper', 'workflow-engine', 'schedule-fire', 'ws'] as const;

/**
 * Swagger UI files the docs function serves (`functions/docs/handler.ts`, ASSETS), copied from
 * swagger-ui-dist into its bundle, where `DOCS_ASSETS_DIR` points the handler at them.
 */
export const DOCS_ASSET_FILES = [
  'swagger-ui.css',
  'swagger-ui-bundle.js',
  'swagger-ui-standalone-preset.js',
  'favicon-32x32.png',
  'favicon-16x16.png',
  'LICENSE',
  'NOTICE',
];
export const DOCS_ASSETS_DIR = '/var/task/swagger-ui';

const copyDocsAssets: ICommandHooks = {
  beforeBundling: () => [],
  beforeInstall: () => [],
  afterBundling: (inputDir, outputDir) => [
    `mkdir -p "${outputDir}/swagger-ui"`,
    ...DOCS_ASSET_FILES.map((f) => `cp "${inputDir}/node_modules/swagger-ui-dist/${f}" "${outputDir}/swagger-ui/${f}"`),
  ],
};

export interface SupervisorStackProps extends StackProps {
  readonly stageConfig: StageConfig;
  /** The route table (`ROUTES` of `shared/api/routes`). */
  readonly routes: readonly RouteSpec[];
  /** Directory that holds `functions/` and `package-lock.json` (default: the repository root). */
  readonly projectRoot?: string;
  /** Create the account-level API Gateway CloudWatch role WebSocket logging needs (default true). */
  readonly createApiGatewayAccountRole?: boolean;
}

const SYNC_NO_DLQ =
  'Invoked synchronously (API Gateway request/response); errors go back to the caller, and a Lambda DLQ only ' +
  'applies to asynchronous invocations.';

/**
 * Supervisor on AWS: HTTP and WebSocket APIs over one Lambda per endpoint group, a DynamoDB single
 * table, an SQS task queue with DLQ and its worker, a Step Functions state machine for workflow runs,
 * EventBridge Scheduler for schedules, an EventBridge bus, a KMS signing key and Secrets Manager.
 */
export class SupervisorStack extends Stack {
  readonly table: Table;
  readonly taskQueue: Queue;
  readonly taskDlq: Queue;
  readonly stateMachine: StateMachine;
  readonly httpApi: SupervisorHttpApi;
  readonly webSocketApi: SupervisorWebSocketApi;
  /** Every function, by label (`tasks`, `worker`, `ws-connect`, …). */
  readonly functions = new Map<string, SupervisorFunction>();

  constructor(scope: Construct, id: string, props: SupervisorStackProps) {
    super(scope, id, props);
    const { stageConfig } = props;
    const { stage, isProd } = stageConfig;
    const projectRoot = props.projectRoot ?? PROJECT_ROOT;
    const dataRemoval = isProd ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    // ---------------------------------------------------------------- data
    this.table = new Table(this, 'Table', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'expires_at',
      deletionProtection: isProd,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of TABLE_INDEXES) {
      this.table.addGlobalSecondaryIndex({
        indexName: index,
        partitionKey: { name: `${index}pk`, type: AttributeType.STRING },
        sortKey: { name: `${index}sk`, type: AttributeType.STRING },
      });
    }

    // ---------------------------------------------------------------- queues
    const queueDefaults = { encryption: QueueEncryption.SQS_MANAGED, enforceSSL: true } as const;
    this.taskDlq = new Queue(this, 'TaskDeadLetterQueue', {
      ...queueDefaults,
      retentionPeriod: Duration.days(14),
      visibilityTimeout: Duration.seconds(BACKGROUND_TIMEOUT.toSeconds() * VISIBILITY_FACTOR),
    });
    this.taskQueue = new Queue(this, 'TaskQueue', {
      ...queueDefaults,
      retentionPeriod: Duration.days(4),
      visibilityTimeout: Duration.seconds(WORKER_TIMEOUT.toSeconds() * VISIBILITY_FACTOR),
      deadLetterQueue: { queue: this.taskDlq, maxReceiveCount: TASK_MAX_RECEIVE_COUNT },
    });
    /** Failed asynchronous invocations (sweeper, schedule target) and failed sweeper rule deliveries. */
    const asyncFailureQueue = new Queue(this, 'AsyncFailureQueue', { ...queueDefaults, retentionPeriod: Duration.days(14) });
    for (const dlq of [this.taskDlq, asyncFailureQueue]) {
      acknowledge(
        dlq,
        'Serverless-SQSRedrivePolicy',
        'This queue is a dead-letter queue (the end of a redrive chain); giving it a redrive policy of its own would only move the same messages once more.',
      );
    }
    const scheduleDlq = new Queue(this, 'ScheduleDeadLetterQueue', { ...queueDefaults, retentionPeriod: Duration.days(14) });
    const dlqOfSchedules =
      'This queue is itself the dead-letter queue of the EventBridge Scheduler schedules, which the workflows ' +
      'function creates at run time (SCHEDULE_DLQ_ARN), so no resource in this template references it.';
    acknowledge(scheduleDlq, 'AwsSolutions-SQS3', dlqOfSchedules);
    acknowledge(scheduleDlq, 'Serverless-SQSRedrivePolicy', dlqOfSchedules);

    // ---------------------------------------------------------------- events, keys, secrets
    const eventBus = new EventBus(this, 'EventBus', { eventBusName: `supervisor-${stage}` });

    const signingKey = new Key(this, 'TokenSigningKey', {
      description: `Supervisor ${stage}: signs access tokens (ES256)`,
      keySpec: KeySpec.ECC_NIST_P256,
      keyUsage: KeyUsage.SIGN_VERIFY,
      alias: `alias/supervisor-${stage}-token-signing`,
      removalPolicy: dataRemoval,
      pendingWindow: Duration.days(7),
    });

    const appSecret = new Secret(this, 'AppSecret', {
      secretName: `supervisor/${stage}/app`,
      description: `Supervisor ${stage}: key for signing pagination cursors and other HMACs`,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: dataRemoval,
    });
    acknowledge(
      appSecret,
      'AwsSolutions-SMG4',
      'The application secret keys HMACs of short-lived pagination cursors; rotating it only invalidates open cursors, ' +
        'so it is rotated manually (put-secret-value) rather than by a rotation Lambda.',
    );
    const secretPrefix = `supervisor/${stage}/providers/`;

    // ---------------------------------------------------------------- APIs (routes added below)
    const routes = apiRoutes(props.routes);
    this.webSocketApi = new SupervisorWebSocketApi(this, 'WebSocket', {
      stageConfig,
      createAccountLogsRole: props.createApiGatewayAccountRole ?? true,
    });

    // ---------------------------------------------------------------- functions
    const fn = (
      id: string,
      options: Omit<SupervisorFunctionProps, 'stageConfig' | 'projectRoot' | 'tableName'>,
    ): SupervisorFunction => {
      const created = new SupervisorFunction(this, id, {
        stageConfig,
        projectRoot,
        tableName: this.table.tableName,
        ...options,
      });
      this.functions.set(created.functionLabel, created);
      return created;
    };

    const groups = routedGroups(routes);
    const missing = [...groups, ...BACKGROUND_ENTRIES]
      .map((name) => join(projectRoot, 'functions', name, 'handler.ts'))
      .filter((entry) => !existsSync(entry));
    if (missing.length > 0) {
      throw new Error(`missing Lambda entries (functions/<name>/handler.ts):\n  ${missing.join('\n  ')}`);
    }

    const apiFunctions = new Map<FunctionGroup, SupervisorFunction>();
    for (const group of groups) {
      apiFunctions.set(
        group,
        fn(`${pascal(group)}Function`, {
          name: group,
          description: `Supervisor ${stage}: ${group} API`,
          timeout: API_TIMEOUT,
          noDlqReason: SYNC_NO_DLQ,
          ...(group === 'docs'
            ? { environment: { DOCS_ASSETS_DIR }, bundling: { commandHooks: copyDocsAssets } }
            : {}),
        }),
      );
    }

    const worker = fn('WorkerFunction', {
      name: 'worker',
      description: `Supervisor ${stage}: runs tasks from the task queue`,
      timeout: WORKER_TIMEOUT,
      memorySize: 1024,
      noDlqReason: 'Consumes the task queue through an event source mapping; failed messages go to the queue\'s redrive DLQ.',
    });
    const deadLetter = fn('DeadLetterFunction', {
      name: 'dead-letter',
      description: `Supervisor ${stage}: fails tasks whose messages reached the dead-letter queue`,
      timeout: BACKGROUND_TIMEOUT,
      noDlqReason: 'Consumes the task dead-letter queue through an event source mapping; unprocessed messages stay in that queue (14 days).',
    });
    const sweeper = fn('SweeperFunction', {
      name: 'sweeper',
      description: `Supervisor ${stage}: re-enqueues tasks stuck in pending/queued`,
      timeout: BACKGROUND_TIMEOUT,
      deadLetterQueue: asyncFailureQueue,
    });
    const engine = fn('WorkflowEngineFunction', {
      name: 'workflow-engine',
      description: `Supervisor ${stage}: advances workflow executions (Step Functions task)`,
      timeout: ENGINE_TIMEOUT,
      noDlqReason: 'Invoked synchronously by Step Functions (lambda:invoke task with retries); failures surface in the execution.',
    });
    const scheduleFire = fn('ScheduleFireFunction', {
      name: 'schedule-fire',
      description: `Supervisor ${stage}: target of workflow schedules`,
      timeout: BACKGROUND_TIMEOUT,
      deadLetterQueue: asyncFailureQueue,
    });
    const wsNoDlq = 'Invoked synchronously by the API Gateway WebSocket API; a Lambda DLQ only applies to asynchronous invocations.';
    const ws = {
      authorizer: fn('WsAuthorizerFunction', { name: 'ws', handler: 'authorizer', timeout: Duration.seconds(10), noDlqReason: wsNoDlq }),
      connect: fn('WsConnectFunction', { name: 'ws', handler: 'connect', timeout: API_TIMEOUT, noDlqReason: wsNoDlq }),
      disconnect: fn('WsDisconnectFunction', { name: 'ws', handler: 'disconnect', timeout: API_TIMEOUT, noDlqReason: wsNoDlq }),
      message: fn('WsMessageFunction', { name: 'ws', handler: 'message', timeout: API_TIMEOUT, noDlqReason: wsNoDlq }),
    };

    // ---------------------------------------------------------------- queue consumers and the sweeper schedule
    worker.addEventSource(
      new SqsEventSource(this.taskQueue, {
        batchSize: WORKER_BATCH_SIZE,
        reportBatchItemFailures: true,
        maxConcurrency: WORKER_MAX_CONCURRENCY,
      }),
    );
    deadLetter.addEventSource(new SqsEventSource(this.taskDlq, { batchSize: 10, reportBatchItemFailures: true }));
    const sqsNoDestination =
      'Lambda event source mappings for SQS do not support on-failure destinations; failed messages are handled by ' +
      'the queue\'s redrive policy (task queue → DLQ after 5 receives) and the DLQ keeps what its consumer cannot process.';
    acknowledge(worker, 'Serverless-LambdaEventSourceMappingDestination', sqsNoDestination);
    acknowledge(deadLetter, 'Serverless-LambdaEventSourceMappingDestination', sqsNoDestination);

    new Rule(this, 'SweeperSchedule', {
      description: `Supervisor ${stage}: run the sweeper every minute`,
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [
        new LambdaFunction(sweeper, {
          deadLetterQueue: asyncFailureQueue,
          retryAttempts: 2,
          maxEventAge: Duration.minutes(5),
        }),
      ],
    });

    // ---------------------------------------------------------------- workflow state machine
    const stateMachineName = `supervisor-${stage}-workflow-runs`;
    const stateMachineArn = this.formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: stateMachineName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const stateMachineLogs = new LogGroup(this, 'WorkflowStateMachineLogs', {
      logGroupName: `/aws/vendedlogs/states/${stateMachineName}`,
      retention: stageConfig.logRetention,
      removalPolicy: stageConfig.logRemovalPolicy,
    });
    this.stateMachine = new StateMachine(this, 'WorkflowStateMachine', {
      stateMachineName,
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromString(
        JSON.stringify(buildWorkflowDefinition({ engineFunctionArn: engine.functionArn })),
      ),
      logs: { destination: stateMachineLogs, level: LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [engine.functionArn] }),
    );
    acknowledge(
      this.stateMachine.role,
      'AwsSolutions-IAM5[Resource::*]',
      `${XRAY_REASON} Step Functions logging to CloudWatch Logs also requires logs:CreateLogDelivery, GetLogDelivery, ` +
      'UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies and ' +
      'DescribeLogGroups on "*" (these log-delivery APIs have no resource-level permissions).',
    );

    // ---------------------------------------------------------------- EventBridge Scheduler
    const scheduleGroupName = `supervisor-${stage}`;
    new CfnScheduleGroup(this, 'ScheduleGroup', { name: scheduleGroupName });
    const schedulerRole = new Role(this, 'SchedulerRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
      description: `Supervisor ${stage}: lets EventBridge Scheduler invoke the schedule target`,
    });
    schedulerRole.addToPolicy(new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [scheduleFire.functionArn] }));
    scheduleDlq.grantSendMessages(schedulerRole);

    // ---------------------------------------------------------------- bindings (least privilege + env)
    const bind = new Bindings({
      table: this.table,
      tableIndexes: TABLE_INDEXES,
      taskQueue: this.taskQueue,
      stateMachineName,
      stateMachineArn,
      scheduleGroupName,
      schedulerRole,
      scheduleTarget: scheduleFire,
      scheduleDlq,
      eventBus,
      signingKey,
      appSecret,
      secretPrefix,
      wsStage: this.webSocketApi.stage,
    });

    for (const [group, f] of apiFunctions) {
      bind.table(f, group === 'docs' ? 'RO' : 'RW');
      bind.signingKey(f, group === 'auth' ? 'sign' : 'verify');
      bind.appSecret(f);
    }
    const api = (group: FunctionGroup, use: (f: SupervisorFunction) => void): void => {
      const f = apiFunctions.get(group);
      if (f) use(f);
    };
    api('tasks', (f) => {
      bind.queue(f, 'send');
      bind.eventBus(f);
      // The agents routes (group `tasks`) store, replace and remove agents' API keys.
      bind.providerSecrets(f, 'manage');
    });
    api('workflows', (f) => {
      bind.stateMachine(f, 'manage');
      bind.scheduler(f, 'manage');
      bind.queue(f, 'send');
    });
    api('providers', (f) => {
      bind.providerSecrets(f, 'manage');
      bind.queue(f, 'send');
    });
    api('plugins', (f) => bind.eventBus(f));
    api('monitoring', (f) => bind.eventBus(f));
    api('health', (f) => {
      bind.stateMachine(f, 'describe');
      bind.scheduler(f, 'check');
      bind.queue(f, 'check');
      bind.eventBus(f);
    });

    bind.table(worker, 'RW');
    bind.queue(worker, 'send');
    bind.providerSecrets(worker, 'read');
    bind.eventBus(worker);

    bind.table(deadLetter, 'RW');

    bind.table(sweeper, 'RW');
    bind.queue(sweeper, 'send');

    bind.table(engine, 'RW');
    bind.stateMachine(engine, 'describe');
    bind.queue(engine, 'send');

    bind.table(scheduleFire, 'RW');
    bind.stateMachine(scheduleFire, 'start');
    bind.queue(scheduleFire, 'send');

    bind.table(ws.authorizer, 'RO');
    bind.signingKey(ws.authorizer, 'verify');
    bind.table(ws.connect, 'RW');
    bind.table(ws.disconnect, 'RW');
    bind.table(ws.message, 'RW');

    for (const label of WS_PUBLISHERS) {
      const publisher = this.functions.get(label); // API groups without routes have no function
      if (publisher) bind.connections(publisher);
    }

    // ---------------------------------------------------------------- routes
    this.httpApi = new SupervisorHttpApi(this, 'Http', { stageConfig, routes, functions: apiFunctions });
    this.webSocketApi.addHandlers(ws);

    // ---------------------------------------------------------------- outputs
    new CfnOutput(this, 'HttpApiUrl', { value: this.httpApi.url, description: 'HTTP API base URL' });
    new CfnOutput(this, 'WebSocketUrl', { value: this.webSocketApi.url, description: 'WebSocket URL (add ?token=<access token>)' });
    new CfnOutput(this, 'TableName', { value: this.table.tableName, description: 'DynamoDB table (TABLE_NAME)' });
    new CfnOutput(this, 'TaskQueueUrl', { value: this.taskQueue.queueUrl, description: 'SQS task queue' });
    new CfnOutput(this, 'StateMachineArn', { value: this.stateMachine.stateMachineArn, description: 'Workflow state machine' });
    new CfnOutput(this, 'EventBusName', { value: eventBus.eventBusName });
    new CfnOutput(this, 'SigningKeyId', { value: signingKey.keyId });
  }
}

function pascal(name: string): string {
  return name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}
