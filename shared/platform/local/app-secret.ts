import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { keysDir, readOrCreate } from './files.js';

const APP_SECRET_BYTES = 32;

/**
 * The key for HMAC-signed cursors and other server-side MACs: 32 random bytes kept in
 * `<dataDir>/keys/app-secret` (mode 0600), created at first start and reused afterwards.
 * `null` = a fresh in-memory secret (tests).
 */
export async function loadOrCreateAppSecret(dataDir: string | null): Promise<Buffer> {
  if (dataDir === null) return randomBytes(APP_SECRET_BYTES);
  const path = join(await keysDir(dataDir), 'app-secret');
  const secret = await readOrCreate(path, () => randomBytes(APP_SECRET_BYTES));
  if (secret.length !== APP_SECRET_BYTES) {
    throw new Error(`${path} holds ${secret.length} bytes, expected ${APP_SECRET_BYTES}: delete it to create a new one`);
  }
  return secret;
}
