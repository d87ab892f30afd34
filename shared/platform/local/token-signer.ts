import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { Jwk, TokenSigner } from '../ports.js';
import { keysDir, readOrCreate } from './files.js';

interface KeyFile {
  version: 1;
  alg: 'ES256';
  privateJwk: JWK;
}

/**
 * ES256 signer with a local key pair: created at first start and kept in
 * `<dataDir>/keys/signing-key.json` (mode 0600), reused afterwards so tokens survive restarts.
 * `kid` is the RFC 7638 thumbprint of the public key.
 */
export class LocalTokenSigner implements TokenSigner {
  readonly algorithm = 'ES256' as const;

  private constructor(
    private readonly privateKey: CryptoKey,
    private readonly publicJwk: Jwk,
    private readonly issuer?: string,
  ) {}

  /** `dataDir` null = a fresh in-memory key (tests). `issuer` fills `iss` when the claims have none. */
  static async create(dataDir: string | null, issuer?: string): Promise<LocalTokenSigner> {
    const raw = dataDir === null ? await newKeyFile() : await readOrCreate(join(await keysDir(dataDir), 'signing-key.json'), newKeyFile);
    const file = JSON.parse(raw.toString('utf8')) as KeyFile;
    if (file.alg !== 'ES256' || file.privateJwk?.kty !== 'EC' || file.privateJwk.crv !== 'P-256' || !file.privateJwk.d) {
      throw new Error('signing-key.json does not hold an ES256 (P-256) private key: delete it to create a new one');
    }
    const privateKey = (await importJWK(file.privateJwk, 'ES256')) as CryptoKey;
    const { kty, crv, x, y } = file.privateJwk;
    const pub = { kty: kty as string, crv, x, y };
    const kid = await calculateJwkThumbprint(pub, 'sha256');
    return new LocalTokenSigner(privateKey, { ...pub, kid, alg: 'ES256', use: 'sig' }, issuer);
  }

  async sign(claims: Record<string, unknown>): Promise<string> {
    const payload = this.issuer && claims.iss === undefined ? { ...claims, iss: this.issuer } : claims;
    return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: this.publicJwk.kid }).sign(this.privateKey);
  }

  async jwks(): Promise<{ keys: Jwk[] }> {
    return { keys: [{ ...this.publicJwk }] };
  }
}

async function newKeyFile(): Promise<Buffer> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const file: KeyFile = { version: 1, alg: 'ES256', privateJwk: await exportJWK(privateKey) };
  return Buffer.from(JSON.stringify(file, null, 2));
}
