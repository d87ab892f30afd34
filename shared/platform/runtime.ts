import { getConfig, installConfig, resetConfig, type Config } from './config.js';
import type {
  Clock,
  Connections,
  EventBus,
  FileShare,
  MailSender,
  ScheduleService,
  SecretStore,
  TaskQueue,
  TokenSigner,
  WorkerScaling,
  WorkflowRunner,
} from './ports.js';
import { systemClock } from './ports.js';
import { Store } from './store/client.js';

/**
 * Everything a handler needs from the outside world. On AWS it is built once per cold start from the
 * environment the CDK stack sets; the local runtime builds it with local adapters and installs it with
 * `installDeps` before the first request (which also makes its `config` the one `getConfig()` answers).
 */
export interface Deps {
  config: Config;
  store: Store;
  queue: TaskQueue;
  /** Audit entries whose write failed, written later by the audit-retry function (SQS on AWS). */
  auditQueue: TaskQueue;
  scheduler: ScheduleService;
  workflows: WorkflowRunner;
  connections: Connections;
  events: EventBus;
  secrets: SecretStore;
  /** Outbound email (the email plugin). */
  mail: MailSender;
  /** Files handed out by an expiring link (large exports): absent where no adapter is wired (scripts, tests that build their own `Deps`). */
  files?: FileShare;
  signer: TokenSigner;
  clock: Clock;
  /** The worker's concurrency: the task queue mapping's maximum concurrency on AWS, the in-process worker's locally (see use/worker-scaling.ts). */
  workerScaling?: WorkerScaling;
  /** Key for HMAC-signed cursors and other server-side MACs. */
  appSecret(): Promise<Buffer>;
  /**
   * This process's instance id, the prefix of the task leases it takes (`<instance>/<ulid>`): the local
   * runtime's own (`local-<ulid>`), on AWS the Lambda execution environment's log stream.
   */
  instanceId?: string;
  /** Aborted when the process is stopping and the work still running must be handed back (local SIGTERM). */
  stopping?: AbortSignal;
  /** The state of a store process this runtime supervises (local DynamoDB Local: up, down, restarting…). */
  storeProcessState?: () => string;
}

let current: Deps | undefined;
let building: Promise<Deps> | undefined;

/**
 * Makes `deps` what the handlers get. Answers a function that puts back the ones installed before, if
 * these are still installed: a local runtime that stops hands the process back to the one it replaced
 * (a bench or a test running a second runtime beside its first).
 */
export function installDeps(deps: Deps): () => void {
  const previous = current;
  installConfig(deps.config);
  current = deps;
  building = undefined;
  return () => {
    if (current !== deps) return;
    if (previous) installDeps(previous);
    else resetDeps();
  };
}

export function resetDeps(): void {
  resetConfig();
  current = undefined;
  building = undefined;
}

export async function getDeps(): Promise<Deps> {
  if (current) return current;
  building ??= buildAwsDeps().then((d) => (current = d));
  return building;
}

async function buildAwsDeps(): Promise<Deps> {
  const aws = await import('./aws/index.js');
  const config = getConfig();
  const store = new Store({ tableName: config.tableName, endpoint: config.dynamodbEndpoint });
  return aws.createAwsDeps(config, store, systemClock);
}
