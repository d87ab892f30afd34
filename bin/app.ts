/**
 * The CDK app (cdk.json runs it with tsx). One stack per stage: `npx cdk deploy -c stage=prod`.
 *
 * Context: `stage` (dev), `corsOrigins` (comma-separated, default `*`), `allowRegistration`
 * (true|false, default: the code's default), `apiGatewayAccountRole` (true|false, default true),
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

new SupervisorStack(app, `Supervisor-${config.stage}`, {
  stageConfig: config,
  routes: ROUTES,
  createApiGatewayAccountRole: context('apiGatewayAccountRole') !== 'false',
  bedrockModelArns: context('bedrockModelArns')?.split(',').map((arn) => arn.trim()).filter(Boolean),
  alarmEmail: context('alarmEmail'),
  description: `Supervisor control plane for AI coding agents (${config.stage})`,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  tags: { project: 'supervisor', stage: config.stage },
});

addNagPacks(app);
