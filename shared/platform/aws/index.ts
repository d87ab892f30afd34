/**
 * The AWS side of the ports: `createAwsDeps` builds the `Deps` a Lambda handler needs from the
 * configuration the CDK stack sets (`config.aws`, variable names in `ENV` of shared/platform/config.ts).
 * Nothing is contacted and no SDK module is loaded until a port is used; a port whose environment
 * variable is missing throws a clear error when it is used, not when the deps are built (a function
 * only gets the variables of the ports it may use).
 */
import { ENV, type Config } from '../config.js';
import { DEPS_PORTS, portsOf, type DepsPort, type FunctionPorts } from '../infra.js';
import type {
  Clock,
  Connections,
  EventBus,
  FileShare,
  MailSender,
  Jwk,
  ScheduleService,
  SecretStore,
  TaskQueue,
  TokenSigner,
  WorkerScaling,
  WorkflowRunner,
} from '../ports.js';
import type { Deps } from '../runtime.js';
import type { Store } from '../store/client.js';
import { ApiGatewayConnections } from './connections.js';
import { EventBridgeBus } from './event-bus.js';
import { SesMailSender } from './mail.js';
import { S3FileShare } from './file-share.js';
import { SqsTaskQueue } from './queue.js';
import { SchedulerService } from './scheduler.js';
import { SecretsManagerStore } from './secret-store.js';
import { KmsTokenSigner } from './token-signer.js';
import { lazy } from './util.js';
import { StepFunctionsRunner } from './workflows.js';
import { EventSourceMappingScaling } from './worker-scaling.js';

export { ApiGatewayConnections } from './connections.js';
export { derToJose, joseToDer } from './ecdsa.js';
export { EventBridgeBus, EVENT_SOURCE } from './event-bus.js';
export { SqsTaskQueue, clampDelaySeconds } from './queue.js';
export { SchedulerService, type SchedulerServiceOptions } from './scheduler.js';
export { SecretsManagerStore } from './secret-store.js';
export { S3FileShare } from './file-share.js';
export { KmsTokenSigner, kidForKeyId } from './token-signer.js';
export { StepFunctionsRunner } from './workflows.js';
export { EventSourceMappingScaling } from './worker-scaling.js';

export class MissingEnvError extends Error {
  constructor(readonly variable: string, port: string) {
    super(`${port} is not configured for this function: environment variable ${variable} is not set`);
    this.name = 'MissingEnvError';
  }
}

/** A port the function's entry in `FUNCTION_PORTS` does not declare: it has neither the grant nor the configuration. */
export class UndeclaredPortError extends Error {
  constructor(readonly port: string, readonly functionLabel: string) {
    super(`function "${functionLabel}" does not declare the ${port} port (FUNCTION_PORTS in shared/platform/infra.ts), so it has no grant or configuration for it`);
    this.name = 'UndeclaredPortError';
  }
}

/**
 * Replaces each port the function does not declare with one whose every call throws an
 * `UndeclaredPortError` (a rejected promise for the async methods), so the mistake is reported at
 * the call, with the port's and the function's names, instead of as an access-denied from AWS.
 */
export function restrictToDeclared(deps: Deps, functionLabel: string | undefined): Deps {
  if (functionLabel === undefined) return deps;
  const ports = portsOf(functionLabel);
  const declared = (port: DepsPort): boolean => ports[port] !== undefined;
  const restricted: Deps = { ...deps };
  for (const port of DEPS_PORTS) {
    if (port === 'workflows') {
      restricted.workflows = restrictWorkflows(deps.workflows, ports, functionLabel);
      continue;
    }
    if (declared(port)) continue;
    const fail = () => Promise.reject(new UndeclaredPortError(port, functionLabel));
    if (port === 'appSecret') restricted.appSecret = fail;
    else {
      (restricted as unknown as Record<string, unknown>)[port] = new Proxy(
        {},
        {
          get: (_target, method) => {
            if (method === 'then') return undefined;
            if (port === 'signer' && method === 'algorithm') return deps.signer.algorithm;
            return fail;
          },
        },
      );
    }
  }
  return restricted;
}

const STEP_CALLBACKS = new Set<string | symbol>(['sendTaskSuccess', 'sendTaskFailure']);

/** The state machine port serves two declarations: `workflows` (describe, start, stop) and `stepCallbacks`. */
function restrictWorkflows(runner: WorkflowRunner, ports: FunctionPorts, functionLabel: string): WorkflowRunner {
  if (ports.workflows !== undefined && ports.stepCallbacks !== undefined) return runner;
  return new Proxy(runner, {
    get: (target, method, receiver) => {
      if (method === 'then') return undefined;
      const callback = STEP_CALLBACKS.has(method);
      if (callback ? ports.stepCallbacks !== undefined : ports.workflows !== undefined) return Reflect.get(target, method, receiver) as unknown;
      return () => Promise.reject(new UndeclaredPortError(callback ? 'stepCallbacks' : 'workflows', functionLabel));
    },
  });
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
  const audits = once(() => new SqsTaskQueue(need(ports.auditQueueUrl, ENV.auditQueueUrl, 'AuditQueue')));
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
  const mail = once(() => new SesMailSender());
  const files = once(() => new S3FileShare(need(ports.exportBucket, ENV.exportBucket, 'FileShare')));
  const signer = once(() => new KmsTokenSigner(need(ports.signingKeyId, ENV.signingKeyId, 'TokenSigner'), config.issuer));
  const scaling = once(
    () => new EventSourceMappingScaling(need(ports.workerEventSourceMappingId, ENV.workerEventSourceMappingId, 'WorkerScaling'), ports.workerReservedConcurrency),
  );

  const queuePort: TaskQueue = {
    send: async (body, options) => queue().send(body, options),
    check: async () => queue().check(),
  };
  const auditQueuePort: TaskQueue = {
    send: async (body, options) => audits().send(body, options),
    check: async () => audits().check(),
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
  const mailPort: MailSender = {
    send: async (message) => mail().send(message),
    check: async () => mail().check(),
  };
  const filesPort: FileShare = {
    put: async (file) => files().put(file),
  };
  const signerPort: TokenSigner = {
    algorithm: 'ES256',
    sign: async (claims) => signer().sign(claims),
    jwks: async (): Promise<{ keys: Jwk[] }> => signer().jwks(),
  };

  const workerScalingPort: WorkerScaling = {
    setMaxConcurrency: async (tasks) => scaling().setMaxConcurrency(tasks),
  };

  const appSecret = lazy(async () => {
    const arn = need(ports.appSecretArn, ENV.appSecretArn, 'appSecret');
    const mod = await import('@aws-sdk/client-secrets-manager');
    const out = await new mod.SecretsManagerClient({}).send(new mod.GetSecretValueCommand({ SecretId: arn }));
    if (out.SecretBinary !== undefined) return Buffer.from(out.SecretBinary);
    if (out.SecretString !== undefined && out.SecretString !== '') return Buffer.from(out.SecretString, 'utf8');
    throw new Error(`app secret ${arn} has no value`);
  });

  return restrictToDeclared({
    config,
    store,
    queue: queuePort,
    auditQueue: auditQueuePort,
    scheduler: schedulerPort,
    workflows: workflowsPort,
    connections: connectionsPort,
    events: eventsPort,
    secrets: secretsPort,
    mail: mailPort,
    files: filesPort,
    signer: signerPort,
    clock,
    appSecret,
    workerScaling: workerScalingPort,
  }, ports.functionLabel);
}
