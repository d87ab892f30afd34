import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretStore } from '../ports.js';
import { errorName, lazy } from './util.js';

/**
 * `SecretStore` on Secrets Manager: secret `<prefix><name>`, referenced by its ARN. Removal schedules
 * deletion with a 7-day recovery window; putting a name whose secret is pending deletion restores it
 * and writes the new value.
 */
/** How Secrets Manager words an InvalidRequestException about a secret pending deletion. */
const PENDING_DELETION = /scheduled for deletion|marked (for )?delet(ed|ion)/i;

export class SecretsManagerStore implements SecretStore {
  private readonly sdk = lazy(async () => {
    const mod = await import('@aws-sdk/client-secrets-manager');
    return { mod, client: new mod.SecretsManagerClient({}) as SecretsManagerClient };
  });

  constructor(readonly prefix: string) {}

  async put(name: string, value: string): Promise<string> {
    const { mod, client } = await this.sdk();
    const Name = this.prefix + name;
    try {
      const out = await client.send(new mod.CreateSecretCommand({ Name, SecretString: value }));
      if (!out.ARN) throw new Error(`CreateSecret answered no ARN for ${Name}`);
      return out.ARN;
    } catch (err) {
      const code = errorName(err);
      if (code === 'InvalidRequestException' && PENDING_DELETION.test((err as Error).message)) {
        await client.send(new mod.RestoreSecretCommand({ SecretId: Name }));
      } else if (code !== 'ResourceExistsException') {
        throw err;
      }
    }
    const out = await client.send(new mod.PutSecretValueCommand({ SecretId: Name, SecretString: value }));
    if (!out.ARN) throw new Error(`PutSecretValue answered no ARN for ${Name}`);
    return out.ARN;
  }

  async get(ref: string): Promise<string> {
    const { mod, client } = await this.sdk();
    const out = await client.send(new mod.GetSecretValueCommand({ SecretId: ref }));
    if (out.SecretString !== undefined) return out.SecretString;
    if (out.SecretBinary !== undefined) return Buffer.from(out.SecretBinary).toString('utf8');
    throw new Error(`secret ${ref} has no value`);
  }

  /**
   * Schedules deletion (7-day recovery window). ForceDeleteWithoutRecovery is left out rather than sent
   * as false: Secrets Manager refuses it together with RecoveryWindowInDays. A missing secret, or one
   * already scheduled for deletion, is not an error.
   */
  async remove(ref: string): Promise<void> {
    const { mod, client } = await this.sdk();
    try {
      await client.send(new mod.DeleteSecretCommand({ SecretId: ref, RecoveryWindowInDays: 7 }));
    } catch (err) {
      const code = errorName(err);
      if (code === 'ResourceNotFoundException') return;
      if (code === 'InvalidRequestException' && PENDING_DELETION.test((err as Error).message)) return;
      throw err;
    }
  }
}
