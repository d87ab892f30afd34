import { Fn, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { TASK_QUEUE } from '../shared/platform/infra.js';

/** Deployment stage settings derived from the CDK context (`-c stage=…`, `-c productionStages=…`, …). */
export interface StageConfig {
  /** `dev`, `prod`, … (lowercase, used in resource names). */
  readonly stage: string;
  /**
   * Production-like: data and keys retained, deletion protection, logs kept a year, registration off,
   * stricter throttles. Follows the `production` flag or the `productionStages` list, not a stage name.
   */
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
  /** Concurrency reserved for the worker; undefined: none (it shares the account's unreserved pool). */
  readonly workerReservedConcurrency?: number;
}

const STAGE_PATTERN = /^[a-z][a-z0-9-]{0,19}$/;

/**
 * Eight hex characters unique to one creation of the stack (the first group of its CloudFormation
 * stack id's UUID). Names of resources a stack may leave behind (retained secret, log groups) carry
 * it: a deleted stack's leftovers then never block creating the stack again under the same name.
 */
export function stackInstanceSuffix(scope: IConstruct): string {
  return Fn.select(0, Fn.split('-', Fn.select(2, Fn.split('/', Stack.of(scope).stackId))));
}

/** Stages that are production-like unless the `productionStages` context names others. */
export const DEFAULT_PRODUCTION_STAGES = ['prod'];

export interface StageConfigInput {
  stage?: string;
  corsOrigins?: string | string[];
  allowRegistration?: string | boolean;
  /** `true`/`false`: this stage is (not) production-like, whatever its name. */
  production?: string | boolean;
  /** Comma-separated stage names that are production-like (default `prod`). */
  productionStages?: string | string[];
  /** A number, or `none` for no reservation (accounts whose concurrency quota is too small to reserve). */
  workerReservedConcurrency?: string | number;
}

const list = (value: string | string[]): string[] =>
  (Array.isArray(value) ? value : value.split(',')).map((s) => s.trim()).filter(Boolean);

export function stageConfig(input: StageConfigInput = {}): StageConfig {
  const stage = input.stage ?? 'dev';
  if (!STAGE_PATTERN.test(stage)) {
    throw new Error(`invalid stage "${stage}": use lowercase letters, digits and dashes (e.g. dev, prod)`);
  }
  const isProd =
    input.production !== undefined
      ? flag('production', input.production)
      : list(input.productionStages ?? DEFAULT_PRODUCTION_STAGES).includes(stage);
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
    // Production-like stages have registration off unless asked for explicitly.
    allowRegistration: allowRegistration ?? (isProd ? false : undefined),
    throttle: isProd ? { rateLimit: 500, burstLimit: 1000 } : { rateLimit: 100, burstLimit: 200 },
    workerReservedConcurrency: reservedConcurrency(input.workerReservedConcurrency),
  };
}

function flag(name: string, value: string | boolean): boolean {
  const text = String(value).trim().toLowerCase();
  if (text === 'true') return true;
  if (text === 'false') return false;
  throw new Error(`invalid ${name} "${String(value)}": use true or false`);
}

function reservedConcurrency(value: string | number | undefined): number | undefined {
  if (value === undefined) return TASK_QUEUE.reservedConcurrency;
  if (String(value).trim().toLowerCase() === 'none') return undefined;
  const n = Number(value);
  // At least 2: the task queue's event source mapping cannot run below that (its maxConcurrency minimum).
  if (!Number.isInteger(n) || n < 2) {
    throw new Error(`invalid workerReservedConcurrency "${String(value)}": a whole number of at least 2, or none`);
  }
  return n;
}
