import { RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

/** Deployment stage settings derived from the `-c stage=…` context value. */
export interface StageConfig {
  /** `dev`, `prod`, … (lowercase, used in resource names). */
  readonly stage: string;
  readonly isProd: boolean;
  /** Retention of every log group the stack creates. */
  readonly logRetention: RetentionDays;
  /** Removal policy of log groups (data stores are always retained). */
  readonly logRemovalPolicy: RemovalPolicy;
  /** Origins allowed by the HTTP API's CORS preflight and the functions' CORS middleware. */
  readonly corsOrigins: string[];
  /** `ALLOW_REGISTRATION` for the functions; undefined leaves the code's default. */
  readonly allowRegistration?: boolean;
  /** Default-route throttling of the HTTP and WebSocket API stages. */
  readonly throttle: { rateLimit: number; burstLimit: number };
}

const STAGE_PATTERN = /^[a-z][a-z0-9-]{0,19}$/;

export interface StageConfigInput {
  stage?: string;
  corsOrigins?: string | string[];
  allowRegistration?: string | boolean;
}

export function stageConfig(input: StageConfigInput = {}): StageConfig {
  const stage = input.stage ?? 'dev';
  if (!STAGE_PATTERN.test(stage)) {
    throw new Error(`invalid stage "${stage}": use lowercase letters, digits and dashes (e.g. dev, prod)`);
  }
  const isProd = stage === 'prod';
  const origins = Array.isArray(input.corsOrigins)
    ? input.corsOrigins
    : (input.corsOrigins ?? '*').split(',');
  const allowRegistration =
    input.allowRegistration === undefined ? undefined : String(input.allowRegistration) !== 'false';
  return {
    stage,
    isProd,
    logRetention: isProd ? RetentionDays.ONE_YEAR : RetentionDays.ONE_MONTH,
    logRemovalPolicy: isProd ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    corsOrigins: origins.map((o) => o.trim()).filter(Boolean),
    allowRegistration,
    throttle: isProd ? { rateLimit: 500, burstLimit: 1000 } : { rateLimit: 100, burstLimit: 200 },
  };
}
