import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, ENV, getConfig, installConfig, parseConfig, resetConfig } from '../../../shared/platform/config.js';

afterEach(() => resetConfig());

function rejection(env: Record<string, string>): ConfigError {
  try {
    parseConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('the configuration was accepted');
}

describe('parseConfig', () => {
  it('has the documented defaults when nothing is set', () => {
    expect(parseConfig({})).toEqual({
      stage: 'local',
      tableName: 'supervisor',
      dynamodbEndpoint: undefined,
      issuer: 'supervisor',
      audience: 'supervisor-api',
      allowRegistration: false,
      corsOrigins: ['*'],
      accessTokenTtlSeconds: 900,
      refreshTokenTtlSeconds: 2_592_000,
      authCacheSeconds: 10,
      defaultProviderId: undefined,
      cliProviderEnabled: false,
      cliEnvAllowCredentials: [],
      outboundAllowPrivate: false,
      pluginsAllowPrivateUrls: false,
      logLevel: 'INFO',
      pluginRetryBaseMs: 30_000,
      pluginMaxAttempts: 5,
      docsAssetsDir: undefined,
      version: '0.1.0',
      metricsRetentionDays: 7,
      alertEvaluatorTickMs: 10_000,
      exportInlineMaxBytes: 5_242_880,
      resourcePools: {
        worker_concurrency: 100,
        provider_concurrency: 100,
        cpu: 200,
        memory_mb: 204_800,
        disk_mb: 102_400,
        gpu: 0,
        network_mbps: 10_000,
        cli_runners: [],
      },
      aws: {
        taskQueueUrl: undefined,
        stateMachineArn: undefined,
        scheduleGroup: undefined,
        schedulerRoleArn: undefined,
        scheduleTargetArn: undefined,
        scheduleDlqArn: undefined,
        eventBusName: undefined,
        signingKeyId: undefined,
        appSecretArn: undefined,
        wsManagementEndpoint: undefined,
        secretPrefix: undefined,
      },
    });
  });

  it('EXPORT_INLINE_MAX_BYTES: whole bytes up to 5 MiB (a Lambda answer is at most 6 MB); EXPORT_BUCKET goes to the files port', () => {
    expect(parseConfig({ EXPORT_INLINE_MAX_BYTES: '2048', EXPORT_BUCKET: 'files-bucket' })).toMatchObject({ exportInlineMaxBytes: 2048, aws: { exportBucket: 'files-bucket' } });
    for (const bad of ['0', '5242881', '1.5', 'big']) {
      expect(() => parseConfig({ EXPORT_INLINE_MAX_BYTES: bad }), bad).toThrow(/EXPORT_INLINE_MAX_BYTES/);
    }
  });

  it('treats an empty variable as unset', () => {
    expect(parseConfig({ STAGE: '', ACCESS_TOKEN_TTL_SECONDS: '', ALLOW_REGISTRATION: '', DEFAULT_PROVIDER_ID: '' })).toMatchObject({
      stage: 'local',
      accessTokenTtlSeconds: 900,
      allowRegistration: false,
      defaultProviderId: undefined,
    });
  });

  it('keeps self-registration off unless set, or the stage is explicitly development', () => {
    for (const stage of ['local', 'dev', 'prod', 'staging', 'Development']) {
      expect(parseConfig({ STAGE: stage }).allowRegistration, stage).toBe(false);
    }
    expect(parseConfig({ STAGE: 'development' }).allowRegistration).toBe(true);
    expect(parseConfig({ STAGE: 'development', ALLOW_REGISTRATION: 'false' }).allowRegistration).toBe(false);
    expect(parseConfig({ STAGE: 'prod', ALLOW_REGISTRATION: 'true' }).allowRegistration).toBe(true);
  });

  it('reads every variable under its name', () => {
    const config = parseConfig({
      STAGE: 'prod',
      TABLE_NAME: 't',
      DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000',
      TOKEN_ISSUER: 'iss',
      ALLOW_REGISTRATION: 'false',
      CORS_ORIGINS: ' https://a.example , ,https://b.example',
      ACCESS_TOKEN_TTL_SECONDS: '60',
      REFRESH_TOKEN_TTL_SECONDS: '3600',
      DEFAULT_PROVIDER_ID: 'openai-main',
      CLI_PROVIDER_ENABLED: 'true',
      LOG_LEVEL: 'debug',
      DOCS_ASSETS_DIR: '/var/task/swagger-ui',
      SUPERVISOR_VERSION: '1.2.3',
      TASK_QUEUE_URL: 'https://sqs.example/q',
      SECRET_PREFIX: 'supervisor/prod/',
    });
    expect(config).toMatchObject({
      stage: 'prod',
      tableName: 't',
      dynamodbEndpoint: 'http://127.0.0.1:8000',
      issuer: 'iss',
      allowRegistration: false,
      corsOrigins: ['https://a.example', 'https://b.example'],
      accessTokenTtlSeconds: 60,
      refreshTokenTtlSeconds: 3600,
      defaultProviderId: 'openai-main',
      cliProviderEnabled: true,
      logLevel: 'DEBUG',
      docsAssetsDir: '/var/task/swagger-ui',
      version: '1.2.3',
      aws: { taskQueueUrl: 'https://sqs.example/q', secretPrefix: 'supervisor/prod/' },
    });
  });

  it('ignores variables it does not know', () => {
    expect(parseConfig({ HOME: '/root', PATH: '/bin' })).toEqual(parseConfig({}));
  });

  it.each([
    [ENV.allowRegistration, 'no'],
    [ENV.cliProviderEnabled, '1'],
    [ENV.accessTokenTtl, 'abc'],
    [ENV.accessTokenTtl, '0'],
    [ENV.refreshTokenTtl, '1.5'],
    [ENV.refreshTokenTtl, '-60'],
    [ENV.logLevel, 'verbose'],
    [ENV.dynamodbEndpoint, 'not a url'],
  ])('rejects %s=%j, naming the variable and the value', (variable, value) => {
    const err = rejection({ [variable]: value });
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0].variable).toBe(variable);
    expect(err.message).toContain(variable);
    expect(err.message).toContain(JSON.stringify(value));
  });

  it('reports every invalid variable at once', () => {
    const err = rejection({ ALLOW_REGISTRATION: 'yes', ACCESS_TOKEN_TTL_SECONDS: 'soon' });
    expect(err.issues.map((i) => i.variable).sort()).toEqual(['ACCESS_TOKEN_TTL_SECONDS', 'ALLOW_REGISTRATION']);
  });
});

describe('getConfig', () => {
  it('parses the environment once and answers the same object', () => {
    expect(getConfig()).toBe(getConfig());
  });

  it('answers an installed configuration until reset', () => {
    const installed = { ...parseConfig({}), stage: 'installed' };
    installConfig(installed);
    expect(getConfig()).toBe(installed);
    resetConfig();
    expect(getConfig().stage).not.toBe('installed');
  });
});
