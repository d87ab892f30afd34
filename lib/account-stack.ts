import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { apiGatewayAccountLogsRole } from './constructs/websocket-api.js';

/** The stack that holds what is one per account and region, not one per stage. */
export const ACCOUNT_STACK_ID = 'Supervisor-account';

/**
 * What belongs to the account and region rather than to a stage: API Gateway's account-level
 * CloudWatch Logs role (`AWS::ApiGateway::Account`), which WebSocket stage logging needs. Every stage
 * stack depends on this one stack instead of setting the account's role itself, so deploying (or
 * deleting) one stage never overwrites what another relies on. Its resources are retained.
 */
export class SupervisorAccountStack extends Stack {
  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    apiGatewayAccountLogsRole(this);
  }
}
