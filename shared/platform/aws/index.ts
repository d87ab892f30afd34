/**
 * The AWS side of the ports: `createAwsDeps` builds the `Deps` a Lambda handler needs from the
 * configuration the CDK stack sets (`config.aws`, variable names in `ENV` of shared/platform/config.ts).
 * Nothing is contacted and no SDK module is loaded until a port is used; a port whose environment
 * variable is missing throws a clear error when it is used, not when the deps are built (a function
 * only gets the variables of the ports it may use).
 */
import { ENV, type Config } from '../config.js';
import type {
  Clock,
  Connections,
  EventBus,
  Jwk,
  ScheduleService,
  SecretStore,
  TaskQueue,
  TokenSigner,
  WorkflowRunner,
} from '../ports.js';
import type { Deps } from '../runtime.js';
import type { Store } from '../store/client.js';
import { ApiGatewayConnections } from './connections.js';
import { EventBridgeBus } from './event-bus.js';
import { SqsTaskQueue } from './queue.js';
import { SchedulerService } from './scheduler.js';
import { SecretsManagerStore } from './secret-store.js';
import { KmsTokenSigner } from './token-signer.js';
import { lazy } from './util.js';
import { StepFunctionsRunner } from './workflows.js';

export { ApiGatewayConnections } from './connections.js';
export { derToJose, joseToDer } from './ecdsa.js';
export { EventBridgeBus, EVENT_SOURCE } from './event-bus.js';
export { SqsTaskQueue, clampDelaySeconds } from './queue.js';
export { SchedulerService, type SchedulerServiceOptions } from './scheduler.js';
export { SecretsManagerStore } from './secret-store.js';
export { KmsTokenSigner, kidForKeyId } from './token-signer.js';
export { StepFunctionsRunner } from './workflows.js';

export class MissingEnvError extends Error {
  constructor(readonly variable: string, port: string) {
    super(`${port} is not configured for this function: environment variable ${variable} is not set`);
    this.name = 'MissingEnvError';
  }
}

function need(value: string | undefined, variable: string, port: string): string {
  if (value === undefined || value === '') throw new MissingEnvError(variable, port);
  return value;
}

/** Builds once, on first use; a failed build (missing variable) is retried on the next use. */
function once<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= build());
}

export function createAwsDeps(config: Config, store: Store, clock: Clock): Deps {
  const ports = config.aws;

  const queue = once(() => new SqsTaskQueue(need(ports.taskQueueUrl, ENV.taskQueueUrl, 'TaskQueue')));
  const scheduler = once(
    () =>
      new SchedulerService({
        groupName: need(ports.scheduleGroup, ENV.scheduleGroup, 'ScheduleService'),
        roleArn: need(ports.schedulerRoleArn, ENV.schedulerRoleArn, 'ScheduleService'),
        targetArn: need(ports.scheduleTargetArn, ENV.scheduleTargetArn, 'ScheduleService'),
        deadLetterArn: need(ports.scheduleDlqArn, ENV.scheduleDlqArn, 'ScheduleService'),
      }),
  );
  const workflows = once(() => new StepFunctionsRunner(need(ports.stateMachineArn, ENV.stateMachineArn, 'WorkflowRunner')));
  const connections = once(() => new ApiGatewayConnections(need(ports.wsManagementEndpoint, ENV.wsManagementEndpoint, 'Connections')));
  const events = once(() => new EventBridgeBus(need(ports.eventBusName, ENV.eventBusName, 'EventBus')));
  const secrets = once(() => new SecretsManagerStore(need(ports.secretPrefix, ENV.secretPrefix, 'SecretStore')));
  const signer = once(() => new KmsTokenSigner(need(ports.signingKeyId, ENV.signingKeyId, 'TokenSigner'), config.issuer));

  const queuePort: TaskQueue = {
    send: async (body, options) => queue().send(body, options),
    check: async () => queue().check(),
  };
  const schedulerPort: ScheduleService = {
    upsert: async (schedule) => scheduler().upsert(schedule),
    remove: async (name) => scheduler().remove(name),
    check: async () => scheduler().check(),
  };
  const workflowsPort: WorkflowRunner = {
    start: async (name, input) => workflows().start(name, input),
    stop: async (runId, cause) => workflows().stop(runId, cause),
    describe: async (runId) => workflows().describe(runId),
    sendTaskSuccess: async (token, output) => workflows().sendTaskSuccess(token, output),
    sendTaskFailure: async (token, error, cause) => workflows().sendTaskFailure(token, error, cause),
    check: async () => workflows().check(),
  };
  const connectionsPort: Connections = {
    post: async (connectionId, data) => connections().post(connectionId, data),
    close: async (connectionId, close) => connections().close(connectionId, close),
  };
  const eventsPort: EventBus = {
    publish: async (detailType, detail) => events().publish(detailType, detail),
    check: async () => events().check(),
  };
  const secretsPort: SecretStore = {
    put: async (name, value) => secrets().put(name, value),
    get: async (ref) => secrets().get(ref),
    remove: async (ref) => secrets().remove(ref),
  };
  const signerPort: TokenSigner = {
    algorithm: 'ES256',
    sign: async (claims) => signer().sign(claims),
    jwks: async (): Promise<{ keys: Jwk[] }> => signer().jwks(),
  };

  const appSecret = lazy(async () => {
    const arn = need(ports.appSecretArn, ENV.appSecretArn, 'appSecret');
    const mod = await import('@aws-sdk/client-secrets-manager');
    const out = await new mod.SecretsManagerClient({}).send(new mod.GetSecretValueCommand({ SecretId: arn }));
    if (out.SecretBinary !== undefined) return Buffer.from(out.SecretBinary);
    if (out.SecretString !== undefined && out.SecretString !== '') return Buffer.from(out.SecretString, 'utf8');
    throw new Error(`app secret ${arn} has no value`);
  });

  return {
    config,
    store,
    queue: queuePort,
    scheduler: schedulerPort,
    workflows: workflowsPort,
    connections: connectionsPort,
    events: eventsPort,
    secrets: secretsPort,
    signer: signerPort,
    clock,
    appSecret,
  };
}
