import http from 'node:http';
import path from 'node:path';
import { ENV, loadConfig } from '../shared/config.js';
import { installDeps, type Deps } from '../shared/runtime.js';
import { Store } from '../shared/store/client.js';
import { systemClock, type Clock } from '../shared/ports.js';
import { ROUTES } from '../shared/api/routes/index.js';
import { ApiGatewayConnections } from '../shared/adapters/aws/connections.js';
import { LocalSecretStore, LocalTokenSigner, loadOrCreateAppSecret } from '../shared/adapters/local/index.js';
import { ensureTable, freePort, startDynamoDbLocal, type DynamoDbLocal } from './dynamodb-local.js';
import { createHttpServer } from './http-server.js';
import { createWebSocketGateway } from './websocket.js';
import { Router } from './router.js';
import { LocalQueue } from './queue.js';
import { LocalEventBus } from './event-bus.js';
import { LocalScheduler } from './scheduler.js';
import { LocalStateMachineRunner } from './state-machine.js';
import { HTTP_FUNCTIONS, WS_FUNCTIONS } from './functions.js';

export interface LocalRuntimeOptions {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** Where data is kept between restarts; null keeps everything in memory. */
  dataDir?: string | null;
  /** An already running DynamoDB Local; otherwise one is started as a child process. */
  dynamodbEndpoint?: string;
  tableName?: string;
  clock?: Clock;
  log?: (line: string) => void;
  /** Environment for the handlers' configuration (ALLOW_REGISTRATION, token lifetimes…). */
  env?: Record<string, string>;
  /** Scales Wait states of the workflow state machine (1 = as written). */
  workflowWaitScale?: number;
}

export interface LocalRuntime {
  url: string;
  wsUrl: string;
  port: number;
  deps: Deps;
  dynamodb?: DynamoDbLocal;
  queue: LocalQueue;
  deadLetterQueue: LocalQueue;
  scheduler: LocalScheduler;
  events: LocalEventBus;
  stop(): Promise<void>;
}

/**
 * Runs the API on one machine: the same handlers the CDK stack deploys, behind a local HTTP and
 * WebSocket server, with DynamoDB Local and in-process stand-ins for SQS, Scheduler and Step Functions.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const log = options.log ?? ((line: string) => console.log(line));
  const host = options.host ?? '127.0.0.1';
  const port = options.port && options.port > 0 ? options.port : await freePort();
  const dataDir = options.dataDir === undefined ? path.resolve('.data') : options.dataDir;
  const clock = options.clock ?? systemClock;

  const tableName = options.tableName ?? 'supervisor';
  process.env[ENV.tableName] = tableName;
  process.env[ENV.stage] ??= 'local';
  for (const [k, v] of Object.entries(options.env ?? {})) process.env[k] = v;

  let dynamodb: DynamoDbLocal | undefined;
  let endpoint = options.dynamodbEndpoint;
  if (!endpoint) {
    dynamodb = await startDynamoDbLocal({ dataDir: dataDir ? path.join(dataDir, 'dynamodb') : undefined });
    endpoint = dynamodb.endpoint;
  }
  await ensureTable(endpoint, tableName);
  const store = new Store({ tableName, endpoint });

  const deadLetterQueue = new LocalQueue({ name: 'supervisor-tasks-dlq', visibilityTimeoutSeconds: 60, maxReceiveCount: 5, batchSize: 10, maxConcurrency: 1, clock });
  const queue = new LocalQueue({
    name: 'supervisor-tasks',
    visibilityTimeoutSeconds: 960,
    maxReceiveCount: 5,
    batchSize: 5,
    maxConcurrency: 20,
    deadLetterQueue,
    clock,
    onConsumerError: (err) => log(`worker batch failed: ${(err as Error).stack ?? err}`),
  });
  const events = new LocalEventBus();
  const scheduler = new LocalScheduler({ clock, fire: async () => undefined });
  const workflows = new LocalStateMachineRunner({ engine: async () => ({ done: true }), waitScale: options.workflowWaitScale ?? 1 });

  const deps: Deps = {
    config: loadConfig(),
    store,
    queue,
    scheduler,
    workflows,
    connections: new ApiGatewayConnections(`http://127.0.0.1:${port}`),
    events,
    secrets: new LocalSecretStore(dataDir),
    signer: await LocalTokenSigner.create(dataDir, loadConfig().issuer),
    clock,
    appSecret: (() => {
      const secret = loadOrCreateAppSecret(dataDir);
      return () => secret;
    })(),
  };
  installDeps(deps);

  const gateway = createWebSocketGateway(WS_FUNCTIONS, log);
  const httpServer = createHttpServer({
    router: new Router(ROUTES),
    functions: HTTP_FUNCTIONS,
    log,
    intercept: (req, res, body) => gateway.connectionsEndpoint(req, res, body),
  });
  httpServer.server.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve, reject) => {
    httpServer.server.once('error', reject);
    httpServer.server.listen(port, host, () => resolve());
  });
  queue.start();
  deadLetterQueue.start();

  let stopped: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    wsUrl: `ws://${host}:${port}`,
    port,
    deps,
    dynamodb,
    queue,
    deadLetterQueue,
    scheduler,
    events,
    stop() {
      stopped ??= (async () => {
        await httpServer.close();
        await gateway.close();
        scheduler.stop();
        await queue.stop({ drain: true, timeoutMs: 20_000 });
        await deadLetterQueue.stop({ drain: true, timeoutMs: 5_000 });
        store.raw.destroy();
        await dynamodb?.stop();
      })();
      return stopped;
    },
  };
}

export { http };
