import * as z from 'zod';
import { TABLE, TASK_QUEUE } from './infra.js';

/**
 * Configuration read from the environment. The names are the contract between the CDK stack (which
 * sets them on each function) and the code. This module is the only reader of `process.env` in the
 * code the functions run: `getConfig()` parses it once, and the local runtime installs a `Config` it
 * builds itself (see `installConfig`, done by `installDeps`) instead of writing the environment.
 */
export const ENV = {
  stage: 'STAGE',
  tableName: 'TABLE_NAME',
  dynamodbEndpoint: 'DYNAMODB_ENDPOINT',
  taskQueueUrl: 'TASK_QUEUE_URL',
  auditQueueUrl: 'AUDIT_QUEUE_URL',
  stateMachineArn: 'STATE_MACHINE_ARN',
  scheduleGroup: 'SCHEDULE_GROUP',
  schedulerRoleArn: 'SCHEDULER_ROLE_ARN',
  scheduleTargetArn: 'SCHEDULE_TARGET_ARN',
  scheduleDlqArn: 'SCHEDULE_DLQ_ARN',
  eventBusName: 'EVENT_BUS_NAME',
  signingKeyId: 'SIGNING_KEY_ID',
  appSecretArn: 'APP_SECRET_ARN',
  wsManagementEndpoint: 'WS_MANAGEMENT_ENDPOINT',
  secretPrefix: 'SECRET_PREFIX',
  functionLabel: 'SUPERVISOR_FUNCTION',
  issuer: 'TOKEN_ISSUER',
  allowRegistration: 'ALLOW_REGISTRATION',
  corsOrigins: 'CORS_ORIGINS',
  accessTokenTtl: 'ACCESS_TOKEN_TTL_SECONDS',
  refreshTokenTtl: 'REFRESH_TOKEN_TTL_SECONDS',
  authCache: 'AUTH_CACHE_SECONDS',
  defaultProvider: 'DEFAULT_PROVIDER_ID',
  cliProviderEnabled: 'CLI_PROVIDER_ENABLED',
  cliEnvAllowCredentials: 'CLI_ENV_ALLOW_CREDENTIALS',
  outboundAllowPrivate: 'OUTBOUND_ALLOW_PRIVATE',
  pluginsAllowPrivateUrls: 'PLUGINS_ALLOW_PRIVATE_URLS',
  logLevel: 'LOG_LEVEL',
  pluginRetryBaseMs: 'PLUGIN_RETRY_BASE_MS',
  pluginMaxAttempts: 'PLUGIN_MAX_ATTEMPTS',
  docsAssetsDir: 'DOCS_ASSETS_DIR',
  version: 'SUPERVISOR_VERSION',
  /** Set by Lambda: one per execution environment, the instance id task leases carry on AWS. */
  lambdaInstance: 'AWS_LAMBDA_LOG_STREAM_NAME',
  /** Namespace of the business metrics (EMF); unset: none are written (the local runtime). */
  metricsNamespace: 'POWERTOOLS_METRICS_NAMESPACE',
  resourcePools: 'RESOURCE_POOLS',
  metricsRetentionDays: 'METRICS_RETENTION_DAYS',
  alertEvaluatorTickMs: 'ALERT_EVALUATOR_TICK_MS',
  /** The task queue's event source mapping (its UUID), whose maximum concurrency scaling worker_concurrency sets. */
  workerEventSourceMappingId: 'WORKER_EVENT_SOURCE_MAPPING_ID',
  /** The worker's reserved concurrency, when the stage reserves one: the mapping's maximum concurrency never exceeds it. */
  workerReservedConcurrency: 'WORKER_RESERVED_CONCURRENCY',
  /** Answers (exports) larger than this many bytes go to object storage and the answer carries a link. */
  exportInlineMaxBytes: 'EXPORT_INLINE_MAX_BYTES',
  /** The S3 bucket of files handed out by link (the `files` port). */
  exportBucket: 'EXPORT_BUCKET',
} as const;

export type Env = Readonly<Record<string, string | undefined>>;

export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const text = z.string();
const flag = z.enum(['true', 'false'], { error: 'must be "true" or "false"' });
const seconds = z
  .string()
  .regex(/^\d+$/, 'must be a whole number of seconds')
  .transform(Number)
  .refine((n) => n > 0, 'must be at least 1 second');
const logLevel = z
  .string()
  .transform((s) => s.toUpperCase())
  .pipe(z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }));

const capacity = z.number().int().min(0).max(100_000_000);
/** Capacities the resource ledger seeds its pools with at first start (JSON in RESOURCE_POOLS). */
/**
 * Unset, the shared pools are sized so that they are never a bottleneck below the worker's own
 * concurrency: room for every worker slot running the largest type default (2 cpu, 2048 MB memory,
 * 1024 MB disk), and one call per worker slot on each provider.
 */
const PER_SLOT_DEFAULTS = { cpu: 2, memory_mb: 2048, disk_mb: 1024 } as const;
const resourcePoolsSchema = z
  .strictObject({
    // As deployed: maxConcurrency invocations of batchSize messages each.
    worker_concurrency: z.number().int().min(1).max(5000).default(TASK_QUEUE.maxConcurrency * TASK_QUEUE.batchSize),
    cpu: capacity.optional(),
    memory_mb: capacity.optional(),
    disk_mb: capacity.optional(),
    network_mbps: capacity.default(10_000),
    gpu: capacity.default(0),
    provider_concurrency: z.number().int().min(1).max(10_000).optional(),
    cli_runners: z
      .array(z.strictObject({ host: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/), cpu: capacity, memory_mb: capacity, disk_mb: capacity, gpu: capacity.default(0) }))
      .max(50)
      .default([]),
  })
  .transform((c) => ({
    ...c,
    cpu: c.cpu ?? c.worker_concurrency * PER_SLOT_DEFAULTS.cpu,
    memory_mb: c.memory_mb ?? c.worker_concurrency * PER_SLOT_DEFAULTS.memory_mb,
    disk_mb: c.disk_mb ?? c.worker_concurrency * PER_SLOT_DEFAULTS.disk_mb,
    provider_concurrency: c.provider_concurrency ?? Math.min(10_000, c.worker_concurrency),
  }));
export type ResourcePoolsConfig = z.infer<typeof resourcePoolsSchema>;
const resourcePools = z
  .string()
  .transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON' });
      return z.NEVER;
    }
  })
  .pipe(resourcePoolsSchema);

/** The variables as set; an empty one counts as unset. */
const envSchema = z.object({
  [ENV.stage]: text.default('local'),
  [ENV.tableName]: text.default(TABLE.defaultName),
  [ENV.dynamodbEndpoint]: z.url({ error: 'must be a URL' }).optional(),
  [ENV.issuer]: text.default('supervisor'),
  [ENV.allowRegistration]: flag.optional(),
  [ENV.corsOrigins]: text.default('*'),
  [ENV.accessTokenTtl]: seconds.default(900),
  [ENV.refreshTokenTtl]: seconds.default(30 * 24 * 3600),
  [ENV.authCache]: z.string().regex(/^\d+$/, 'must be a whole number of seconds').transform(Number).default(10),
  [ENV.defaultProvider]: text.optional(),
  [ENV.cliProviderEnabled]: flag.default('false'),
  [ENV.cliEnvAllowCredentials]: text.default(''),
  [ENV.outboundAllowPrivate]: flag.default('false'),
  [ENV.pluginsAllowPrivateUrls]: flag.default('false'),
  [ENV.logLevel]: logLevel.default('INFO'),
  [ENV.lambdaInstance]: text.optional(),
  [ENV.pluginRetryBaseMs]: z.string().regex(/^\d+$/, 'must be a whole number of milliseconds').transform(Number).pipe(z.number().min(1).max(3_600_000)).default(30_000),
  [ENV.pluginMaxAttempts]: z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).pipe(z.number().min(1).max(20)).default(5),
  [ENV.docsAssetsDir]: text.optional(),
  [ENV.version]: text.default('0.1.0'),
  [ENV.metricsNamespace]: text.optional(),
  [ENV.metricsRetentionDays]: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of days')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 365, 'must be between 1 and 365 days')
    .default(7),
  [ENV.alertEvaluatorTickMs]: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of milliseconds')
    .transform(Number)
    .refine((n) => n >= 100 && n <= 3_600_000, 'must be between 100 and 3600000 ms')
    .default(10_000),
  [ENV.taskQueueUrl]: text.optional(),
  [ENV.auditQueueUrl]: text.optional(),
  [ENV.stateMachineArn]: text.optional(),
  [ENV.scheduleGroup]: text.optional(),
  [ENV.schedulerRoleArn]: text.optional(),
  [ENV.scheduleTargetArn]: text.optional(),
  [ENV.scheduleDlqArn]: text.optional(),
  [ENV.eventBusName]: text.optional(),
  [ENV.signingKeyId]: text.optional(),
  [ENV.appSecretArn]: text.optional(),
  [ENV.wsManagementEndpoint]: text.optional(),
  [ENV.secretPrefix]: text.optional(),
  [ENV.functionLabel]: text.optional(),
  [ENV.workerEventSourceMappingId]: text.optional(),
  [ENV.workerReservedConcurrency]: z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).pipe(z.number().int().min(1)).optional(),
  [ENV.resourcePools]: resourcePools.optional(),
  // A Lambda answer is at most 6 MB: the default leaves room for the envelope and headers.
  [ENV.exportInlineMaxBytes]: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of bytes')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 5_242_880, 'must be between 1 and 5242880 bytes')
    .default(5_242_880),
  [ENV.exportBucket]: text.optional(),
});

/**
 * Where the AWS adapters are: each function gets only the variables of the ports it may use, so all
 * are optional here and a port whose setting is missing fails when it is used (see aws/index.ts).
 */
export interface AwsPortsConfig {
  taskQueueUrl?: string;
  auditQueueUrl?: string;
  stateMachineArn?: string;
  scheduleGroup?: string;
  schedulerRoleArn?: string;
  scheduleTargetArn?: string;
  scheduleDlqArn?: string;
  eventBusName?: string;
  signingKeyId?: string;
  appSecretArn?: string;
  wsManagementEndpoint?: string;
  secretPrefix?: string;
  /** The task queue's event source mapping (UUID): `workerScaling` updates its maximum concurrency. */
  workerEventSourceMappingId?: string;
  /** The worker's reserved concurrency (the mapping's maximum concurrency is kept at or below it). */
  workerReservedConcurrency?: number;
  /** The bucket of files handed out by link (port `files`). */
  exportBucket?: string;
  /**
   * The function's label (`tasks`, `worker`, `ws-message`, …), set by the CDK stack: its `Deps` hold only
   * the ports `FUNCTION_PORTS` declares for it. Unset (scripts, tests), every port is built.
   */
  functionLabel?: string;
}

export interface Config {
  stage: string;
  tableName: string;
  /** DynamoDB Local (or another endpoint); unset on AWS. */
  dynamodbEndpoint?: string;
  issuer: string;
  audience: string;
  allowRegistration: boolean;
  corsOrigins: string[];
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /**
   * How long a function instance reuses what it read to authenticate a token (0: never). A logout or a
   * change to the user takes effect at once in the instance that makes it, and within this time in others.
   */
  authCacheSeconds: number;
  /** The provider a task that names none runs on, when no agent routes it. */
  defaultProviderId?: string;
  /** Without it no `cli` provider can be registered or run. */
  cliProviderEnabled: boolean;
  /**
   * Credential-looking variables (AWS_*, *_SECRET*, *_TOKEN*, *_KEY*) a `cli` provider's `env_allow`
   * may name anyway (comma-separated); any other is refused.
   */
  cliEnvAllowCredentials: string[];
  /** Outbound requests may reach loopback and private addresses (local development only; never set on AWS). */
  outboundAllowPrivate: boolean;
  /**
   * Plugin deliveries and probes may reach loopback and private addresses over plain http (tests with
   * local receivers only): apart from OUTBOUND_ALLOW_PRIVATE, which `npm start` sets for local providers.
   */
  pluginsAllowPrivateUrls: boolean;
  logLevel: LogLevel;
  /** Delay before a plugin delivery's first retry; each further one doubles it (with jitter). */
  pluginRetryBaseMs: number;
  /** Attempts of a plugin delivery before it is marked failed. */
  pluginMaxAttempts: number;
  /** Where the docs function finds the Swagger UI files (copied into its bundle on AWS). */
  docsAssetsDir?: string;
  version: string;
  /** The Lambda execution environment (its log stream), when running on Lambda. */
  lambdaInstance?: string;
  /** Where business metrics go (CloudWatch EMF); undefined: they are not written. */
  metricsNamespace?: string;
  /** Capacities of the resource pools, seeded at first start (later changes go through POST /resources/scale). */
  resourcePools: ResourcePoolsConfig;
  /** Days raw metric points are kept (rollups are kept by resolution, see shared/platform/metrics/store.ts). */
  metricsRetentionDays: number;
  /**
   * How often the local runtime's timer calls the alert evaluator (ms); each call evaluates only when the
   * stored `evaluation_interval_seconds` has passed. On AWS an EventBridge rule calls it every minute.
   */
  alertEvaluatorTickMs: number;
  /** An export whose answer would be larger than this (bytes) is stored and answered with a link (default 5 MiB). */
  exportInlineMaxBytes: number;
  aws: AwsPortsConfig;
}

export class ConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super(`invalid configuration: ${issues.map((i) => `${i.variable} ${i.message}`).join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** The configuration these environment variables describe; throws a ConfigError naming every invalid one. */
export function parseConfig(env: Env): Config {
  const set: Record<string, string> = {};
  for (const name of Object.values(ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '') set[name] = value;
  }
  const result = envSchema.safeParse(set);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const variable = String(issue.path[0]);
        return { variable, message: `${issue.message} (got ${JSON.stringify(set[variable])})` };
      }),
    );
  }
  const v = result.data;
  return {
    stage: v[ENV.stage],
    tableName: v[ENV.tableName],
    dynamodbEndpoint: v[ENV.dynamodbEndpoint],
    issuer: v[ENV.issuer],
    audience: 'supervisor-api',
    // Off unless set, or the stage is explicitly `development` (the local runtime sets it itself).
    allowRegistration: (v[ENV.allowRegistration] ?? String(v[ENV.stage] === 'development')) === 'true',
    corsOrigins: v[ENV.corsOrigins].split(',').map((s) => s.trim()).filter(Boolean),
    accessTokenTtlSeconds: v[ENV.accessTokenTtl],
    refreshTokenTtlSeconds: v[ENV.refreshTokenTtl],
    authCacheSeconds: v[ENV.authCache],
    defaultProviderId: v[ENV.defaultProvider],
    cliProviderEnabled: v[ENV.cliProviderEnabled] === 'true',
    cliEnvAllowCredentials: v[ENV.cliEnvAllowCredentials].split(',').map((s) => s.trim()).filter(Boolean),
    outboundAllowPrivate: v[ENV.outboundAllowPrivate] === 'true',
    pluginsAllowPrivateUrls: v[ENV.pluginsAllowPrivateUrls] === 'true',
    logLevel: v[ENV.logLevel],
    pluginRetryBaseMs: v[ENV.pluginRetryBaseMs],
    pluginMaxAttempts: v[ENV.pluginMaxAttempts],
    docsAssetsDir: v[ENV.docsAssetsDir],
    version: v[ENV.version],
    ...(v[ENV.lambdaInstance] ? { lambdaInstance: v[ENV.lambdaInstance] } : {}),
    metricsNamespace: v[ENV.metricsNamespace],
    resourcePools: v[ENV.resourcePools] ?? resourcePoolsSchema.parse({}),
    metricsRetentionDays: v[ENV.metricsRetentionDays],
    alertEvaluatorTickMs: v[ENV.alertEvaluatorTickMs],
    exportInlineMaxBytes: v[ENV.exportInlineMaxBytes],
    aws: {
      taskQueueUrl: v[ENV.taskQueueUrl],
      auditQueueUrl: v[ENV.auditQueueUrl],
      stateMachineArn: v[ENV.stateMachineArn],
      scheduleGroup: v[ENV.scheduleGroup],
      schedulerRoleArn: v[ENV.schedulerRoleArn],
      scheduleTargetArn: v[ENV.scheduleTargetArn],
      scheduleDlqArn: v[ENV.scheduleDlqArn],
      eventBusName: v[ENV.eventBusName],
      signingKeyId: v[ENV.signingKeyId],
      appSecretArn: v[ENV.appSecretArn],
      wsManagementEndpoint: v[ENV.wsManagementEndpoint],
      secretPrefix: v[ENV.secretPrefix],
      functionLabel: v[ENV.functionLabel],
      workerEventSourceMappingId: v[ENV.workerEventSourceMappingId],
      workerReservedConcurrency: v[ENV.workerReservedConcurrency],
      exportBucket: v[ENV.exportBucket],
    },
  };
}

let installed: Config | undefined;
let fromEnvironment: Config | undefined;

/** The configuration: the installed one, or else the process environment's, parsed on first use. */
export function getConfig(): Config {
  return installed ?? (fromEnvironment ??= parseConfig(process.env));
}

/** Makes `getConfig()` answer this configuration (the local runtime's, a test's) instead of the environment's. */
export function installConfig(config: Config): void {
  installed = config;
}

/** Forgets the installed configuration and the parsed environment. */
export function resetConfig(): void {
  installed = undefined;
  fromEnvironment = undefined;
}

/**
 * The values of these variables in this process's environment, to pass on to a child process allowed
 * to see them (a `cli` provider's `env_allow`); read at each call, they are not configuration.
 */
export function inheritedEnv(names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = process.env[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
