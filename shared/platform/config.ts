import { TABLE } from './infra.js';

/**
 * Configuration read from the environment. The names are the contract between the CDK stack (which
 * sets them on each function) and the code; the local runtime sets the same names for itself.
 */
export const ENV = {
  stage: 'STAGE',
  tableName: 'TABLE_NAME',
  dynamodbEndpoint: 'DYNAMODB_ENDPOINT',
  taskQueueUrl: 'TASK_QUEUE_URL',
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
  issuer: 'TOKEN_ISSUER',
  allowRegistration: 'ALLOW_REGISTRATION',
  corsOrigins: 'CORS_ORIGINS',
  accessTokenTtl: 'ACCESS_TOKEN_TTL_SECONDS',
  refreshTokenTtl: 'REFRESH_TOKEN_TTL_SECONDS',
  defaultProvider: 'DEFAULT_PROVIDER_ID',
} as const;

export interface Config {
  stage: string;
  tableName: string;
  issuer: string;
  audience: string;
  allowRegistration: boolean;
  corsOrigins: string[];
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
}

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

export function loadConfig(): Config {
  return {
    stage: env(ENV.stage) ?? 'local',
    tableName: env(ENV.tableName) ?? TABLE.defaultName,
    issuer: env(ENV.issuer) ?? 'supervisor',
    audience: 'supervisor-api',
    allowRegistration: (env(ENV.allowRegistration) ?? 'true') !== 'false',
    corsOrigins: (env(ENV.corsOrigins) ?? '*').split(',').map((s) => s.trim()).filter(Boolean),
    accessTokenTtlSeconds: Number(env(ENV.accessTokenTtl) ?? 900),
    refreshTokenTtlSeconds: Number(env(ENV.refreshTokenTtl) ?? 30 * 24 * 3600),
  };
}
