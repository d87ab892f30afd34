import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SecretStore } from '../ports.js';
import { keysDir, readOrCreate, writeFileAtomic } from './files.js';

const REF_PREFIX = 'local:secret:';
const NAME_PATTERN = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

interface SealedSecret {
  iv: string;
  tag: string;
  data: string;
  updated_at: string;
}

interface SecretsFile {
  version: 1;
  secrets: Record<string, SealedSecret>;
}

export class SecretNotFoundError extends Error {
  override readonly name = 'ResourceNotFoundException';
  constructor(ref: string) {
    super(`secret ${ref} not found`);
  }
}

/**
 * Secrets Manager stand-in: values encrypted at rest with AES-256-GCM in `<dataDir>/secrets.json`
 * (the secret's name is the additional authenticated data, so a value cannot be moved to another
 * name), under a key in `<dataDir>/keys/secrets.key` created at first start. The reference answered
 * by `put` is `local:secret:<name>`. `dataDir` null keeps everything in memory (tests).
 * Names follow Secrets Manager's rule (1-512 of `A-Za-z0-9/_+=.@-`); a missing secret throws an error
 * named `ResourceNotFoundException`, like the real service.
 */
export class LocalSecretStore implements SecretStore {
  private key: Promise<Buffer> | undefined;
  private memory: SecretsFile = { version: 1, secrets: {} };
  /** Serialises read-modify-write cycles of the file. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly dataDir: string | null) {}

  async put(name: string, value: string): Promise<string> {
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      throw new Error(`invalid secret name '${String(name)}': 1-512 characters of A-Z a-z 0-9 / _ + = . @ -`);
    }
    if (typeof value !== 'string') throw new Error('secret value must be a string');
    if (Buffer.byteLength(value) > 65536) throw new Error('secret value exceeds 65536 bytes');
    const key = await this.getKey();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(name, 'utf8'));
    const data = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    const sealed: SealedSecret = {
      iv: iv.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
      data: data.toString('base64'),
      updated_at: new Date().toISOString(),
    };
    await this.mutate((file) => {
      file.secrets[name] = sealed;
    });
    return REF_PREFIX + name;
  }

  async get(ref: string): Promise<string> {
    const name = parseRef(ref);
    const file = await this.serialised(() => this.load());
    const sealed = Object.hasOwn(file.secrets, name) ? file.secrets[name] : undefined;
    if (!sealed) throw new SecretNotFoundError(ref);
    const decipher = createDecipheriv('aes-256-gcm', await this.getKey(), Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(Buffer.from(name, 'utf8'));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
  }

  /** Deleting a secret that does not exist is not an error. */
  async remove(ref: string): Promise<void> {
    const name = parseRef(ref);
    await this.mutate((file) => {
      delete file.secrets[name];
    });
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private mutate(change: (file: SecretsFile) => void): Promise<void> {
    return this.serialised(async () => {
      const file = await this.load();
      change(file);
      if (this.dataDir === null) this.memory = file;
      else await writeFileAtomic(join(this.dataDir, 'secrets.json'), JSON.stringify(file, null, 2));
    });
  }

  private async load(): Promise<SecretsFile> {
    if (this.dataDir === null) return structuredClone(this.memory);
    try {
      const file = JSON.parse(await readFile(join(this.dataDir, 'secrets.json'), 'utf8')) as SecretsFile;
      if (file.version !== 1 || typeof file.secrets !== 'object' || file.secrets === null) {
        throw new Error('secrets.json has an unknown format');
      }
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, secrets: {} };
      throw err;
    }
  }

  private getKey(): Promise<Buffer> {
    this.key ??= (async () => {
      if (this.dataDir === null) return randomBytes(32);
      const key = await readOrCreate(join(await keysDir(this.dataDir), 'secrets.key'), () => randomBytes(32));
      if (key.length !== 32) throw new Error('keys/secrets.key must hold 32 bytes');
      return key;
    })();
    return this.key;
  }
}

function parseRef(ref: string): string {
  if (typeof ref !== 'string' || !ref.startsWith(REF_PREFIX) || ref.length === REF_PREFIX.length) {
    throw new SecretNotFoundError(String(ref));
  }
  return ref.slice(REF_PREFIX.length);
}
