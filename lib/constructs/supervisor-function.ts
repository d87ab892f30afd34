import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { ENV } from '../../shared/platform/config.js';
import type { FunctionLimits } from '../../shared/platform/infra.js';
import { metricsNamespace } from '../../shared/platform/metrics.js';
import { acknowledge, acknowledgeWildcardResource, XRAY_REASON } from '../nag.js';
import type { StageConfig } from '../stage.js';
import { stageLogGroup } from './observability.js';

/** The Lambda runtime of every function (one place to upgrade). */
export const LAMBDA_RUNTIME = Runtime.NODEJS_22_X;
/** esbuild target: the Lambda runtime's Node version (nodejs22.x → node22), derived so that the two move together. */
export const BUNDLE_TARGET = LAMBDA_RUNTIME.name.replace(/^nodejs(\d+)\.x$/, 'node$1');

const RUNTIME_REASON =
  `The runtime is pinned to ${LAMBDA_RUNTIME.name}, the LTS the code is built and tested for (bundles target ${BUNDLE_TARGET}); ` +
  'moving to a newer runtime is a deliberate, tested change of LAMBDA_RUNTIME in lib/constructs/supervisor-function.ts.';

export const ESM_REQUIRE_BANNER =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

export interface SupervisorFunctionProps {
  readonly stageConfig: StageConfig;
  /** Directory that holds `functions/` and `package-lock.json`. */
  readonly projectRoot: string;
  /** `functions/<name>/handler.ts` is the entry. */
  readonly name: string;
  /** Exported handler name (default `handler`). */
  readonly handler?: string;
  readonly description?: string;
  /** A fixed function name, for a function whose ARN must be known without referencing it (default: generated). */
  readonly functionName?: string;
  /** Timeout and memory (`FUNCTIONS` of `shared/platform/infra.ts`). */
  readonly limits: FunctionLimits;
  /** Dead-letter queue for asynchronous invocations (only for asynchronously invoked functions). */
  readonly deadLetterQueue?: IQueue;
  /** Why the function has no DLQ (required when `deadLetterQueue` is absent): recorded as the cdk-nag acknowledgement. */
  readonly noDlqReason?: string;
  readonly environment?: Record<string, string>;
  readonly bundling?: Partial<BundlingOptions>;
}

/**
 * The opinionated Lambda of this project: Node.js on arm64, active tracing, its own log group with
 * the stage's retention, a role with no managed policies (logs are granted on its own log group only),
 * minified ESM bundles that leave `@aws-sdk/*` to the runtime, and the common environment.
 * Everything else (table, queue, keys, …) is granted from the function's `FUNCTION_PORTS` entry by `lib/bindings.ts`.
 */
export class SupervisorFunction extends NodejsFunction {
  readonly functionLabel: string;
  /** The function's own role (a sibling construct, so IAM acknowledgements go on it). */
  readonly executionRole: Role;

  constructor(scope: Construct, id: string, props: SupervisorFunctionProps) {
    const { stageConfig, projectRoot } = props;
    const entry = join(projectRoot, 'functions', props.name, 'handler.ts');
    const handler = props.handler ?? 'handler';
    const label = handler === 'handler' ? props.name : `${props.name}-${handler}`;
    if (!existsSync(entry)) {
      throw new Error(`function "${label}": entry ${entry} does not exist`);
    }
    const logGroup = stageLogGroup(scope, `${id}LogGroup`, stageConfig);
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Supervisor ${stageConfig.stage} ${label} function`,
    });
    logGroup.grantWrite(role);

    super(scope, id, {
      entry,
      handler,
      description: props.description ?? `Supervisor ${stageConfig.stage}: ${label}`,
      functionName: props.functionName,
      runtime: LAMBDA_RUNTIME,
      architecture: Architecture.ARM_64,
      tracing: Tracing.ACTIVE,
      memorySize: props.limits.memoryMb,
      timeout: Duration.seconds(props.limits.timeoutSeconds),
      role,
      logGroup,
      deadLetterQueue: props.deadLetterQueue,
      projectRoot,
      depsLockFilePath: join(projectRoot, 'package-lock.json'),
      environment: {
        STAGE: stageConfig.stage,
        POWERTOOLS_SERVICE_NAME: `supervisor-${label}`,
        // Business metrics (shared/platform/metrics.ts) as EMF log lines: no grant needed.
        [ENV.metricsNamespace]: metricsNamespace(stageConfig.stage),
        CORS_ORIGINS: stageConfig.corsOrigins.join(','),
        ...(stageConfig.allowRegistration === undefined
          ? {}
          : { ALLOW_REGISTRATION: String(stageConfig.allowRegistration) }),
        ...props.environment,
      },
      bundling: {
        minify: true,
        format: OutputFormat.ESM,
        target: BUNDLE_TARGET,
        sourceMap: false,
        externalModules: ['@aws-sdk/*'],
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        ...props.bundling,
      },
    });
    this.functionLabel = label;
    this.executionRole = role;

    // Tracing adds xray:PutTraceSegments/PutTelemetryRecords on "*" to this function's role policy.
    acknowledge(role, 'AwsSolutions-IAM5[Resource::*]', XRAY_REASON);
    acknowledge(this, 'AwsSolutions-L1', RUNTIME_REASON);
    acknowledge(this, 'Serverless-LambdaLatestVersion', RUNTIME_REASON);
    if (!props.deadLetterQueue) {
      if (!props.noDlqReason) throw new Error(`function "${label}": give a deadLetterQueue or a noDlqReason`);
      acknowledge(this, 'Serverless-LambdaDLQ', props.noDlqReason);
    }
  }

  /** Acknowledges the IAM5 finding of one deliberate wildcard resource ARN in this function's role policy. */
  acknowledgeWildcard(resourceArn: string, reason: string): void {
    acknowledgeWildcardResource(this.executionRole, resourceArn, reason);
  }
}

/** What every function of the stack shares (`SupervisorFunctions.add` fills it in). */
export type SharedFunctionProps = Pick<SupervisorFunctionProps, 'stageConfig' | 'projectRoot'>;

/**
 * Makes the stack's functions with the settings they share, and keeps each by its label
 * (`tasks`, `worker`, `ws-connect`, …). Functions are created in the given scope (the stack).
 */
export class SupervisorFunctions {
  readonly byLabel = new Map<string, SupervisorFunction>();

  constructor(
    private readonly scope: Construct,
    private readonly shared: SharedFunctionProps,
  ) {}

  add(id: string, options: Omit<SupervisorFunctionProps, keyof SharedFunctionProps>): SupervisorFunction {
    const created = new SupervisorFunction(this.scope, id, { ...this.shared, ...options });
    this.byLabel.set(created.functionLabel, created);
    return created;
  }

  get(label: string): SupervisorFunction | undefined {
    return this.byLabel.get(label);
  }
}
