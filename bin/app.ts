/**
 * The CDK app (cdk.json runs it with tsx). One stack per stage, plus `Supervisor-account` once per
 * account and region: `npx cdk deploy --all -c stage=prod`.
 *
 * Context: `stage` (dev), `corsOrigins` (comma-separated, default `*`), `allowRegistration`
 * (true|false, default: the code's default), `apiGatewayAccountRole` (true|false, default true: the
 * `Supervisor-account` stack holds API Gateway's account-level logging role, shared by every stage),
 * `bedrockModelArns` (comma-separated model / inference-profile ARNs the providers and the worker may
 * invoke; default: every foundation model and the account's inference profiles in the region),
 * `productionStages` (comma-separated stages with production settings, default `prod`) or `production`
 * (true|false for this stage, whatever its name), `workerReservedConcurrency` (default 20, `none` for
 * no reservation), `alarmEmail` (an address the alarm topic mails). See docs/deploy.md.
 * cdk-nag's AwsSolutions and Serverless packs run at synth; an unacknowledged finding fails it.
 */
import { App } from 'aws-cdk-lib';
import { ROUTES } from '../shared/routes.js';
import { addNagPacks } from '../lib/nag.js';
import { stageConfig } from '../lib/stage.js';
import { SupervisorStack } from '../lib/supervisor-stack.js';
import { ACCOUNT_STACK_ID, SupervisorAccountStack } from '../lib/account-stack.js';

const app = new App();
const context = (key: string): string | undefined => {
  const value: unknown = app.node.tryGetContext(key);
  return value === undefined || value === null ? undefined : String(value);
};

const config = stageConfig({
  stage: context('stage'),
  corsOrigins: context('corsOrigins'),
  allowRegistration: context('allowRegistration'),
  production: context('production'),
  productionStages: context('productionStages'),
  workerReservedConcurrency: context('workerReservedConcurrency'),
});

const env = { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION };
// API Gateway's account-level logging role lives in a stack of its own, shared by every stage.
const accountStack =
  context('apiGatewayAccountRole') === 'false'
    ? undefined
    : new SupervisorAccountStack(app, ACCOUNT_STACK_ID, {
        env,
        description: 'Supervisor: account-level settings shared by every stage (API Gateway logging role)',
        tags: { project: 'supervisor' },
      });

const stageStack = new SupervisorStack(app, `Supervisor-${config.stage}`, {
  stageConfig: config,
  routes: ROUTES,
  createApiGatewayAccountRole: false,
  bedrockModelArns: context('bedrockModelArns')?.split(',').map((arn) => arn.trim()).filter(Boolean),
  alarmEmail: context('alarmEmail'),
  description: `Supervisor control plane for AI coding agents (${config.stage})`,
  env,
  tags: { project: 'supervisor', stage: config.stage },
});
if (accountStack) stageStack.addStackDependency(accountStack);

addNagPacks(app);
