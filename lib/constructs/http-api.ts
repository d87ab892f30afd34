import { Duration } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { CorsHttpMethod, HttpApi, HttpMethod, HttpStage, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { FunctionGroup } from '../../shared/platform/api/route.js';
import { acknowledge } from '../nag.js';
import type { ApiRoute } from '../routes.js';
import type { StageConfig } from '../stage.js';
import { stageLogGroup } from './observability.js';

/** Access log line of the HTTP API's stage (one JSON object per request). */
export const HTTP_ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  httpMethod: '$context.httpMethod',
  routeKey: '$context.routeKey',
  path: '$context.path',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  latency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  userAgent: '$context.identity.userAgent',
} as const;

export interface SupervisorHttpApiProps {
  readonly stageConfig: StageConfig;
  readonly routes: readonly ApiRoute[];
  /** The Lambda of each group that owns routes. */
  readonly functions: ReadonlyMap<FunctionGroup, IFunction>;
}

/**
 * The HTTP API: one route per route-table entry (and alias), each integrated with its group's
 * Lambda, a `$default` stage with JSON access logs and default-route throttling, and CORS preflight.
 * Routes carry no API Gateway authorizer: each Lambda verifies the bearer JWT and enforces the
 * route's permission from the route table.
 */
export class SupervisorHttpApi extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly accessLogGroup: LogGroup;

  constructor(scope: Construct, id: string, props: SupervisorHttpApiProps) {
    super(scope, id);
    const { stageConfig } = props;

    this.api = new HttpApi(this, 'Api', {
      apiName: `supervisor-${stageConfig.stage}`,
      description: `Supervisor ${stageConfig.stage} HTTP API`,
      createDefaultStage: false,
      corsPreflight: {
        allowOrigins: stageConfig.corsOrigins,
        allowMethods: [
          CorsHttpMethod.GET,
          CorsHttpMethod.POST,
          CorsHttpMethod.PUT,
          CorsHttpMethod.PATCH,
          CorsHttpMethod.DELETE,
          CorsHttpMethod.OPTIONS,
        ],
        allowHeaders: ['authorization', 'content-type', 'idempotency-key', 'x-request-id'],
        exposeHeaders: ['retry-after', 'x-request-id', 'idempotent-replayed'],
        maxAge: Duration.hours(1),
      },
    });

    this.accessLogGroup = stageLogGroup(this, 'AccessLogs', stageConfig);
    this.stage = this.api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: stageConfig.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogGroup),
        format: AccessLogFormat.custom(JSON.stringify(HTTP_ACCESS_LOG_FIELDS)),
      },
    });

    const integrations = new Map<FunctionGroup, HttpLambdaIntegration>();
    for (const route of props.routes) {
      const fn = props.functions.get(route.group);
      if (!fn) throw new Error(`route ${route.routeKey}: no function for group "${route.group}"`);
      let integration = integrations.get(route.group);
      if (!integration) {
        // One API-scoped invoke permission per function: a per-route permission would overflow
        // the Lambda resource policy (20 KB) for groups with many routes.
        integration = new HttpLambdaIntegration(`${route.group}Integration`, fn, { scopePermissionToRoute: false });
        integrations.set(route.group, integration);
      }
      this.api.addRoutes({ path: route.path, methods: [HttpMethod[route.method]], integration });
    }

    acknowledge(
      this,
      'AwsSolutions-APIG4',
      'Authorization happens in each Lambda: the bearer access token (ES256 JWT signed by KMS) is verified with ' +
        'aws-jwt-verify and the permission the route table declares for the route is enforced there; public routes ' +
        '(login, register, refresh, health, OpenAPI, docs) have permission null in the route table.',
    );
  }

  get url(): string {
    return this.stage.url;
  }
}
