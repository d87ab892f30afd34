import { existsSync } from 'node:fs';
import { CHANGE_FEED_KEY_PREFIXES } from '../../shared/change-feed.js';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { ENGINE_TASK_STATE } from '../../shared/workflows/asl.js';
import { BUNDLE_TARGET, LAMBDA_RUNTIME } from '../../lib/constructs/supervisor-function.js';
import {
  BACKGROUND_ENTRIES,
  TASK_MAX_RECEIVE_COUNT,
  VISIBILITY_FACTOR,
  WORKER_BATCH_SIZE,
  WORKER_MAX_CONCURRENCY,
  DOCS_ASSETS_DIR,
  DOCS_ASSET_FILES,
} from '../../lib/supervisor-stack.js';
import { agentRoutes } from '../../shared/agents/routes.js';
import { FUNCTION_PORTS, LIVE_FEED, type FunctionPorts } from '../../shared/platform/infra.js';
import { buildStack, FAKE_ROUTES, removeOutdirs } from './helpers.js';

afterAll(removeOutdirs);

type Resource = { Type: string; Properties: Record<string, any>; DeletionPolicy?: string; UpdateReplacePolicy?: string };

const dev = buildStack({ stage: 'dev' });
const template = Template.fromStack(dev.stack);
const prodTemplate = Template.fromStack(buildStack({ stage: 'prod' }).stack);

const resources = (type: string, t: Template = template): Record<string, Resource> =>
  t.findResources(type) as Record<string, Resource>;
const functions = resources('AWS::Lambda::Function');
/** The function whose POWERTOOLS_SERVICE_NAME is `supervisor-<label>` (`tasks`, `worker`, `ws-authorizer`, …). */
function fnId(label: string): string {
  const id = Object.keys(functions).find(
    (k) => functions[k].Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME === `supervisor-${label}`,
  );
  if (!id) throw new Error(`no function ${label}`);
  return id;
}
function env(label: string): Record<string, unknown> {
  return functions[fnId(label)].Properties.Environment.Variables;
}
/** All statements of the role policy of the function `label`. */
function statements(label: string): Array<{ Action: string | string[]; Resource: unknown; Condition?: unknown }> {
  const roleId = functions[fnId(label)].Properties.Role['Fn::GetAtt'][0];
  return Object.values(resources('AWS::IAM::Policy'))
    .filter((p) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}
const actionsOf = (label: string): string[] =>
  statements(label).flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
const statementFor = (label: string, action: string) =>
  statements(label).find((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]).includes(action));

const API_GROUPS = ['tasks', 'workflows', 'providers', 'plugins', 'monitoring', 'auth', 'health', 'docs'];
/** Every function's label. */
const labels = (): string[] => Object.values(functions).map((f) => (f.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME as string).slice(11));
const declares = (label: string, port: keyof FunctionPorts): boolean => (FUNCTION_PORTS as Record<string, FunctionPorts>)[label][port] !== undefined;

describe('DynamoDB table', () => {
  it('is a pk/sk single table with three string GSIs, on demand, PITR and TTL', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
      GlobalSecondaryIndexes: ['gsi1', 'gsi2', 'gsi3'].map((g) => ({
        IndexName: g,
        KeySchema: [
          { AttributeName: `${g}pk`, KeyType: 'HASH' },
          { AttributeName: `${g}sk`, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      })),
    });
    const attributes = Object.values(resources('AWS::DynamoDB::Table'))[0].Properties.AttributeDefinitions;
    expect(attributes.every((a: { AttributeType: string }) => a.AttributeType === 'S')).toBe(true);
  });

  it('is retained, with deletion protection in prod only', () => {
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    template.hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: false });
    prodTemplate.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({ DeletionProtectionEnabled: true }),
    });
  });
});

describe('task queue, DLQ and worker', () => {
  const queues = resources('AWS::SQS::Queue');
  const mappings = Object.values(resources('AWS::Lambda::EventSourceMapping'));
  const workerMapping = mappings.find((m) => m.Properties.FunctionName.Ref === fnId('worker'))!;
  const taskQueueId = workerMapping.Properties.EventSourceArn['Fn::GetAtt'][0] as string;
  const taskQueue = queues[taskQueueId].Properties;

  it('has a visibility timeout of at least 6 × the worker timeout', () => {
    const workerTimeout = functions[fnId('worker')].Properties.Timeout as number;
    expect(workerTimeout).toBe(900);
    expect(taskQueue.VisibilityTimeout).toBeGreaterThanOrEqual(VISIBILITY_FACTOR * workerTimeout);
    expect(taskQueue.VisibilityTimeout).toBeLessThanOrEqual(43200);
  });

  it('feeds the table stream to the change-feed function: partial failures, bisect, bounded retries, a failure queue', () => {
    const table = Object.values(resources('AWS::DynamoDB::Table'))[0];
    expect(table.Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_AND_OLD_IMAGES' });
    const feed = mappings.find((m) => m.Properties.FunctionName.Ref === fnId('change-feed'))!;
    expect(feed.Properties).toMatchObject({
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 5,
      StartingPosition: 'TRIM_HORIZON',
    });
    expect(feed.Properties.DestinationConfig.OnFailure.Destination['Fn::GetAtt'][0]).toMatch(/^ChangeFeedFailureQueue/);
    // Only the changes a consumer wants reach the function: not the rollups and markers it writes itself
    // (a new raw point, one per recorded point, is what tells the analytics stream to push).
    const pattern = JSON.parse(feed.Properties.FilterCriteria.Filters[0].Pattern);
    const prefixes = pattern.dynamodb.Keys.pk.S.map((rule: { prefix: string }) => rule.prefix);
    expect(prefixes).toEqual([...CHANGE_FEED_KEY_PREFIXES]);
    expect(prefixes).toContain('TASK#');
    expect(prefixes.some((p: string) => ['MROLL#minute#task.finished#*', 'METRIC_EVENT#0a1b', 'MSERIES#task.finished'].some((pk) => pk.startsWith(p)))).toBe(false);
  });

  it('feeds the same stream to the live-feed function with no batching window: task and run items only, the same failure handling', () => {
    const live = mappings.find((m) => m.Properties.FunctionName.Ref === fnId('live-feed'))!;
    expect(live.Properties).toMatchObject({
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: LIVE_FEED.retryAttempts,
      MaximumBatchingWindowInSeconds: 0,
      BatchSize: LIVE_FEED.batchSize,
      StartingPosition: 'TRIM_HORIZON',
    });
    expect(live.Properties.DestinationConfig.OnFailure.Destination['Fn::GetAtt'][0]).toMatch(/^ChangeFeedFailureQueue/);
    const pattern = JSON.parse(live.Properties.FilterCriteria.Filters[0].Pattern);
    expect(pattern.dynamodb.Keys.pk.S).toEqual(expect.arrayContaining([{ prefix: 'TASK#' }, { prefix: 'EXECUTION#' }]));
    expect(pattern.dynamodb.Keys.pk.S).toHaveLength(2);
    // Two readers of the stream at most: each shard allows two concurrent consumers.
    expect(mappings.filter((m) => JSON.stringify(m.Properties.EventSourceArn).includes('StreamArn'))).toHaveLength(2);
  });

  it('redrives to a DLQ after 5 receives, and the DLQ feeds the dead-letter function', () => {
    const dlqId = taskQueue.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0] as string;
    expect(taskQueue.RedrivePolicy.maxReceiveCount).toBe(TASK_MAX_RECEIVE_COUNT);
    const dlqMapping = mappings.find((m) => m.Properties.EventSourceArn['Fn::GetAtt'][0] === dlqId)!;
    expect(dlqMapping.Properties.FunctionName.Ref).toBe(fnId('dead-letter'));
    expect(dlqMapping.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
  });

  it('encrypts every queue and denies non-TLS access', () => {
    for (const q of Object.values(queues)) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
    const policies = Object.values(resources('AWS::SQS::QueuePolicy'));
    expect(policies).toHaveLength(Object.keys(queues).length);
    for (const p of policies) {
      expect(p.Properties.PolicyDocument.Statement).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      );
    }
  });

  it('maps the queue to the worker with partial batch failures and bounded concurrency', () => {
    expect(workerMapping.Properties).toMatchObject({
      BatchSize: WORKER_BATCH_SIZE,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: WORKER_MAX_CONCURRENCY },
    });
    expect(functions[fnId('worker')].Properties.MemorySize).toBe(1024);
    expect(env('worker')).toHaveProperty('TASK_QUEUE_URL');
  });

  it('lets only the resources function update the worker mapping (its maximum concurrency), on that one mapping', () => {
    // The fixture table with a resources route, so that the resources function exists.
    const withResources = Template.fromStack(
      buildStack({ stage: 'dev', routes: [...FAKE_ROUTES, { operationId: 'scaleResources', method: 'POST', path: '/api/v1/resources/scale', group: 'resources', permission: null, summary: 'fixture' }] }).stack,
    );
    const fns = resources('AWS::Lambda::Function', withResources);
    const label = (id: string) => (fns[id].Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME as string).slice(11);
    const resourcesFn = Object.keys(fns).find((id) => label(id) === 'resources')!;
    const workerFn = Object.keys(fns).find((id) => label(id) === 'worker')!;
    const maps = resources('AWS::Lambda::EventSourceMapping', withResources);
    const mappingId = Object.keys(maps).find((id) => maps[id].Properties.FunctionName.Ref === workerFn)!;
    const policies = Object.values(resources('AWS::IAM::Policy', withResources));
    const statementsOf = (fnId: string) =>
      policies.filter((p) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === fns[fnId].Properties.Role['Fn::GetAtt'][0])).flatMap((p) => p.Properties.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>);
    const grants = statementsOf(resourcesFn).filter((st) => [st.Action].flat().includes('lambda:UpdateEventSourceMapping'));
    expect(grants).toHaveLength(1);
    expect(grants[0].Action).toBe('lambda:UpdateEventSourceMapping');
    // The ARN of the worker's mapping, built from its id: no wildcard, no other mapping.
    const resource = JSON.stringify(grants[0].Resource);
    expect(resource).toContain(`"Ref":"${mappingId}"`);
    expect(resource).toContain(':event-source-mapping:');
    expect(resource).not.toContain('*');
    expect(fns[resourcesFn].Properties.Environment.Variables).toMatchObject({ WORKER_EVENT_SOURCE_MAPPING_ID: { Ref: mappingId }, WORKER_RESERVED_CONCURRENCY: String(WORKER_MAX_CONCURRENCY) });
    for (const other of Object.keys(fns).filter((id) => id !== resourcesFn)) {
      expect(statementsOf(other).flatMap((st) => [st.Action].flat()), label(other)).not.toContain('lambda:UpdateEventSourceMapping');
      expect(fns[other].Properties.Environment.Variables, label(other)).not.toHaveProperty('WORKER_EVENT_SOURCE_MAPPING_ID');
    }
  });

  it('runs the sweeper every minute with a DLQ on the rule target and the function', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [fnId('sweeper'), 'Arn'] },
          DeadLetterConfig: Match.objectLike({ Arn: Match.anyValue() }),
        }),
      ],
    });
    expect(functions[fnId('sweeper')].Properties.DeadLetterConfig).toBeDefined();
  });
});

describe('workflow state machine', () => {
  const [smId, sm] = Object.entries(resources('AWS::StepFunctions::StateMachine'))[0];

  it('is STANDARD, logs ALL to its log group and is traced', () => {
    expect(sm.Properties.StateMachineType).toBe('STANDARD');
    expect(sm.Properties.TracingConfiguration).toEqual({ Enabled: true });
    expect(sm.Properties.LoggingConfiguration).toMatchObject({
      Level: 'ALL',
      IncludeExecutionData: true,
      Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [expect.any(String), 'Arn'] } } }],
    });
    const logGroupId = sm.Properties.LoggingConfiguration.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'][0];
    // Named under /aws/vendedlogs/states/, with a suffix unique to this creation of the stack (its id's UUID).
    const name = resources('AWS::Logs::LogGroup')[logGroupId].Properties.LogGroupName;
    expect(name['Fn::Join'][1][0]).toBe('/aws/vendedlogs/states/supervisor-dev-workflow-runs-');
    expect(JSON.stringify(name['Fn::Join'][1][1])).toContain('AWS::StackId');
  });

  it('deploys the shared ASL document whose Advance task invokes the engine', () => {
    const definition = JSON.stringify(sm.Properties.DefinitionString);
    expect(definition).toContain(`\\"Next\\":\\"${ENGINE_TASK_STATE}\\"`);
    expect(definition).toContain('arn:aws:states:::lambda:invoke.waitForTaskToken');
    expect(definition).toContain(fnId('workflow-engine'));
  });

  it('may invoke the engine function only', () => {
    const roleId = sm.Properties.RoleArn['Fn::GetAtt'][0];
    const policy = Object.values(resources('AWS::IAM::Policy')).find((p) =>
      p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId),
    )!;
    const invoke = policy.Properties.PolicyDocument.Statement.filter((s: { Action: unknown }) => s.Action === 'lambda:InvokeFunction');
    expect(invoke).toEqual([
      { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [fnId('workflow-engine'), 'Arn'] } },
    ]);
  });

  it('gives STATE_MACHINE_ARN and scoped grants to workflows, schedule-fire and health (the engine only answers callbacks)', () => {
    const name = sm.Properties.StateMachineName as string;
    expect(actionsOf('workflow-engine').filter((a) => a.startsWith('states:')).sort()).toEqual(['states:SendTaskFailure', 'states:SendTaskSuccess']);
    for (const label of ['workflows', 'schedule-fire', 'health']) {
      expect(JSON.stringify(env(label).STATE_MACHINE_ARN)).toContain(`:stateMachine:${name}`);
      expect(JSON.stringify(statementFor(label, 'states:DescribeExecution')!.Resource)).toContain(`:execution:${name}:*`);
    }
    expect(actionsOf('workflows')).toEqual(expect.arrayContaining(['states:StartExecution', 'states:StopExecution']));
    expect(actionsOf('schedule-fire')).toContain('states:StartExecution');
    expect(actionsOf('schedule-fire')).not.toContain('states:StopExecution');
    expect(actionsOf('health')).not.toContain('states:StartExecution');
    // Functions that end a step's task only answer the run's waiting Advance (step callbacks).
    expect(actionsOf('tasks').filter((a) => a.startsWith('states:')).sort()).toEqual(['states:SendTaskFailure', 'states:SendTaskSuccess']);
    for (const label of ['workflow-engine', 'worker', 'dead-letter', 'sweeper', 'tasks', 'workflows', 'schedule-fire']) {
      expect(JSON.stringify(statementFor(label, 'states:SendTaskSuccess')!.Resource)).toContain(`:stateMachine:${name}`);
    }
    expect(smId).toBeDefined();
  });
});

describe('EventBridge Scheduler', () => {
  it('has the stage schedule group and a role scheduler.amazonaws.com assumes to invoke schedule-fire', () => {
    template.hasResourceProperties('AWS::Scheduler::ScheduleGroup', { Name: 'supervisor-dev' });
    const roleId = env('workflows').SCHEDULER_ROLE_ARN as { 'Fn::GetAtt': [string, string] };
    const role = resources('AWS::IAM::Role')[roleId['Fn::GetAtt'][0]];
    expect(role.Properties.AssumeRolePolicyDocument.Statement[0]).toMatchObject({
      Principal: { Service: 'scheduler.amazonaws.com' },
      Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
    });
    const policy = Object.values(resources('AWS::IAM::Policy')).find((p) =>
      p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId['Fn::GetAtt'][0]),
    )!;
    expect(policy.Properties.PolicyDocument.Statement).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Action: 'lambda:InvokeFunction', Resource: { 'Fn::GetAtt': [fnId('schedule-fire'), 'Arn'] } }),
        expect.objectContaining({ Action: expect.arrayContaining(['sqs:SendMessage']), Resource: env('workflows').SCHEDULE_DLQ_ARN }),
      ]),
    );
  });

  it('lets the workflows function manage schedules in its group only and pass only the scheduler role', () => {
    const e = env('workflows');
    expect(e.SCHEDULE_GROUP).toBe('supervisor-dev');
    expect(JSON.stringify(e.SCHEDULE_TARGET_ARN)).toContain(':function:supervisor-dev-schedule-fire');
    expect(functions[fnId('schedule-fire')].Properties.FunctionName).toBe('supervisor-dev-schedule-fire');
    const manage = statementFor('workflows', 'scheduler:CreateSchedule')!;
    expect(manage.Action).toEqual(
      expect.arrayContaining(['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule', 'scheduler:GetSchedule']),
    );
    expect(JSON.stringify(manage.Resource)).toMatch(/:schedule\/supervisor-dev\/\*"\]\]\}$/);
    expect(statementFor('workflows', 'iam:PassRole')).toMatchObject({
      Resource: e.SCHEDULER_ROLE_ARN,
      Condition: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
    });
    // health checks the group: the adapter needs the same variables, but may only read the group
    expect(env('health')).toMatchObject({ SCHEDULE_GROUP: 'supervisor-dev', SCHEDULER_ROLE_ARN: e.SCHEDULER_ROLE_ARN });
    expect(actionsOf('health')).toContain('scheduler:GetScheduleGroup');
    // auth (deactivating a user) and schedule-fire (an owner who lost the right) pause schedules
    for (const label of labels()) {
      const manages = ['workflows', 'auth', 'schedule-fire'].includes(label);
      expect(actionsOf(label).includes('scheduler:UpdateSchedule'), label).toBe(manages);
      expect(actionsOf(label).includes('iam:PassRole'), label).toBe(manages);
    }
  });
});

describe('HTTP API', () => {
  it('has a $default stage with JSON access logs and default-route throttling', () => {
    const stage = Object.values(resources('AWS::ApiGatewayV2::Stage')).find((s) => s.Properties.StageName === '$default')!;
    expect(stage.Properties.AutoDeploy).toBe(true);
    expect(stage.Properties.DefaultRouteSettings).toMatchObject({ ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 });
    const format = JSON.parse(stage.Properties.AccessLogSettings.Format);
    for (const field of ['requestId', 'ip', 'routeKey', 'status', 'latency']) expect(format).toHaveProperty(field);
    expect(stage.Properties.AccessLogSettings.DestinationArn).toEqual({ 'Fn::GetAtt': [expect.any(String), 'Arn'] });
  });

  it('answers CORS preflight', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'HTTP',
      CorsConfiguration: Match.objectLike({
        AllowOrigins: ['*'],
        AllowHeaders: Match.arrayWith(['authorization', 'content-type', 'idempotency-key']),
        // The headers the functions answer that a browser client reads (API Gateway's CORS replaces theirs).
        ExposeHeaders: Match.arrayWith(['retry-after', 'x-request-id', 'idempotent-replayed']),
      }),
    });
  });

  it('creates one function per group with routes, and none for groups without', () => {
    const descriptions = Object.values(functions).map((f) => f.Properties.Description as string);
    for (const group of API_GROUPS) expect(descriptions).toContain(`Supervisor dev: ${group} API`);
    for (const group of ['analytics', 'analytics-advanced', 'resources']) {
      expect(descriptions).not.toContain(`Supervisor dev: ${group} API`);
    }
  });

  it('grants API Gateway one API-scoped invoke permission per function', () => {
    const permissions = Object.values(resources('AWS::Lambda::Permission')).filter(
      (p) => p.Properties.Principal === 'apigateway.amazonaws.com' && JSON.stringify(p.Properties.SourceArn).includes('/*/*/*'),
    );
    expect(permissions).toHaveLength(API_GROUPS.length);
  });
});

describe('WebSocket API', () => {
  const wsApiId = Object.keys(resources('AWS::ApiGatewayV2::Api')).find(
    (k) => resources('AWS::ApiGatewayV2::Api')[k].Properties.ProtocolType === 'WEBSOCKET',
  )!;

  it('authorizes $connect with the Lambda authorizer on the token query parameter', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'REQUEST',
      IdentitySource: ['route.request.querystring.token'],
    });
    const routes = Object.values(resources('AWS::ApiGatewayV2::Route')).filter((r) => r.Properties.ApiId.Ref === wsApiId);
    const byKey = Object.fromEntries(routes.map((r) => [r.Properties.RouteKey, r.Properties]));
    expect(Object.keys(byKey).sort()).toEqual(['$connect', '$default', '$disconnect']);
    expect(byKey.$connect.AuthorizationType).toBe('CUSTOM');
  });

  it('deploys a stage named after the deployment stage, logged and throttled', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      ApiId: { Ref: wsApiId },
      StageName: 'dev',
      AutoDeploy: true,
      DefaultRouteSettings: Match.objectLike({ ThrottlingRateLimit: 100 }),
      AccessLogSettings: Match.objectLike({ Format: Match.stringLikeRegexp('connectionId') }),
    });
  });

  it('lets exactly the functions that post to or close connections do so, with the callback URL', () => {
    const publishers = labels().filter((label) => declares(label, 'connections'));
    // auth closes the sockets of a session that ends or of a user whose rights change; the live feed
    // sends the events of task and run changes, so the functions that change tasks and runs post nothing
    // themselves (the worker still streams a running task's output).
    for (const required of ['auth', 'worker', 'live-feed', 'ws-message']) {
      expect(publishers).toContain(required);
    }
    for (const never of ['providers', 'tasks', 'sweeper', 'dead-letter', 'workflows', 'workflow-engine', 'schedule-fire']) expect(publishers).not.toContain(never);
    for (const label of labels()) {
      const can = actionsOf(label).includes('execute-api:ManageConnections');
      expect(can, label).toBe(publishers.includes(label));
      expect('WS_MANAGEMENT_ENDPOINT' in env(label), label).toBe(can);
      if (can) {
        expect(JSON.stringify(env(label).WS_MANAGEMENT_ENDPOINT)).toMatch(/"https:\/\/".*\/dev"\]\]\}$/);
        expect(JSON.stringify(statementFor(label, 'execute-api:ManageConnections')!.Resource)).toContain('/dev/*/@connections/*');
      }
    }
  });
});

describe('events, keys and secrets', () => {
  it('has the stage event bus: exactly the functions declaring events: publish put events, health only describes it', () => {
    template.hasResourceProperties('AWS::Events::EventBus', { Name: 'supervisor-dev' });
    for (const label of labels()) {
      const mode = (FUNCTION_PORTS as Record<string, { events?: string }>)[label]?.events;
      expect(actionsOf(label).includes('events:PutEvents'), label).toBe(mode === 'publish');
      expect(actionsOf(label).includes('events:DescribeEventBus'), label).toBe(mode !== undefined);
      expect('EVENT_BUS_NAME' in env(label), label).toBe(mode !== undefined);
    }
    expect((FUNCTION_PORTS as Record<string, { events?: string }>).health.events).toBe('check');
  });

  it('routes the stage bus to the plugin delivery function, and runs its retries every minute', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: Match.anyValue(),
      EventPattern: { source: ['supervisor'] },
      Targets: Match.arrayWith([Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PluginDeliveryFunction'), 'Arn'] } })]),
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: Match.arrayWith([Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PluginDeliveryFunction'), 'Arn'] } })]),
    });
    expect(actionsOf('plugin-delivery')).toContain('ses:SendEmail');
    expect(actionsOf('plugin-delivery')).not.toContain('events:PutEvents');
  });

  it('has an ECC P-256 signing key: auth signs, every API function but docs and the ws authorizer read the public key', () => {
    template.hasResourceProperties('AWS::KMS::Key', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    expect(actionsOf('docs').some((a) => a.startsWith('kms:'))).toBe(false);
    expect(env('docs')).not.toHaveProperty('SIGNING_KEY_ID');
    for (const label of [...API_GROUPS.filter((g) => g !== 'docs'), 'ws-authorizer']) {
      expect(actionsOf(label), label).toContain('kms:GetPublicKey');
      expect(actionsOf(label).includes('kms:Sign'), label).toBe(label === 'auth');
      expect(env(label)).toHaveProperty('SIGNING_KEY_ID');
    }
    expect(actionsOf('worker').some((a) => a.startsWith('kms:'))).toBe(false);
  });

  it('lets the API functions that page lists read the app secret; health and docs do not', () => {
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: { 'Fn::Join': ['', ['supervisor/dev/app-', Match.objectLike({ 'Fn::Select': Match.anyValue() })]] },
      GenerateSecretString: Match.objectLike({ PasswordLength: 64 }),
    });
    for (const label of API_GROUPS) {
      const reads = !['health', 'docs'].includes(label);
      expect(statementFor(label, 'secretsmanager:GetSecretValue') !== undefined, label).toBe(reads);
      expect('APP_SECRET_ARN' in env(label), label).toBe(reads);
    }
  });

  it('lets the worker and providers invoke Bedrock models and inference profiles, and no other function', () => {
    for (const label of labels()) {
      const invoke = statementFor(label, 'bedrock:InvokeModel');
      expect(invoke !== undefined, label).toBe(['worker', 'providers'].includes(label));
      if (!invoke) continue;
      expect(invoke.Action).toEqual(['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream']);
      const resources = JSON.stringify(invoke.Resource);
      expect(resources).toContain(':bedrock:*::foundation-model/*');
      expect(resources).toContain(':bedrock:eu-west-1:123456789012:inference-profile/*');
    }
  });

  it('narrows Bedrock to the ARNs of the bedrockModelArns setting', () => {
    const arn = 'arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0';
    const narrowed = Template.fromStack(buildStack({ bedrockModelArns: [arn] }).stack);
    const invoke = Object.values(narrowed.findResources('AWS::IAM::Policy'))
      .flatMap((p) => (p as Resource).Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>)
      .filter((st) => JSON.stringify(st.Action).includes('bedrock:InvokeModel'));
    expect(invoke).toHaveLength(2);
    for (const st of invoke) expect(st.Resource).toBe(arn);
  });

  it('scopes provider secrets to the stage prefix: providers manage them, the worker reads them', () => {
    const prefix = 'supervisor/dev/providers/';
    for (const label of ['providers', 'worker']) {
      expect(env(label).SECRET_PREFIX).toBe(prefix);
      const resource = JSON.stringify(statementFor(label, 'secretsmanager:GetSecretValue')!.Resource);
      if (label === 'worker') expect(resource).toContain(`:secret:${prefix}*`);
    }
    const manage = statementFor('providers', 'secretsmanager:CreateSecret')!;
    expect(manage.Action).toEqual(
      expect.arrayContaining(['secretsmanager:CreateSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue', 'secretsmanager:DeleteSecret']),
    );
    expect(JSON.stringify(manage.Resource)).toContain(`:secret:${prefix}*`);
    expect(actionsOf('worker')).not.toContain('secretsmanager:CreateSecret');
    expect(actionsOf('workflows')).not.toContain('secretsmanager:CreateSecret');
  });

  it('lets the tasks function, which serves the agents routes, store and remove agent API keys under the prefix', () => {
    // createAgent / updateAgent / deleteAgent (group `tasks`) call deps.secrets.put/remove.
    expect(agentRoutes.filter((r) => r.method !== 'GET').every((r) => r.group === 'tasks')).toBe(true);
    const prefix = 'supervisor/dev/providers/';
    expect(env('tasks').SECRET_PREFIX).toBe(prefix);
    const manage = statementFor('tasks', 'secretsmanager:CreateSecret')!;
    expect(manage.Action).toEqual(
      expect.arrayContaining(['secretsmanager:CreateSecret', 'secretsmanager:PutSecretValue', 'secretsmanager:DeleteSecret', 'secretsmanager:RestoreSecret']),
    );
    expect(JSON.stringify(manage.Resource)).toContain(`:secret:${prefix}*`);
  });
});

describe('docs function', () => {
  it('serves the Swagger UI files copied into its bundle', () => {
    expect(env('docs').DOCS_ASSETS_DIR).toBe(DOCS_ASSETS_DIR);
    const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
    for (const file of DOCS_ASSET_FILES) expect(existsSync(join(dist, file)), file).toBe(true);
  });
});

describe('functions', () => {
  it('bundle for the Lambda runtime they run on (esbuild target = runtime version)', () => {
    expect(LAMBDA_RUNTIME.name).toBe('nodejs22.x');
    expect(BUNDLE_TARGET).toBe('node22');
  });

  it('are Node.js on arm64 with active tracing, explicit memory/timeout and their own log group', () => {
    expect(Object.keys(functions)).toHaveLength(API_GROUPS.length + BACKGROUND_ENTRIES.length - 1 + 4);
    for (const f of Object.values(functions)) {
      expect(f.Properties).toMatchObject({
        Architectures: ['arm64'],
        Runtime: 'nodejs22.x',
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogGroup: { Ref: expect.any(String) } },
      });
      expect(f.Properties.MemorySize).toBeGreaterThanOrEqual(512);
      // TABLE_NAME only where the table is declared (not docs)
      const label = (f.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME as string).slice(11);
      expect(f.Properties.Environment.Variables).toMatchObject({ STAGE: 'dev', ...(label === 'docs' ? {} : { TABLE_NAME: { Ref: expect.any(String) } }) });
      expect(f.Properties.Handler).toMatch(/^index\.(handler|authorizer|connect|disconnect|message)$/);
    }
  });

  it('use the timeouts of their role: API 29 s, worker 900 s, engine 60 s', () => {
    for (const g of API_GROUPS) expect(functions[fnId(g)].Properties.Timeout, g).toBe(29);
    expect(functions[fnId('worker')].Properties.Timeout).toBe(900);
    expect(functions[fnId('workflow-engine')].Properties.Timeout).toBe(60);
  });

  it('keep logs 1 month in dev and 1 year in prod', () => {
    for (const g of Object.values(resources('AWS::Logs::LogGroup'))) expect(g.Properties.RetentionInDays).toBe(30);
    for (const g of Object.values(resources('AWS::Logs::LogGroup', prodTemplate))) expect(g.Properties.RetentionInDays).toBe(365);
  });

  it('have roles without managed policies, writing only to their own log group', () => {
    for (const id of Object.keys(functions)) {
      const roleId = functions[id].Properties.Role['Fn::GetAtt'][0];
      expect(resources('AWS::IAM::Role')[roleId].Properties.ManagedPolicyArns).toBeUndefined();
    }
    const logs = statementFor('tasks', 'logs:PutLogEvents')!;
    expect(logs.Resource).toEqual({ 'Fn::GetAtt': [functions[fnId('tasks')].Properties.LoggingConfig.LogGroup.Ref, 'Arn'] });
  });

  it('read and write the table (and its GSIs) without Scan; health and the ws authorizer read only; docs has no table', () => {
    for (const label of ['tasks', 'worker', 'sweeper', 'ws-connect']) {
      const s = statementFor(label, 'dynamodb:PutItem')!;
      expect(JSON.stringify(s.Resource)).toContain('/index/gsi3');
    }
    for (const label of ['health', 'ws-authorizer']) {
      expect(actionsOf(label)).toContain('dynamodb:Query');
      expect(actionsOf(label)).not.toContain('dynamodb:PutItem');
    }
    expect(actionsOf('docs').some((a) => a.startsWith('dynamodb:'))).toBe(false);
    expect(env('docs')).not.toHaveProperty('TABLE_NAME');
    for (const label of labels()) {
      expect(actionsOf(label)).not.toContain('dynamodb:Scan');
      // its Deps hold only the ports FUNCTION_PORTS declares for this label
      expect(env(label).SUPERVISOR_FUNCTION, label).toBe(label);
    }
  });
});

describe('IAM', () => {
  /** Actions whose service has no resource-level permissions (X-Ray; Step Functions' CloudWatch log delivery). */
  const STAR_ALLOWED = new Set([
    // SES has no resource-level permission for the account's sending status (the email plugin's health check).
    'ses:GetAccount',
    // A stream event source mapping's role needs ListStreams, which has no resource-level permission.
    'dynamodb:ListStreams',
    'xray:PutTraceSegments',
    'xray:PutTelemetryRecords',
    'xray:GetSamplingRules',
    'xray:GetSamplingTargets',
    'logs:CreateLogDelivery',
    'logs:GetLogDelivery',
    'logs:UpdateLogDelivery',
    'logs:DeleteLogDelivery',
    'logs:ListLogDeliveries',
    'logs:PutResourcePolicy',
    'logs:DescribeResourcePolicies',
    'logs:DescribeLogGroups',
  ]);

  it('has no statement on Resource "*" except for actions that require it', () => {
    for (const [id, policy] of Object.entries(resources('AWS::IAM::Policy'))) {
      for (const s of policy.Properties.PolicyDocument.Statement) {
        const res = Array.isArray(s.Resource) ? s.Resource : [s.Resource];
        if (!res.includes('*')) continue;
        const actions: string[] = Array.isArray(s.Action) ? s.Action : [s.Action];
        for (const a of actions) expect(STAR_ALLOWED.has(a), `${id}: ${a} on "*"`).toBe(true);
      }
    }
  });

  it('has no wildcard action', () => {
    for (const policy of Object.values(resources('AWS::IAM::Policy'))) {
      for (const s of policy.Properties.PolicyDocument.Statement) {
        const actions: string[] = Array.isArray(s.Action) ? s.Action : [s.Action];
        for (const a of actions) expect(a).not.toContain('*');
      }
    }
  });
});

describe('outputs', () => {
  it('exports the API URLs, table, queue and state machine', () => {
    for (const name of ['HttpApiUrl', 'WebSocketUrl', 'TableName', 'TaskQueueUrl', 'StateMachineArn']) {
      template.hasOutput(name, {});
    }
  });
});

describe('audit retry', () => {
  it('gives every audited API function AUDIT_QUEUE_URL and SendMessage on the audit retry queue, consumed by audit-retry; its DLQ alarms', () => {
    const queues = resources('AWS::SQS::Queue');
    const retryId = Object.keys(queues).find((id) => id.startsWith('AuditRetryQueue'))!;
    const dlqId = Object.keys(queues).find((id) => id.startsWith('AuditDeadLetterQueue'))!;
    expect(retryId).toBeDefined();
    expect(queues[retryId].Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0]).toBe(dlqId);
    for (const label of ['tasks', 'workflows', 'providers', 'auth']) {
      expect(JSON.stringify(env(label).AUDIT_QUEUE_URL), label).toContain(retryId);
      expect(actionsOf(label), label).toContain('sqs:SendMessage');
    }
    expect(env('worker')).not.toHaveProperty('AUDIT_QUEUE_URL');
    const mappings = Object.values(resources('AWS::Lambda::EventSourceMapping')).filter((m) => JSON.stringify(m.Properties.EventSourceArn).includes(retryId));
    expect(mappings).toHaveLength(1);
    expect(mappings[0].Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    const alarms = Object.values(resources('AWS::CloudWatch::Alarm')).filter((a) => JSON.stringify(a.Properties.Dimensions ?? []).includes(dlqId));
    expect(alarms).toHaveLength(1);
    expect(alarms[0].Properties).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', MetricName: 'ApproximateNumberOfMessagesVisible' });
    expect(JSON.stringify(alarms[0].Properties.AlarmActions)).toContain('AlarmTopic');
  });
});
