import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { SecretsManagerStore } from '../../shared/platform/aws/secret-store.js';
import { LocalSecretStore } from '../../shared/platform/local/secret-store.js';
import { loadOrCreateAppSecret } from '../../shared/platform/local/app-secret.js';
import type { SecretStore } from '../../shared/platform/ports.js';
import { serviceError, withTempDir } from './support.js';

const sm = mockClient(SecretsManagerClient);
const ARN_PREFIX = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:';

/** An in-memory Secrets Manager behind the mocked client, with its error codes. */
function fakeSecretsManager() {
  const secrets = new Map<string, { arn: string; value: string; deleted: boolean }>();
  const find = (id: string) => [...secrets.values()].find((s) => s.arn === id) ?? secrets.get(id);
  sm.reset();
  sm.on(CreateSecretCommand).callsFake((input: { Name: string; SecretString: string }) => {
    const existing = secrets.get(input.Name);
    if (existing?.deleted) throw serviceError('InvalidRequestException', "You can't create this secret because a secret with this name is already scheduled for deletion.");
    if (existing) throw serviceError('ResourceExistsException', `The operation failed because the secret ${input.Name} already exists.`);
    const arn = `${ARN_PREFIX}${input.Name}-AbCdEf`;
    secrets.set(input.Name, { arn, value: input.SecretString, deleted: false });
    return { ARN: arn, Name: input.Name };
  });
  sm.on(PutSecretValueCommand).callsFake((input: { SecretId: string; SecretString: string }) => {
    const s = find(input.SecretId);
    if (!s) throw serviceError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    if (s.deleted) throw serviceError('InvalidRequestException', 'You tried to perform the operation on a secret that is currently marked deleted.');
    s.value = input.SecretString;
    return { ARN: s.arn };
  });
  sm.on(GetSecretValueCommand).callsFake((input: { SecretId: string }) => {
    const s = find(input.SecretId);
    if (!s) throw serviceError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    if (s.deleted) throw serviceError('InvalidRequestException', 'You tried to perform the operation on a secret that is currently marked deleted.');
    return { ARN: s.arn, SecretString: s.value };
  });
  sm.on(DeleteSecretCommand).callsFake((input: { SecretId: string }) => {
    const s = find(input.SecretId);
    if (!s) throw serviceError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    if (s.deleted) throw serviceError('InvalidRequestException', 'You tried to perform the operation on a secret that is currently marked deleted.');
    s.deleted = true;
    return { ARN: s.arn };
  });
  sm.on(RestoreSecretCommand).callsFake((input: { SecretId: string }) => {
    const s = find(input.SecretId)!;
    s.deleted = false;
    return { ARN: s.arn };
  });
  return secrets;
}

const implementations: Array<[string, (fn: (store: SecretStore) => Promise<void>) => Promise<void>]> = [
  ['local (in memory)', (fn) => fn(new LocalSecretStore(null))],
  ['local (encrypted file)', (fn) => withTempDir((dir) => fn(new LocalSecretStore(dir)))],
  [
    'aws (Secrets Manager, mocked client)',
    (fn) => {
      fakeSecretsManager();
      return fn(new SecretsManagerStore('supervisor/test/'));
    },
  ],
];

afterEach(() => sm.reset());

describe.each(implementations)('SecretStore contract: %s', (_name, using) => {
  it('put answers an opaque reference; get answers the value', () =>
    using(async (store) => {
      const ref = await store.put('provider-anthropic', 'sk-ant-123 ✓');
      expect(typeof ref).toBe('string');
      expect(ref).not.toContain('sk-ant');
      expect(await store.get(ref)).toBe('sk-ant-123 ✓');
    }));

  it('put of an existing name replaces the value under the same reference', () =>
    using(async (store) => {
      const first = await store.put('provider-openai', 'v1');
      const second = await store.put('provider-openai', 'v2');
      expect(second).toBe(first);
      expect(await store.get(first)).toBe('v2');
    }));

  it('remove makes it unreadable; removing twice is fine', () =>
    using(async (store) => {
      const ref = await store.put('provider-x', 'secret');
      await store.remove(ref);
      await expect(store.get(ref)).rejects.toThrow();
      await expect(store.remove(ref)).resolves.toBeUndefined();
    }));

  it('a removed name can be put again', () =>
    using(async (store) => {
      const ref = await store.put('provider-y', 'old');
      await store.remove(ref);
      const again = await store.put('provider-y', 'new');
      expect(await store.get(again)).toBe('new');
    }));

  it('get of an unknown reference is an error', () =>
    using(async (store) => {
      const known = await store.put('provider-z', 'v');
      await expect(store.get(known.replace('provider-z', 'provider-unknown'))).rejects.toThrow();
    }));
});

describe('SecretsManagerStore commands', () => {
  it('CreateSecret with the prefixed name, DeleteSecret with a 7-day recovery window', async () => {
    fakeSecretsManager();
    const store = new SecretsManagerStore('supervisor/prod/');
    const ref = await store.put('p1', 'v');
    await store.remove(ref);
    expect(sm.commandCalls(CreateSecretCommand)[0].args[0].input).toEqual({ Name: 'supervisor/prod/p1', SecretString: 'v' });
    expect(ref).toMatch(/^arn:aws:secretsmanager:.*:secret:supervisor\/prod\/p1-/);
    expect(sm.commandCalls(DeleteSecretCommand)[0].args[0].input).toEqual({ SecretId: ref, RecoveryWindowInDays: 7 });
  });

  it('putting a name pending deletion restores it and writes the value', async () => {
    fakeSecretsManager();
    const store = new SecretsManagerStore('p/');
    const ref = await store.put('k', 'one');
    await store.remove(ref);
    await store.put('k', 'two');
    expect(sm.commandCalls(RestoreSecretCommand)).toHaveLength(1);
    expect(await store.get(ref)).toBe('two');
  });
});

describe('LocalSecretStore at rest', () => {
  it('encrypts values in secrets.json with a 0600 key file, and a new instance reads them', () =>
    withTempDir(async (dir) => {
      const ref = await new LocalSecretStore(dir).put('provider-a', 'plain-text-value');
      expect(ref).toBe('local:secret:provider-a');
      const file = await readFile(join(dir, 'secrets.json'), 'utf8');
      expect(file).not.toContain('plain-text-value');
      expect((await stat(join(dir, 'keys', 'secrets.key'))).mode & 0o777).toBe(0o600);
      expect((await stat(join(dir, 'secrets.json'))).mode & 0o777).toBe(0o600);
      expect(await new LocalSecretStore(dir).get(ref)).toBe('plain-text-value');
    }));

  it('a tampered value fails authentication instead of decrypting to garbage', () =>
    withTempDir(async (dir) => {
      const store = new LocalSecretStore(dir);
      const ref = await store.put('provider-a', 'value');
      const file = JSON.parse(await readFile(join(dir, 'secrets.json'), 'utf8')) as { secrets: Record<string, { data: string }> };
      const data = Buffer.from(file.secrets['provider-a'].data, 'base64');
      data[0] ^= 1;
      file.secrets['provider-a'].data = data.toString('base64');
      await writeFile(join(dir, 'secrets.json'), JSON.stringify(file));
      await expect(new LocalSecretStore(dir).get(ref)).rejects.toThrow();
    }));

  it('concurrent puts all land', async () => {
    await withTempDir(async (dir) => {
      const store = new LocalSecretStore(dir);
      const refs = await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`k${i}`, `v${i}`)));
      const fresh = new LocalSecretStore(dir);
      expect(await Promise.all(refs.map((r) => fresh.get(r)))).toEqual(Array.from({ length: 20 }, (_, i) => `v${i}`));
    });
  });

  it('refuses names Secrets Manager refuses', async () => {
    await expect(new LocalSecretStore(null).put('bad name', 'v')).rejects.toThrow(/invalid secret name/);
  });
});

describe('loadOrCreateAppSecret', () => {
  it('creates 32 bytes once (mode 0600) and reuses them', () =>
    withTempDir(async (dir) => {
      const [a, b] = await Promise.all([loadOrCreateAppSecret(dir), loadOrCreateAppSecret(dir)]);
      expect(a).toHaveLength(32);
      expect(b.equals(a)).toBe(true);
      expect((await loadOrCreateAppSecret(dir)).equals(a)).toBe(true);
      expect((await stat(join(dir, 'keys', 'app-secret'))).mode & 0o777).toBe(0o600);
      expect((await loadOrCreateAppSecret(null)).equals(a)).toBe(false);
    }));
});
