import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import type { RouteSpec } from '../shared/platform/api/route.js';
import { portsOf, TABLE_INDEX_NAMES, TASK_QUEUE } from '../shared/platform/infra.js';
import { Bindings } from './bindings.js';
import { SupervisorApis } from './constructs/apis.js';
import { ChangeFeed } from './constructs/change-feed.js';
import { Alerting } from './constructs/alerting.js';
import { SupervisorData } from './constructs/data.js';
import type { SupervisorHttpApi } from './constructs/http-api.js';
import { SupervisorObservability } from './constructs/observability.js';
import { SupervisorFunctions, type SupervisorFunction } from './constructs/supervisor-function.js';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AuditRetry } from './constructs/audit-retry.js';
import { TaskProcessing } from './constructs/task-processing.js';
import type { SupervisorWebSocketApi } from './constructs/websocket-api.js';
import { WorkflowOrchestration } from './constructs/workflows.js';
import { PluginDelivery } from './constructs/plugin-delivery.js';
import { apiRoutes, routedGroups } from './routes.js';
import type { StageConfig } from './stage.js';

export { DOCS_ASSET_FILES, DOCS_ASSETS_DIR } from './constructs/apis.js';
export { VISIBILITY_FACTOR } from '../shared/platform/infra.js';
export const TASK_MAX_RECEIVE_COUNT = TASK_QUEUE.maxReceiveCount;
export const WORKER_BATCH_SIZE = TASK_QUEUE.batchSize;
export const WORKER_MAX_CONCURRENCY = TASK_QUEUE.maxConcurrency;

/** The repository root (holds `functions/` and `package-lock.json`). */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Entries besides the API groups': `functions/<name>/handler.ts`. */
export const BACKGROUND_ENTRIES = ['worker', 'dead-letter', 'sweeper', 'workflow-engine', 'schedule-fire', 'audit-retry', 'plugin-delivery', 'failures', 'change-feed', 'live-feed', 'metrics-collector', 'alert-evaluator', 'ws'] as const;

export interface SupervisorStackProps extends StackProps {
  readonly stageConfig: StageConfig;
  /** The route table (`ROUTES` of `shared/routes.ts`). */
  readonly routes: readonly RouteSpec[];
  /** Directory that holds `functions/` and `package-lock.json` (default: the repository root). */
  readonly projectRoot?: string;
  /** Create the account-level API Gateway CloudWatch role WebSocket logging needs (default true). */
  readonly createApiGatewayAccountRole?: boolean;
  /** Bedrock model and inference-profile ARNs the providers may invoke (default: any foundation model, the account's inference profiles). */
  readonly bedrockModelArns?: readonly string[];
  /** An e-mail address subscribed to the alarm topic (default: none). */
  readonly alarmEmail?: string;
}

/**
 * Supervisor on AWS: HTTP and WebSocket APIs over one Lambda per endpoint group, a DynamoDB single
 * table, an SQS task queue with DLQ and its worker, a Step Functions state machine for workflow runs,
 * EventBridge Scheduler for schedules, an EventBridge bus, a KMS signing key and Secrets Manager.
 *
 * Each concern is one class under `lib/constructs/`; they create their resources in this stack's
 * scope, so logical ids are those of the stack's direct children. What each function may use is
 * granted through `Bindings` (permission and environment variable together) by the concern that
 * owns the function, from the function's entry in `FUNCTION_PORTS` (`shared/platform/infra.ts`): exactly
 * the ports its code uses, which `test/infra/function-ports.test.ts` checks against its bundle.
 */
export class SupervisorStack extends Stack {
  readonly table: Table;
  readonly taskQueue: Queue;
  readonly taskDlq: Queue;
  readonly stateMachine: StateMachine;
  readonly httpApi: SupervisorHttpApi;
  readonly webSocketApi: SupervisorWebSocketApi;
  /** Every function, by label (`tasks`, `worker`, `ws-connect`, …). */
  readonly functions: ReadonlyMap<string, SupervisorFunction>;

  constructor(scope: Construct, id: string, props: SupervisorStackProps) {
    super(scope, id, props);
    const { stageConfig } = props;
    const projectRoot = props.projectRoot ?? PROJECT_ROOT;
    const routes = apiRoutes(props.routes);
    assertEntriesExist(projectRoot, [...routedGroups(routes), ...BACKGROUND_ENTRIES]);

    const observability = new SupervisorObservability(this, { stageConfig, alarmEmail: props.alarmEmail });
    const data = new SupervisorData(this, { stageConfig });
    const functions = new SupervisorFunctions(this, { stageConfig, projectRoot });
    const apis = new SupervisorApis(this, {
      stageConfig,
      routes,
      functions,
      createApiGatewayAccountRole: props.createApiGatewayAccountRole ?? true,
    });
    const tasks = new TaskProcessing(this, { stageConfig, functions });
    const audits = new AuditRetry(this, { stageConfig, functions });
    const workflows = new WorkflowOrchestration(this, {
      stageConfig,
      functions,
      observability,
      asyncFailureQueue: tasks.asyncFailureQueue,
    });

    new PluginDelivery(this, { stageConfig, functions, eventBus: data.eventBus, asyncFailureQueue: tasks.asyncFailureQueue });
    observability.failureConsumer(functions, [tasks.asyncFailureQueue, workflows.scheduleDlq]);
    new ChangeFeed(this, { stageConfig, functions, table: data.table, asyncFailureQueue: tasks.asyncFailureQueue });
    new Alerting(this, 'Alerting', { stageConfig, functions, asyncFailureQueue: tasks.asyncFailureQueue });

    const bind = new Bindings({
      table: data.table,
      tableIndexes: TABLE_INDEX_NAMES,
      taskQueue: tasks.taskQueue,
      auditQueue: audits.queue,
      stateMachineName: workflows.stateMachineName,
      stateMachineArn: workflows.stateMachineArn,
      scheduleGroupName: workflows.scheduleGroupName,
      schedulerRole: workflows.schedulerRole,
      scheduleTargetArn: workflows.scheduleFireArn,
      scheduleDlq: workflows.scheduleDlq,
      eventBus: data.eventBus,
      signingKey: data.signingKey,
      appSecret: data.appSecret,
      secretPrefix: data.secretPrefix,
      wsStage: apis.webSocketApi.stage,
      workerEventSourceMapping: { id: tasks.workerEventSource.eventSourceMappingId, arn: tasks.workerEventSource.eventSourceMappingArn },
      workerReservedConcurrency: tasks.workerReservedConcurrency,
      filesBucket: data.filesBucket,
      bedrockModelArns: props.bedrockModelArns,
    });
    for (const [label, fn] of functions.byLabel) bind.ports(fn, portsOf(label));

    // The audit dead-letter queue's alarm (an audit entry that could not be written) notifies the same topic.
    audits.deadLetterAlarm.addAlarmAction(new SnsAction(observability.alarmTopic));
    observability.alarms({
      functions: functions.byLabel,
      taskQueue: tasks.taskQueue,
      taskDlq: tasks.taskDlq,
      failureQueues: [tasks.asyncFailureQueue, workflows.scheduleDlq],
      httpApi: apis.httpApi.api,
      stateMachine: workflows.stateMachine,
    });

    this.table = data.table;
    this.taskQueue = tasks.taskQueue;
    this.taskDlq = tasks.taskDlq;
    this.stateMachine = workflows.stateMachine;
    this.httpApi = apis.httpApi;
    this.webSocketApi = apis.webSocketApi;
    this.functions = functions.byLabel;

    new CfnOutput(this, 'HttpApiUrl', { value: this.httpApi.url, description: 'HTTP API base URL' });
    new CfnOutput(this, 'WebSocketUrl', { value: this.webSocketApi.url, description: 'WebSocket URL (add ?token=<access token>)' });
    new CfnOutput(this, 'TableName', { value: this.table.tableName, description: 'DynamoDB table (TABLE_NAME)' });
    new CfnOutput(this, 'TaskQueueUrl', { value: this.taskQueue.queueUrl, description: 'SQS task queue' });
    new CfnOutput(this, 'StateMachineArn', { value: this.stateMachine.stateMachineArn, description: 'Workflow state machine' });
    new CfnOutput(this, 'EventBusName', { value: data.eventBus.eventBusName });
    new CfnOutput(this, 'SigningKeyId', { value: data.signingKey.keyId });
    new CfnOutput(this, 'AlarmTopicArn', { value: observability.alarmTopic.topicArn, description: 'SNS topic every alarm notifies' });
  }
}

function assertEntriesExist(projectRoot: string, names: readonly string[]): void {
  const missing = names
    .map((name) => join(projectRoot, 'functions', name, 'handler.ts'))
    .filter((entry) => !existsSync(entry));
  if (missing.length > 0) {
    throw new Error(`missing Lambda entries (functions/<name>/handler.ts):\n  ${missing.join('\n  ')}`);
  }
}
