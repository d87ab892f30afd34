import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/platform/config.js';
import { createAwsDeps, MissingEnvError, UndeclaredPortError } from '../../shared/platform/aws/index.js';
import { systemClock } from '../../shared/platform/ports.js';
import { Store } from '../../shared/platform/store/client.js';

const sqs = mockClient(SQSClient);
const sm = mockClient(SecretsManagerClient);

afterEach(() => {
  sqs.reset();
  sm.reset();
});

const store = new Store({ tableName: 'supervisor', endpoint: 'http://127.0.0.1:1' });

describe('createAwsDeps', () => {
  it('builds without any port configured; a port without its variable fails when used, naming the variable', async () => {
    const deps = createAwsDeps(parseConfig({}), store, systemClock);
    expect(deps.signer.algorithm).toBe('ES256');
    await expect(deps.queue.send({ a: 1 })).rejects.toThrow(MissingEnvError);
    await expect(deps.queue.send({ a: 1 })).rejects.toThrow(/TASK_QUEUE_URL/);
    await expect(deps.workflows.start('x', {})).rejects.toThrow(/STATE_MACHINE_ARN/);
    await expect(deps.scheduler.remove('x')).rejects.toThrow(/SCHEDULE_GROUP/);
    await expect(deps.events.publish('x', {})).rejects.toThrow(/EVENT_BUS_NAME/);
    await expect(deps.secrets.get('x')).rejects.toThrow(/SECRET_PREFIX/);
    await expect(deps.signer.jwks()).rejects.toThrow(/SIGNING_KEY_ID/);
    await expect(deps.connections.post('c', {})).rejects.toThrow(/WS_MANAGEMENT_ENDPOINT/);
    await expect(deps.appSecret()).rejects.toThrow(/APP_SECRET_ARN/);
  });

  it('wires the adapters to the environment', async () => {
    sqs.on(SendMessageCommand).resolves({});
    const deps = createAwsDeps(parseConfig({ TASK_QUEUE_URL: 'https://sqs.example/q' }), store, systemClock);
    await deps.queue.send({ task_id: 't' }, { delaySeconds: 3 });
    expect(sqs.commandCalls(SendMessageCommand)[0].args[0].input).toMatchObject({ QueueUrl: 'https://sqs.example/q', DelaySeconds: 3 });
  });

  it('appSecret reads the secret once and caches it', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: 'app-secret-value' });
    const deps = createAwsDeps(parseConfig({ APP_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:1:secret:app' }), store, systemClock);
    const [a, b] = await Promise.all([deps.appSecret(), deps.appSecret()]);
    expect(a.toString()).toBe('app-secret-value');
    expect(b).toBe(a);
    await deps.appSecret();
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(sm.commandCalls(GetSecretValueCommand)[0].args[0].input).toEqual({ SecretId: 'arn:aws:secretsmanager:eu-west-1:1:secret:app' });
  });

  it('gives a function only the ports FUNCTION_PORTS declares for it: any other fails at the call, naming port and function', async () => {
    const deps = createAwsDeps(parseConfig({ SUPERVISOR_FUNCTION: 'docs', TASK_QUEUE_URL: 'https://sqs.example/q' }), store, systemClock);
    await expect(deps.queue.send({ a: 1 })).rejects.toThrow(UndeclaredPortError);
    await expect(deps.queue.send({ a: 1 })).rejects.toThrow(/function "docs" does not declare the queue port/);
    await expect(deps.connections.close('c')).rejects.toThrow(/connections port/);
    await expect(deps.signer.jwks()).rejects.toThrow(/signer port/);
    await expect(deps.appSecret()).rejects.toThrow(/appSecret port/);
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it('keeps the declared ports: auth may close sockets (an unset endpoint is a MissingEnvError, not a silent no-op)', async () => {
    const deps = createAwsDeps(parseConfig({ SUPERVISOR_FUNCTION: 'auth' }), store, systemClock);
    await expect(deps.connections.close('c')).rejects.toThrow(MissingEnvError);
    await expect(deps.queue.send({ a: 1 })).rejects.toThrow(UndeclaredPortError);
  });

  it('refuses a function label the manifest does not know', () => {
    expect(() => createAwsDeps(parseConfig({ SUPERVISOR_FUNCTION: 'nope' }), store, systemClock)).toThrow(/FUNCTION_PORTS/);
  });
});
