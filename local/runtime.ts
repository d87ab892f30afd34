import { setMaxListeners } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ENV, parseConfig, type Config } from '../shared/platform/config.js';
import { LIVE_FEED, TABLE, TASK_DEAD_LETTER_QUEUE, TASK_QUEUE } from '../shared/platform/infra.js';
import { installDeps, type Deps } from '../shared/platform/runtime.js';
import { Store } from '../shared/platform/store/client.js';
import { systemClock, type Clock } from '../shared/platform/ports.js';
import { ROUTES } from '../shared/routes.js';
import { ApiGatewayConnections } from '../shared/platform/aws/connections.js';
import { LocalMailSender, LocalSecretStore, LocalTokenSigner, loadOrCreateAppSecret } from '../shared/platform/local/index.js';
import { ensureTable, freePort, newAccessKeyId, startDynamoDbLocal, type DynamoDbLocal, type DynamoDbLocalJit } from './dynamodb-local.js';
import { lockDataDir } from './data-dir.js';
import { createHttpServer } from './http-server.js';
import { LocalFileShare } from '../shared/platform/local/file-share.js';
import { createHmac } from 'node:crypto';
import { createConnectionsServer, createWebSocketGateway } from './websocket.js';
import { Router } from './router.js';
import { LocalQueue, queueWorkerScaling } from './queue.js';
import { LocalEventBus } from './event-bus.js';
import { LocalScheduler } from './scheduler.js';
import { LocalStateMachineRunner } from './state-machine.js';
import { StoreExecutionJournal } from './execution-journal.js';
import { HTTP_FUNCTIONS, WS_FUNCTIONS } from './functions.js';
import { handler as workflowEngine } from '../functions/workflow-engine/handler.js';
import { handler as scheduleFire } from '../functions/schedule-fire/handler.js';
import { restoreSchedules } from '../shared/schedules/service.js';
import { handler as taskWorker } from '../functions/worker/handler.js';
import { handler as taskDeadLetter } from '../functions/dead-letter/handler.js';
import { handler as taskSweeper } from '../functions/sweeper/handler.js';
import { handler as auditRetry } from '../functions/audit-retry/handler.js';
import { LocalAuditQueue } from './audit-queue.js';
import { handler as pluginDelivery } from '../functions/plugin-delivery/handler.js';
import { deadLetteredFiring, failedSweep } from './failures.js';
import { ensureLocalProvider } from '../shared/providers/service.js';
import { ensureDefaultAgent } from '../shared/agents/service.js';
import { isManualClock } from '../shared/platform/local/clock.js';
import { newUlid } from '../shared/platform/ids.js';
import { recoverAtStart } from '../shared/tasks/sweeper.js';
import { periodic } from './periodic.js';
import { forgetInstance, registerInstance } from './instances.js';
import { applyStoredWorkerConcurrency } from '../shared/resources/service.js';

import { handler as changeFeed } from '../functions/change-feed/handler.js';
import { handler as liveFeed } from '../functions/live-feed/handler.js';
import { CHANGE_FEED_KEY_PREFIXES } from '../shared/change-feed.js';
import { LIVE_FEED_KEY_PREFIXES } from '../shared/live-feed.js';
import { runCollector } from '../shared/analytics/collector.js';
import { pushAnalyticsStream } from '../shared/analytics/stream.js';
import { ensureMonitoring, runEvaluator } from '../shared/monitoring/service.js';
import { StreamPoller } from './stream-poller.js';
import { ProcessSampler } from './process-sampler.js';

/** How often the local runtime runs the task sweeper (on AWS every SWEEPER_INTERVAL_MINUTES of shared/platform/infra.ts). */
export const LOCAL_SWEEP_INTERVAL_MS = 30_000;
/** How long a stop waits for the tasks running; then they are handed back (within STOP_HANDBACK_MS). */
export const STOP_DRAIN_MS = 20_000;
export const STOP_HANDBACK_MS = 5_000;
/** How often the local runtime runs due plugin delivery retries (on AWS a one-minute schedule). */
export const LOCAL_PLUGIN_RETRY_INTERVAL_MS = 500;
/** How often the local runtime runs the metrics collector (on AWS every METRICS_COLLECTOR_INTERVAL_MINUTES). */
export const LOCAL_COLLECT_INTERVAL_MS = 60_000;
/**
 * How often the local runtime pushes the analytics stream besides the change feed's pushes, so that a
 * change that came within a subscriber's interval goes out when the interval ends (on AWS it goes out
 * with the next change-feed push, the collector's minute at the latest).
 */
export const LOCAL_ANALYTICS_STREAM_TICK_MS = 1_000;

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
  /**
   * Variables of the handlers' configuration (ALLOW_REGISTRATION, token lifetimes…), over this
   * process's environment; see `localConfig`.
   */
  env?: Record<string, string>;
  /** Scales Wait states of the workflow state machine (1 = as written). */
  workflowWaitScale?: number;
  /** How long a stop waits for the tasks running before it hands them back (default STOP_DRAIN_MS). */
  drainMs?: number;
  /** Restart the DynamoDB Local child when it exits (default true; tests of a lasting outage turn it off). */
  restartDynamoDb?: boolean;
  /** The JVM compilers of the DynamoDB Local child (default `peak`; see `DynamoDbLocalJit`). */
  dynamodbJit?: DynamoDbLocalJit;
  /**
   * Read the table's stream (default true): its change feed records the metrics of the platform's writes,
   * its live feed announces task changes (WebSocket and event-bus events). Off, the table has no stream
   * (DynamoDB Local does more for every write to a table with one) and neither feed runs: no metrics, no
   * task events (for test runtimes that need neither). `stream-only`: the stream is read, but no change
   * feed consumer gets a change (what the stream itself costs DynamoDB Local: the analytics bench); the
   * live feed runs.
   */
  changeFeed?: boolean | 'stream-only';
}

export interface LocalRuntime {
  url: string;
  wsUrl: string;
  port: number;
  /**
   * The `@connections` management endpoint: loopback only, on a port of its own, admitting only
   * requests signed with the access key id this URL carries as user name (see ApiGatewayConnections).
   */
  connectionsUrl: string;
  deps: Deps;
  dynamodb?: DynamoDbLocal;
  queue: LocalQueue;
  deadLetterQueue: LocalQueue;
  scheduler: LocalScheduler;
  events: LocalEventBus;
  /** Where the email plugin's `.eml` files go (`<dataDir>/mail`, or a temporary directory without one). */
  mailDir: string;
  /** The change feed's poller (undefined when `changeFeed: false`). */
  changeFeed?: StreamPoller;
  /** The live feed's poller (undefined when `changeFeed: false`). */
  liveFeed?: StreamPoller;
  stop(): Promise<void>;
}

/**
 * The local runtime's configuration: this process's environment, then the runtime's table and the
 * caller's variables over it. The offline `local` provider is the default one unless the environment
 * names another (tasks that name no provider run on it); self-registration is on unless
 * `ALLOW_REGISTRATION=false` (the code's default elsewhere is off). It reaches the handlers through `installDeps`;
 * nothing is written to the environment.
 */
export function localConfig(tableName: string, env: Record<string, string> = {}): Config {
  return parseConfig({ [ENV.defaultProvider]: 'local', [ENV.allowRegistration]: 'true', ...process.env, [ENV.tableName]: tableName, ...env });
}

/**
 * Runs the API on one machine: the same handlers the CDK stack deploys, behind a local HTTP and
 * WebSocket server, with DynamoDB Local and in-process stand-ins for SQS, Scheduler and Step Functions.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const log = options.log ?? ((line: string) => console.log(line));
  const host = options.host ?? '127.0.0.1';
  // A port of our choosing may be taken by another process before the server listens: then another is chosen.
  const portChosen = !(options.port && options.port > 0);
  let port = portChosen ? await freePort() : options.port!;
  const dataDir = options.dataDir === undefined ? path.resolve('.data') : options.dataDir;
  const clock = options.clock ?? systemClock;

  const tableName = options.tableName ?? TABLE.defaultName;
  const config = localConfig(tableName, options.env);

  // One runtime per data directory (the lock is released on stop, and on any failure to start).
  const unlock = dataDir ? lockDataDir(dataDir) : () => undefined;
  let dynamodb: DynamoDbLocal | undefined;
  let store: Store | undefined;
  let httpServer: ReturnType<typeof createHttpServer> | undefined;
  let connectionsServer: http.Server | undefined;
  /** Stops what runs before the public port listens (queues, sweeper, scheduler, state machine). */
  let stopWork: (() => Promise<void>) | undefined;
  const cleanUp = async () => {
    if (httpServer?.server.listening) await httpServer.close().catch(() => undefined);
    // Cleaning up after a failed start: the start's own error is what the caller gets; this is only told.
    await stopWork?.().catch((err) => log(`stopping the runtime's work after a failed start failed: ${(err as Error).message}`));
    if (connectionsServer?.listening) await new Promise<void>((resolve) => connectionsServer!.close(() => resolve()));
    store?.raw.destroy();
    await dynamodb?.stop().catch(() => undefined);
    unlock();
  };
  try {
    let endpoint = options.dynamodbEndpoint;
    if (!endpoint) {
      dynamodb = await startDynamoDbLocal({
        dataDir: dataDir ? path.join(dataDir, 'dynamodb') : undefined,
        jit: options.dynamodbJit,
        // Supervised: an exit is logged with its code and the process restarted on the same port and data
        // directory (in memory, the table is created again, empty).
        supervise: { restart: options.restartDynamoDb !== false, log, onRestart: (restarted) => ensureTable(restarted, tableName, { stream: options.changeFeed !== false }) },
      });
      endpoint = dynamodb.endpoint;
    }
    await ensureTable(endpoint, tableName, { stream: options.changeFeed !== false });
    config.dynamodbEndpoint = endpoint;
    store = new Store({ tableName, endpoint });
    const table = store;

    // The task queue and its DLQ as deployed (shared/platform/infra.ts); one dead-letter batch at a time.
    const deadLetterQueue = new LocalQueue({
      name: 'supervisor-tasks-dlq',
      visibilityTimeoutSeconds: TASK_DEAD_LETTER_QUEUE.visibilityTimeoutSeconds,
      // Without a DLQ of its own the count moves nothing: as in SQS, a failing message keeps coming back.
      maxReceiveCount: TASK_QUEUE.maxReceiveCount,
      batchSize: TASK_DEAD_LETTER_QUEUE.batchSize,
      maxConcurrency: 1,
      clock,
      consumer: (event) => taskDeadLetter(event),
    });
    const queue = new LocalQueue({
      name: 'supervisor-tasks',
      visibilityTimeoutSeconds: TASK_QUEUE.visibilityTimeoutSeconds,
      maxReceiveCount: TASK_QUEUE.maxReceiveCount,
      batchSize: TASK_QUEUE.batchSize,
      maxConcurrency: TASK_QUEUE.maxConcurrency,
      deadLetterQueue,
      clock,
      consumer: (event) => taskWorker(event),
      onConsumerError: (err) => log(`worker batch failed: ${(err as Error).stack ?? err}`),
    });
    const auditQueue = new LocalAuditQueue({ dataDir, clock, log, consumer: (event) => auditRetry(event) });
    // The bus rule of the stack: every event goes to the plugin delivery function, as EventBridge hands it.
    const events = new LocalEventBus({ onListenerError: (err, event) => log(`plugin delivery of ${event.detailType} failed: ${(err as Error).stack ?? err}`) });
    events.subscribe(async (event) => {
      await pluginDelivery({ id: event.id, source: event.source, 'detail-type': event.detailType, time: event.time, detail: event.detail });
    });
    const mailDir = dataDir ? path.join(dataDir, 'mail') : fs.mkdtempSync(path.join(os.tmpdir(), 'supervisor-mail-'));
    // Files handed out by link (large exports): <dataDir>/files, served by the public port with signed, expiring URLs.
    const filesDir = dataDir ? path.join(dataDir, 'files') : fs.mkdtempSync(path.join(os.tmpdir(), 'supervisor-files-'));
    const scheduler = new LocalScheduler({
      clock,
      fire: async (payload) => {
        await scheduleFire(payload);
      },
      onDeadLetter: (entry) => {
        log(`schedule ${entry.name} firing dead-lettered: ${entry.error}`);
        // Recorded on the schedule by the failure queues' consumer, as on AWS.
        const payload = 'scheduled_time' in entry.payload ? { ...entry.payload, scheduled_time: entry.scheduledTime } : entry.payload;
        deadLetteredFiring(payload, entry.error).catch((err) => log(`dead-lettered firing not recorded: ${(err as Error).stack ?? err}`));
      },
    });
    const workflows = new LocalStateMachineRunner({
      engine: (payload) => workflowEngine(payload),
      waitScale: options.workflowWaitScale ?? 1,
      // Executions are recorded in the table, so that a restart resumes the ones in flight.
      journal: new StoreExecutionJournal(table),
      onJournalError: (err) => log(`workflow execution not recorded: ${(err as Error).message}`),
    });

    const connectionsKey = newAccessKeyId();
    const gateway = createWebSocketGateway(WS_FUNCTIONS, log);
    connectionsServer = createConnectionsServer(gateway, connectionsKey);
    await listen(connectionsServer, 0, '127.0.0.1');
    const connectionsUrl = `http://${connectionsKey}@127.0.0.1:${(connectionsServer.address() as AddressInfo).port}`;
    // This runtime's instance id: the prefix of the task leases it takes (see local/instances.ts).
    const instanceId = `local-${newUlid()}`;
    const stopping = new AbortController();
    // Every running attempt listens on it (up to the worker's capacity of 100), so the default warning
    // at 11 listeners would report the normal case as a leak.
    setMaxListeners(0, stopping.signal);
    const supervised = dynamodb;
    const deps: Deps = {
      instanceId,
      stopping: stopping.signal,
      ...(supervised ? { storeProcessState: () => `DynamoDB Local ${supervised.state()}` } : {}),
      config,
      store,
      queue,
      auditQueue,
      scheduler,
      workflows,
      connections: new ApiGatewayConnections(connectionsUrl),
      events,
      secrets: new LocalSecretStore(dataDir),
      mail: new LocalMailSender(mailDir),
      files: new LocalFileShare({ dir: filesDir, baseUrl: () => `http://${host}:${port}`, key: () => sharedFilesKey(), clock }),
      signer: await LocalTokenSigner.create(dataDir, config.issuer),
      clock,
      // worker_concurrency (the resource ledger's pool) sets how many tasks the in-process worker runs at once.
      workerScaling: queueWorkerScaling(queue),
      appSecret: (() => {
        const secret = loadOrCreateAppSecret(dataDir);
        return () => secret;
      })(),
    };
    const uninstallDeps = installDeps(deps);
    const sharedFilesKey = async () => createHmac('sha256', await deps.appSecret()).update('shared-file-links').digest();

    httpServer = createHttpServer({
      router: new Router(ROUTES),
      functions: HTTP_FUNCTIONS,
      log,
      corsOrigins: config.corsOrigins,
      sharedFiles: { dir: filesDir, key: sharedFilesKey, now: () => clock.now() },
    });
    httpServer.server.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
    await ensureLocalProvider(deps);
    await ensureDefaultAgent(deps);
    // The local scheduler keeps schedules in memory: register the stored ones again.
    await restoreSchedules(deps);
    // A previous runtime on this table that crashed: its tasks go back to the queue now, not when their
    // leases run out; the queue lost its messages with the process, so queued tasks are sent again.
    const { dead, live } = await registerInstance(table, instanceId);
    const recovered = await recoverAtStart(deps, { deadInstances: dead.map((d) => d.instance_id), resendQueued: live.length === 0 });
    for (const d of dead) await forgetInstance(table, d.instance_id);
    if (recovered.interrupted) log(`recovered ${recovered.interrupted} task(s) left running by a stopped runtime`);
    // (Not while another runtime shares the table: the executions recorded RUNNING may be its own.)
    const resumed = live.length === 0 ? await workflows.resume() : 0;
    if (resumed) log(`resumed ${resumed} workflow execution(s) left running by a stopped runtime`);
    // The resource pools are seeded at first start; the worker follows the stored worker_concurrency.
    await applyStoredWorkerConcurrency(deps);
    // Monitoring's configuration and default alert rules, at first start.
    await ensureMonitoring(deps);
    queue.start();
    deadLetterQueue.start();
    const deferredAudits = await auditQueue.start();
    if (deferredAudits) log(`sent ${deferredAudits} deferred audit entr${deferredAudits === 1 ? 'y' : 'ies'} to be written again`);
    // With a manual clock nothing runs on real timers: a test calls the sweeper handler itself.
    const timers = !isManualClock(clock);
    const sweeper = periodic(
      LOCAL_SWEEP_INTERVAL_MS,
      () => taskSweeper(),
      (err) => {
        log(`task sweeper failed: ${(err as Error).stack ?? err}`);
        // Recorded in the sweeper's health by the failure queues' consumer, as on AWS.
        return failedSweep(clock.now(), (err as Error).message ?? String(err)).catch((e) => log(`failed sweep not recorded: ${(e as Error).stack ?? e}`));
      },
      timers,
    );
    const pluginRetries = periodic(
      LOCAL_PLUGIN_RETRY_INTERVAL_MS,
      () => pluginDelivery({ source: 'aws.events', 'detail-type': 'Scheduled Event' }),
      (err) => log(`plugin retries failed: ${(err as Error).stack ?? err}`),
      timers,
    );
    // The change feed: the table's stream, handed to the same handler the event source mapping invokes on AWS.
    const poller =
      options.changeFeed === false
        ? undefined
        : new StreamPoller({ endpoint, tableName, handler: (event) => changeFeed(event), dataDir, log, keyPrefixes: options.changeFeed === 'stream-only' ? [] : CHANGE_FEED_KEY_PREFIXES });
    // The live feed: the same stream, read at once, for the task events users wait on.
    const livePoller =
      options.changeFeed === false
        ? undefined
        : new StreamPoller({ name: 'live-feed', settings: LIVE_FEED, endpoint, tableName, handler: (event) => liveFeed(event), dataDir, log, keyPrefixes: LIVE_FEED_KEY_PREFIXES });
    // Their own writes tell them when there is something to read (see CHANGE_FEED.localQuietPollMs).
    store.onWrite(() => {
      poller?.written();
      livePoller?.written();
    });
    poller?.start();
    livePoller?.start();
    // The metrics collector, with this process's own figures (on AWS the Lambda's process would say nothing).
    const sampler = new ProcessSampler();
    const collector = periodic(
      LOCAL_COLLECT_INTERVAL_MS,
      () => runCollector(deps, { process: sampler.sample() }),
      (err) => log(`metrics collector failed: ${(err as Error).stack ?? err}`),
      timers,
    );
    const analyticsStream = periodic(
      LOCAL_ANALYTICS_STREAM_TICK_MS,
      () => pushAnalyticsStream(deps),
      (err) => log(`analytics stream push failed: ${(err as Error).stack ?? err}`),
      timers,
    );
    // The alert evaluator: a tick every ALERT_EVALUATOR_TICK_MS; it evaluates when the stored interval has passed and monitoring is started.
    const evaluator = periodic(
      deps.config.alertEvaluatorTickMs,
      () => runEvaluator(deps),
      (err) => log(`alert evaluator failed: ${(err as Error).stack ?? err}`),
      timers,
    );
    const stopJobs = () => Promise.all([sweeper, pluginRetries, collector, analyticsStream, evaluator].map((job) => job.stop()));
    stopWork = async () => {
      scheduler.stop();
      await workflows.close();
      await stopJobs();
      sampler.stop();
      await poller?.stop();
      await livePoller?.stop();
      await queue.stop({ drain: false, timeoutMs: 1_000 });
      await deadLetterQueue.stop({ drain: false, timeoutMs: 1_000 });
      await gateway.close();
    };
    // The public port listens last, once everything behind it is ready, and nothing is awaited after
    // it: the caller's start banner is printed before the first request can be served and logged.
    for (let attempt = 1; ; attempt++) {
      try {
        await listen(httpServer.server, port, host);
        break;
      } catch (err) {
        if (!portChosen || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw err;
        port = await freePort();
      }
    }

    let stopped: Promise<void> | undefined;
    return {
      url: `http://${host}:${port}`,
      wsUrl: `ws://${host}:${port}`,
      port,
      connectionsUrl,
      deps,
      dynamodb,
      queue,
      deadLetterQueue,
      scheduler,
      events,
      mailDir,
      changeFeed: poller,
      liveFeed: livePoller,
      stop() {
        stopped ??= (async () => {
          const requests = await httpServer!.close();
          await new Promise<void>((resolve) => connectionsServer!.close(() => resolve()));
          await gateway.close();
          scheduler.stop();
          await workflows.close();
          await stopJobs();
          sampler.stop();
          const inFlight = queue.busy();
          await queue.stop({ drain: true, timeoutMs: options.drainMs ?? STOP_DRAIN_MS });
          const unfinished = queue.busy();
          if (unfinished > 0) {
            // Past the drain: abort the attempts still running; each goes back to the queue as interrupted
            // (its message is sent by the next start, which finds the task queued).
            stopping.abort();
            await queue.settle(STOP_HANDBACK_MS);
          }
          await deadLetterQueue.stop({ drain: true, timeoutMs: 5_000 });
          await auditQueue.stop();
          // After the queues: the last writes of the drained tasks still reach the feed's next poll.
          await poller?.stop();
          await livePoller?.stop();
          log(`drained ${requests} request(s) and ${inFlight - unfinished} task(s); handed ${unfinished} task(s) back to the queue`);
          // The next start recovers this instance's leases all the same (it finds the lock file's instance).
          await forgetInstance(table, instanceId).catch((err) => log(`instance record not removed: ${(err as Error).message}`));
          table.raw.destroy();
          await dynamodb?.stop();
          uninstallDeps();
          unlock();
        })();
        return stopped;
      },
    };
  } catch (err) {
    // Nothing outlives a failed start: no DynamoDB Local left running, no lock, no listening port.
    await cleanUp();
    throw err;
  }
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export { http };
