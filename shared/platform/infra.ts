/**
 * Infrastructure facts shared by the two ways Supervisor runs: the CDK stack (`lib/`) and the local
 * runtime (`local/`) both read the table definition, the task queue's settings and the functions'
 * timeouts from here, so that what is tested locally is what is deployed. Plain data: no AWS SDK,
 * no CDK (durations are seconds, sizes megabytes).
 */

// ---------------------------------------------------------------- table

/** One global secondary index: string keys `<name>pk` / `<name>sk`, projecting every attribute. */
export interface TableIndex {
  readonly name: string;
  readonly partitionKey: string;
  readonly sortKey: string;
}

/** The single DynamoDB table (documented in docs/data-model.md). Every key attribute is a string. */
export const TABLE = {
  /** `TABLE_NAME` when unset (the local runtime, the admin script); on AWS CloudFormation names it. */
  defaultName: 'supervisor',
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Epoch seconds after which DynamoDB deletes the item. */
  ttlAttribute: 'expires_at',
  /** The change feed: the table's stream, with both images of every change (see CHANGE_FEED). */
  stream: 'NEW_AND_OLD_IMAGES',
  indexes: [
    { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
    { name: 'gsi2', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
    { name: 'gsi3', partitionKey: 'gsi3pk', sortKey: 'gsi3sk' },
  ],
} as const satisfies {
  defaultName: string;
  partitionKey: string;
  sortKey: string;
  ttlAttribute: string;
  stream: 'NEW_AND_OLD_IMAGES';
  indexes: readonly TableIndex[];
};

export type TableIndexName = (typeof TABLE.indexes)[number]['name'];

/** The index names, in order (`gsi1`, `gsi2`, `gsi3`). */
export const TABLE_INDEX_NAMES: readonly TableIndexName[] = TABLE.indexes.map((index) => index.name);

// ---------------------------------------------------------------- functions

/** Memory of a function unless its role says otherwise. */
export const DEFAULT_MEMORY_MB = 512;

export interface FunctionLimits {
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
}

/**
 * Timeout and memory of each kind of function. API Gateway ends an HTTP request after 30 s
 * (`HTTP_INTEGRATION_TIMEOUT_SECONDS`), so the API functions stop a second earlier; a task runs at
 * most 900 s, the worker's timeout.
 */
export const FUNCTIONS = {
  /** One per API group (`tasks`, `auth`, …); also the WebSocket connect, disconnect and message handlers. */
  api: { timeoutSeconds: 29, memoryMb: DEFAULT_MEMORY_MB },
  /** Runs tasks from the task queue. */
  worker: { timeoutSeconds: 900, memoryMb: 1024 },
  /** The state machine's `Advance` task. */
  workflowEngine: { timeoutSeconds: 60, memoryMb: DEFAULT_MEMORY_MB },
  /** dead-letter, sweeper, schedule-fire. */
  background: { timeoutSeconds: 60, memoryMb: DEFAULT_MEMORY_MB },
  /** The WebSocket `$connect` authorizer. */
  wsAuthorizer: { timeoutSeconds: 10, memoryMb: DEFAULT_MEMORY_MB },
} as const satisfies Record<string, FunctionLimits>;

/** API Gateway's integration timeout: an HTTP request whose function has not answered by then gets a 504. */
export const HTTP_INTEGRATION_TIMEOUT_SECONDS = 30;

/**
 * Files handed out by link (the `files` port): how long a link works, and how long the file is kept (the
 * exports bucket's lifecycle rule on AWS; locally the folder is pruned of older files at each put).
 * Locally the links are served under `localPath` of the runtime's public port.
 */
export const SHARED_FILES = { linkTtlSeconds: 3600, keepDays: 1, localPath: '/local-files/' } as const;

// ---------------------------------------------------------------- queues

/** SQS visibility timeout of a Lambda-consumed queue: at least 6 × the consumer's timeout (AWS guidance). */
export const VISIBILITY_FACTOR = 6;

/** The visibility timeout of a queue consumed by a function with this timeout. */
export function visibilityTimeoutFor(consumerTimeoutSeconds: number): number {
  return consumerTimeoutSeconds * VISIBILITY_FACTOR;
}

/** The task queue and its consumer, the worker (event source mapping settings included). */
export const TASK_QUEUE = {
  /** 6 × the worker's timeout (5,400 s). */
  visibilityTimeoutSeconds: visibilityTimeoutFor(FUNCTIONS.worker.timeoutSeconds),
  /** Receives after which a message moves to the dead-letter queue. */
  maxReceiveCount: 5,
  retentionDays: 4,
  batchSize: 5,
  maxConcurrency: 20,
  /**
   * Concurrency reserved for the worker (and its cap): it can never take more than this from the
   * account's pool, so 900-second runs cannot starve the API functions into throttles (503s), and the
   * queue's event source mapping (maxConcurrency) is never throttled by the reservation either.
   */
  reservedConcurrency: 20,
} as const;

/** The event source mapping's range of maximum concurrency (concurrent invocations). */
export const EVENT_SOURCE_CONCURRENCY = { min: 2, max: 1000 } as const;

/**
 * The worker's concurrent invocations for `tasks` runs at once: enough batches to carry them (each up
 * to `batchSize` messages), within the mapping's range. The default pool capacity,
 * maxConcurrency × batchSize, maps back to the deployed maxConcurrency.
 */
export function workerInvocationsFor(tasks: number): number {
  return Math.min(EVENT_SOURCE_CONCURRENCY.max, Math.max(EVENT_SOURCE_CONCURRENCY.min, Math.ceil(tasks / TASK_QUEUE.batchSize)));
}

/** The task queue's dead-letter queue and its consumer, the dead-letter function. */
export const TASK_DEAD_LETTER_QUEUE = {
  /** 6 × the dead-letter function's timeout (360 s). */
  visibilityTimeoutSeconds: visibilityTimeoutFor(FUNCTIONS.background.timeoutSeconds),
  retentionDays: 14,
  batchSize: 10,
} as const;

/**
 * Audit entries whose write failed during their request, written later by the audit-retry function.
 * After `maxReceiveCount` failed writes an entry moves to the audit dead-letter queue, which alarms.
 */
export const AUDIT_QUEUE = {
  visibilityTimeoutSeconds: visibilityTimeoutFor(FUNCTIONS.background.timeoutSeconds),
  maxReceiveCount: 10,
  retentionDays: 14,
  batchSize: 10,
} as const;

/** Retention of the queues that only collect failures (failed asynchronous invocations, schedule DLQ). */
export const FAILURE_QUEUE_RETENTION_DAYS = 14;

/** The failure queues (AsyncFailureQueue, ScheduleDeadLetterQueue) and their consumer, the failures function. */
export const FAILURE_QUEUES = {
  /** 6 × the failures function's timeout (360 s). */
  visibilityTimeoutSeconds: visibilityTimeoutFor(FUNCTIONS.background.timeoutSeconds),
  retentionDays: FAILURE_QUEUE_RETENTION_DAYS,
  batchSize: 10,
} as const;

// ---------------------------------------------------------------- schedules

/**
 * How Lambda handles the asynchronous invocations of schedule-fire. EventBridge Scheduler invokes its
 * Lambda target asynchronously: the Scheduler's own retry policy (`RetryPolicy` of each schedule) only
 * covers a delivery that Lambda refused (throttled, unavailable); once Lambda accepted the event, a
 * function error or timeout is retried by Lambda, `retryAttempts` times, about 1 and then 2 minutes
 * after the failed attempt ended, and then goes to the function's dead-letter queue
 * (AsyncFailureQueue). An event older than `maxEventAgeSeconds` is not retried any more.
 */
export const SCHEDULE_FIRE_ASYNC = {
  retryAttempts: 2,
  /** Lambda's pause before each retry (approximate, at least this). */
  retryDelaysSeconds: [60, 120],
  maxEventAgeSeconds: 3600,
} as const;

/** How often the sweeper runs on AWS (an EventBridge rule); the local runtime runs it more often. */
export const SWEEPER_INTERVAL_MINUTES = 1;

// ---------------------------------------------------------------- change feed and metrics collector

/**
 * The consumer of the table's stream (`functions/change-feed`): its event source mapping on AWS, the
 * local poller's batches and retries (`local/stream-poller.ts`).
 */
export const CHANGE_FEED = {
  /**
   * Large batches over a few seconds: the metrics consumer adds once per rollup item per batch, so a
   * batch of a busy minute costs about as many writes as a small one (the live analytics stream follows
   * a few seconds behind).
   */
  batchSize: 1000,
  maxBatchingWindowSeconds: 3,
  /** Retries of a failing batch (after bisecting it) before it goes to the failure destination. */
  retryAttempts: 5,
  bisectBatchOnError: true,
  /** Records older than this are not retried (the stream keeps 24 h). */
  maxRecordAgeHours: 24,
  /** How often the local poller reads the shards while writes are being made (and within a batching window). */
  localIdlePollMs: 250,
  /**
   * How long the local poller waits when the last read found nothing and no write was made since: the
   * runtime tells it about its own writes (see `StreamPoller.written`), so this only bounds how late a
   * write by another process (an admin CLI) is seen. Every read of a stream costs DynamoDB Local a scan
   * of its stream metadata, on the one thread all its requests share.
   */
  localQuietPollMs: 5000,
} as const;

/** How a stream consumer reads the table's stream: its event source mapping on AWS, the local poller. */
export interface FeedSettings {
  batchSize: number;
  maxBatchingWindowSeconds: number;
  retryAttempts: number;
  bisectBatchOnError: boolean;
  maxRecordAgeHours: number;
  localIdlePollMs: number;
  localQuietPollMs: number;
}

/**
 * The live feed (`functions/live-feed`): the same stream, read by a second consumer with no batching
 * window, for what a user waits on: the WebSocket events of task changes and their event-bus events.
 * Small batches, read as soon as there are records; a batch's channels are still read once for all of it.
 */
export const LIVE_FEED = {
  batchSize: 100,
  maxBatchingWindowSeconds: 0,
  retryAttempts: 3,
  bisectBatchOnError: true,
  /** An event older than this is of no use to a live client: it is set aside (failure queue), not retried. */
  maxRecordAgeHours: 1,
  /** Locally, how soon a write is read while writes are being made (a GetRecords every 50 ms at most). */
  localIdlePollMs: 50,
  localQuietPollMs: 5000,
} as const satisfies FeedSettings;

/** How often the metrics collector samples the platform (EventBridge rule on AWS, a timer locally). */
export const METRICS_COLLECTOR_INTERVAL_MINUTES = 1;

/** How often the alert evaluator is invoked on AWS (EventBridge rule); it skips runs within the configured interval. */
export const ALERT_EVALUATOR_INTERVAL_MINUTES = 1;

// ---------------------------------------------------------------- ports of each function

/**
 * What one function may use besides its own log group: the ports of `Deps` (`shared/platform/runtime.ts`)
 * with the access each needs, plus the table and Bedrock. The CDK stack grants exactly these and sets
 * exactly their environment variables (`lib/bindings.ts`); on AWS the function's `Deps` hold only these
 * ports, and any other one throws at the call. `test/infra/function-ports.test.ts` bundles each function
 * and checks that it reaches (`shared/platform/use/`) exactly the ports declared here.
 */
export interface FunctionPorts {
  /** The DynamoDB table and its indexes (`TABLE_NAME`). */
  readonly table?: 'read' | 'read-write';
  /** Send audit entries whose write failed to the audit retry queue (`AUDIT_QUEUE_URL`): every audited API function. */
  readonly auditQueue?: true;
  /** `send`: enqueue tasks; `check`: queue attributes only (`TASK_QUEUE_URL`). */
  readonly queue?: 'send' | 'check';
  /** The workflow state machine: `describe` it, `start` runs, `manage` (start and stop) them. */
  readonly workflows?: 'describe' | 'start' | 'manage';
  /** Answer a run's waiting step (SendTaskSuccess/SendTaskFailure): every function that ends a step's task. */
  readonly stepCallbacks?: true;
  /** EventBridge Scheduler: `check` the group, `manage` schedules in it. */
  readonly scheduler?: 'check' | 'manage';
  /** Post to and close WebSocket connections (`@connections`). */
  readonly connections?: true;
  /** The event bus: `check` it, `publish` to it. */
  readonly events?: 'check' | 'publish';
  /** Provider and agent credentials: `read` them, `manage` (create, replace, delete) them. */
  readonly secrets?: 'read' | 'manage';
  /** Send email through SES v2 (the email plugin). */
  readonly mail?: true;
  /** The KMS signing key: `verify` access tokens (public key), `sign` them. */
  readonly signer?: 'verify' | 'sign';
  /** The generated application secret (signed cursors). */
  readonly appSecret?: true;
  /** Amazon Bedrock models (InvokeModel, InvokeModelWithResponseStream). */
  readonly bedrock?: true;
  /** Set the worker's concurrency: UpdateEventSourceMapping on the task queue's one mapping (its maximum concurrency). */
  readonly workerScaling?: true;
  /** Hand out files by expiring link: put objects into the exports bucket and presign their GET (`EXPORT_BUCKET`). */
  readonly files?: true;
}

/** The ports of `Deps` a function can be denied (the table, the clock and the configuration are always there). */
export const DEPS_PORTS = ['queue', 'auditQueue', 'scheduler', 'workflows', 'connections', 'events', 'secrets', 'mail', 'signer', 'appSecret', 'workerScaling', 'files'] as const;
export type DepsPort = (typeof DEPS_PORTS)[number];

/** An API group's function when the group has no handler yet: read-write table, tokens verified, cursors signed, audit retries. */
const API_BASELINE: FunctionPorts = { table: 'read-write', signer: 'verify', appSecret: true, auditQueue: true };

/**
 * Each function's ports, by label: the API groups (`FUNCTION_GROUPS`), the background functions and the
 * WebSocket handlers (`ws-<handler>`). Checked against each bundle by the infra test, in both directions.
 */
export const FUNCTION_PORTS = {
  tasks: { table: 'read-write', queue: 'send', secrets: 'manage', signer: 'verify', appSecret: true, stepCallbacks: true, auditQueue: true },
  analytics: API_BASELINE,
  // Reads the metrics store, writes export audit records; no paged lists (no app secret). An export above
  // EXPORT_INLINE_MAX_BYTES goes to the exports bucket and the answer carries a presigned URL (files).
  'analytics-advanced': { table: 'read-write', signer: 'verify', auditQueue: true, files: true },
  // Every function that ends a task answers the waiting step of its workflow run (stepCallbacks). Task
  // and run events (WebSocket, event bus) come from the live feed.
  workflows: { table: 'read-write', queue: 'send', scheduler: 'manage', workflows: 'manage', signer: 'verify', appSecret: true, stepCallbacks: true, auditQueue: true },
  // Preempting a task (a conflict's resolution) re-queues it, announces it and answers its workflow step;
  // scaling worker_concurrency sets the task queue mapping's maximum concurrency (workerScaling).
  resources: { table: 'read-write', queue: 'send', signer: 'verify', stepCallbacks: true, auditQueue: true, workerScaling: true },
  providers: { table: 'read-write', secrets: 'manage', signer: 'verify', appSecret: true, bedrock: true, auditQueue: true },
  // Configuration secrets, custom events, notifications and redeliveries (which deliver synchronously).
  plugins: { table: 'read-write', secrets: 'manage', events: 'publish', mail: true, signer: 'verify', appSecret: true, auditQueue: true },
  // Rule deletion resolves alerts and notifies them (event bus, WebSocket subscribers); the health view checks the bus.
  monitoring: { table: 'read-write', events: 'publish', connections: true, signer: 'verify', appSecret: true, auditQueue: true },
  // Logout and rights changes close the user's sockets; deactivation pauses the user's schedules.
  auth: { table: 'read-write', connections: true, scheduler: 'manage', signer: 'sign', appSecret: true, auditQueue: true },
  health: { table: 'read', queue: 'check', workflows: 'describe', scheduler: 'check', events: 'check', signer: 'verify', auditQueue: true },
  docs: {},
  worker: { table: 'read-write', queue: 'send', connections: true, secrets: 'read', bedrock: true, stepCallbacks: true },
  'dead-letter': { table: 'read-write', queue: 'send', stepCallbacks: true },
  sweeper: { table: 'read-write', queue: 'send', stepCallbacks: true },
  'workflow-engine': { table: 'read-write', queue: 'send', stepCallbacks: true },
  // A firing whose owner lost the right pauses its schedule.
  'schedule-fire': { table: 'read-write', queue: 'send', workflows: 'start', scheduler: 'manage', stepCallbacks: true },
  // The event bus rule's and the retry schedule's target: delivers events to the active plugins.
  'plugin-delivery': { table: 'read-write', secrets: 'read', mail: true },
  // Writes the audit entries that could not be written during their request.
  'audit-retry': { table: 'read-write' },
  // Records what reached the failure queues: a schedule's failed firing, the sweeper's failure.
  failures: { table: 'read-write' },
  // The table's stream consumer: records the metrics of every change, pushes the analytics stream to its subscribers.
  'change-feed': { table: 'read-write', connections: true },
  // The live feed: the WebSocket and event-bus events of task and workflow run changes (expired subscriptions are removed).
  'live-feed': { table: 'read-write', connections: true, events: 'publish' },
  // Samples task and workflow gauges into the metrics store every minute, and compacts its closed hours and days.
  'metrics-collector': { table: 'read-write' },
  // Evaluates the alert rules every minute; publishes alert.fired / alert.resolved and pushes them to subscribers.
  'alert-evaluator': { table: 'read-write', events: 'publish', connections: true },
  'ws-authorizer': { table: 'read', signer: 'verify' },
  'ws-connect': { table: 'read-write' },
  'ws-disconnect': { table: 'read-write' },
  'ws-message': { table: 'read-write', connections: true },
} as const satisfies Record<string, FunctionPorts>;

export type FunctionLabel = keyof typeof FUNCTION_PORTS;

/** The ports of a function by its label; throws for a label the manifest does not know. */
export function portsOf(label: string): FunctionPorts {
  const ports = (FUNCTION_PORTS as Record<string, FunctionPorts>)[label];
  if (!ports) throw new Error(`function "${label}" has no entry in FUNCTION_PORTS (shared/platform/infra.ts)`);
  return ports;
}
