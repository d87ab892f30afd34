import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnScheduleGroup } from 'aws-cdk-lib/aws-scheduler';
import { Queue, type IQueue } from 'aws-cdk-lib/aws-sqs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { FAILURE_QUEUES, FUNCTIONS, SCHEDULE_FIRE_ASYNC } from '../../shared/platform/infra.js';
import { buildWorkflowDefinition } from '../../shared/workflows/asl.js';
import { acknowledge, XRAY_REASON } from '../nag.js';
import type { StageConfig } from '../stage.js';
import type { SupervisorObservability } from './observability.js';
import type { SupervisorFunction, SupervisorFunctions } from './supervisor-function.js';
import { QUEUE_DEFAULTS } from './task-processing.js';

export interface WorkflowOrchestrationProps {
  readonly stageConfig: StageConfig;
  readonly functions: SupervisorFunctions;
  readonly observability: SupervisorObservability;
  /** Dead-letter queue of the schedule target's failed asynchronous invocations. */
  readonly asyncFailureQueue: IQueue;
}

/**
 * Workflow runs and schedules: the Step Functions state machine (the shared ASL document) whose
 * `Advance` task is the workflow-engine function, and EventBridge Scheduler (the stage's schedule
 * group, the role the Scheduler assumes, the schedules' dead-letter queue) with its target, the
 * schedule-fire function. Schedules themselves are created at run time by the workflows API.
 *
 * Resources are created in the given scope (the stack) so that their logical ids stay those of the
 * stack's direct children.
 */
export class WorkflowOrchestration {
  readonly stateMachine: StateMachine;
  readonly stateMachineName: string;
  /** Built from the fixed name, so that functions the machine invokes can hold it without a dependency cycle. */
  readonly stateMachineArn: string;
  readonly engine: SupervisorFunction;
  readonly scheduleFire: SupervisorFunction;
  /**
   * Built from its fixed name: the functions that create schedules targeting it hold it without a
   * reference, so schedule-fire itself (which pauses schedules) can too, without a cycle.
   */
  readonly scheduleFireArn: string;
  readonly scheduleGroupName: string;
  readonly schedulerRole: Role;
  readonly scheduleDlq: Queue;

  constructor(scope: Construct, props: WorkflowOrchestrationProps) {
    const { stageConfig, functions } = props;
    const { stage } = stageConfig;
    const stack = Stack.of(scope);

    // ---------------------------------------------------------------- functions
    this.engine = functions.add('WorkflowEngineFunction', {
      name: 'workflow-engine',
      description: `Supervisor ${stage}: advances workflow executions (Step Functions task)`,
      limits: FUNCTIONS.workflowEngine,
      noDlqReason: 'Invoked synchronously by Step Functions (lambda:invoke task with retries); failures surface in the execution.',
    });
    const scheduleFireName = `supervisor-${stage}-schedule-fire`;
    this.scheduleFireArn = stack.formatArn({
      service: 'lambda',
      resource: 'function',
      resourceName: scheduleFireName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.scheduleFire = functions.add('ScheduleFireFunction', {
      name: 'schedule-fire',
      functionName: scheduleFireName,
      description: `Supervisor ${stage}: target of workflow schedules`,
      limits: FUNCTIONS.background,
      deadLetterQueue: props.asyncFailureQueue,
    });
    // The Scheduler invokes it asynchronously: Lambda retries a failed firing, then dead-letters it.
    // Set explicitly so that FIRING_TAKEOVER_SECONDS (shared/schedules/service.ts) fits these retries.
    this.scheduleFire.configureAsyncInvoke({
      retryAttempts: SCHEDULE_FIRE_ASYNC.retryAttempts,
      maxEventAge: Duration.seconds(SCHEDULE_FIRE_ASYNC.maxEventAgeSeconds),
    });
    acknowledge(
      this.scheduleFire,
      'Serverless-LambdaAsyncFailureDestination',
      'A firing that fails after Lambda\'s retries goes to the function\'s dead-letter queue (AsyncFailureQueue), which the failures ' +
        'function consumes and records on the schedule; an on-failure destination would deliver each failure a second time.',
    );

    // ---------------------------------------------------------------- state machine
    this.stateMachineName = `supervisor-${stage}-workflow-runs`;
    this.stateMachineArn = stack.formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: this.stateMachineName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.stateMachine = new StateMachine(scope, 'WorkflowStateMachine', {
      stateMachineName: this.stateMachineName,
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromString(
        JSON.stringify(buildWorkflowDefinition({ engineFunctionArn: this.engine.functionArn })),
      ),
      logs: {
        destination: props.observability.stateMachineLogs(this.stateMachineName),
        level: LogLevel.ALL,
        includeExecutionData: true,
      },
      tracingEnabled: true,
    });
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.engine.functionArn] }),
    );
    acknowledge(
      this.stateMachine.role,
      'AwsSolutions-IAM5[Resource::*]',
      `${XRAY_REASON} Step Functions logging to CloudWatch Logs also requires logs:CreateLogDelivery, GetLogDelivery, ` +
      'UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies and ' +
      'DescribeLogGroups on "*" (these log-delivery APIs have no resource-level permissions).',
    );

    // ---------------------------------------------------------------- EventBridge Scheduler
    this.scheduleDlq = new Queue(scope, 'ScheduleDeadLetterQueue', {
      ...QUEUE_DEFAULTS,
      retentionPeriod: Duration.days(FAILURE_QUEUES.retentionDays),
      visibilityTimeout: Duration.seconds(FAILURE_QUEUES.visibilityTimeoutSeconds),
    });
    const dlqOfSchedules =
      'This queue is itself the dead-letter queue of the EventBridge Scheduler schedules, which the workflows ' +
      'function creates at run time (SCHEDULE_DLQ_ARN), so no resource in this template references it.';
    acknowledge(this.scheduleDlq, 'AwsSolutions-SQS3', dlqOfSchedules);
    acknowledge(this.scheduleDlq, 'Serverless-SQSRedrivePolicy', dlqOfSchedules);

    this.scheduleGroupName = `supervisor-${stage}`;
    new CfnScheduleGroup(scope, 'ScheduleGroup', { name: this.scheduleGroupName });
    this.schedulerRole = new Role(scope, 'SchedulerRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: `Supervisor ${stage}: lets EventBridge Scheduler invoke the schedule target`,
    });
    this.schedulerRole.addToPolicy(
      new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.scheduleFire.functionArn] }),
    );
    this.scheduleDlq.grantSendMessages(this.schedulerRole);
  }
}
