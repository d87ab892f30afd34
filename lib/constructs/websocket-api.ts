import { RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat, CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import { LogGroupLogDestination, WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge } from '../nag.js';
import type { StageConfig } from '../stage.js';
import { stageLogGroup } from './observability.js';

export const WS_ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  eventType: '$context.eventType',
  routeKey: '$context.routeKey',
  connectionId: '$context.connectionId',
  status: '$context.status',
  latency: '$context.integrationLatency',
  authorizeError: '$context.authorize.error',
  integrationError: '$context.integrationErrorMessage',
} as const;

/**
 * The account-level CloudWatch Logs role of API Gateway (one per account and region), which WebSocket
 * (unlike HTTP API) stage logging needs. Retained: other stages and APIs of the account use it too.
 * `bin/app.ts` makes it once, in the `Supervisor-account` stack, so that stages do not overwrite it.
 */
export function apiGatewayAccountLogsRole(scope: Construct): CfnAccount {
  const role = new Role(scope, 'ApiGatewayLogsRole', {
    assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
    managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
    description: 'API Gateway account-level role to write CloudWatch Logs (WebSocket access logs)',
  });
  role.applyRemovalPolicy(RemovalPolicy.RETAIN);
  const account = new CfnAccount(scope, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
  account.applyRemovalPolicy(RemovalPolicy.RETAIN);
  acknowledge(
    role,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
    'The account-level API Gateway logging role uses the AWS-maintained AmazonAPIGatewayPushToCloudWatchLogs policy, ' +
      'which AWS documents for exactly this role; it serves every API of the account/region, so it cannot be scoped to our log groups.',
  );
  return account;
}

/** Query-string parameter carrying the access token at `$connect`. */
export const WS_TOKEN_IDENTITY_SOURCE = 'route.request.querystring.token';

export interface SupervisorWebSocketApiProps {
  readonly stageConfig: StageConfig;
  /**
   * Create the account-level API Gateway CloudWatch Logs role (`AWS::ApiGateway::Account`) that
   * WebSocket access logging requires. Turn off when the account already has one managed elsewhere.
   */
  readonly createAccountLogsRole: boolean;
}

export interface WebSocketHandlers {
  readonly authorizer: IFunction;
  readonly connect: IFunction;
  readonly disconnect: IFunction;
  readonly message: IFunction;
}

/**
 * The WebSocket API and its stage (named after the deployment stage, auto-deployed, throttled,
 * with JSON access logs). Routes are added by `addHandlers` once the functions exist, because the
 * functions need the stage's callback URL first.
 */
export class SupervisorWebSocketApi extends Construct {
  readonly api: WebSocketApi;
  readonly stage: WebSocketStage;
  readonly accessLogGroup: LogGroup;

  constructor(scope: Construct, id: string, props: SupervisorWebSocketApiProps) {
    super(scope, id);
    const { stageConfig } = props;
    this.api = new WebSocketApi(this, 'Api', {
      apiName: `supervisor-${stageConfig.stage}-ws`,
      description: `Supervisor ${stageConfig.stage} WebSocket API`,
    });
    this.accessLogGroup = stageLogGroup(this, 'AccessLogs', stageConfig);
    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName: stageConfig.stage,
      autoDeploy: true,
      throttle: stageConfig.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogGroup),
        format: AccessLogFormat.custom(JSON.stringify(WS_ACCESS_LOG_FIELDS)),
      },
    });

    if (props.createAccountLogsRole) this.stage.node.addDependency(apiGatewayAccountLogsRole(this));
  }

  /** Adds `$connect` (behind the Lambda authorizer), `$disconnect` and `$default`. */
  addHandlers(handlers: WebSocketHandlers): void {
    const authorizer = new WebSocketLambdaAuthorizer('TokenAuthorizer', handlers.authorizer, {
      identitySource: [WS_TOKEN_IDENTITY_SOURCE],
    });
    this.api.addRoute('$connect', {
      integration: new WebSocketLambdaIntegration('ConnectIntegration', handlers.connect),
      authorizer,
    });
    const disconnect = this.api.addRoute('$disconnect', {
      integration: new WebSocketLambdaIntegration('DisconnectIntegration', handlers.disconnect),
    });
    const message = this.api.addRoute('$default', {
      integration: new WebSocketLambdaIntegration('DefaultIntegration', handlers.message),
    });
    const reason =
      'API Gateway only runs WebSocket authorizers on $connect; $disconnect and $default messages belong to a ' +
      'connection that was authorized at $connect (the token is verified there), and the message handler checks ' +
      'the connection\'s stored permissions before subscribing it to a channel.';
    acknowledge(disconnect, 'AwsSolutions-APIG4', reason);
    acknowledge(message, 'AwsSolutions-APIG4', reason);
  }

  /** `wss://…/<stage>` */
  get url(): string {
    return this.stage.url;
  }
}
