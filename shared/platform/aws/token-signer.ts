import { createHash, createPublicKey } from 'node:crypto';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { Jwk, TokenSigner } from '../ports.js';
import { derToJose } from './ecdsa.js';
import { lazy } from './util.js';

const KMS_RAW_MESSAGE_MAX = 4096;

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** A stable key id derived from the KMS key id (the private key never leaves KMS). */
export function kidForKeyId(keyId: string): string {
  return createHash('sha256').update(keyId).digest('base64url').slice(0, 22);
}

/**
 * ES256 JWTs signed by an asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY). The public key is read
 * once with GetPublicKey and published as a JWK. `issuer` fills `iss` when the claims have none.
 */
export class KmsTokenSigner implements TokenSigner {
  readonly algorithm = 'ES256' as const;
  readonly kid: string;
  private readonly sdk = lazy(async () => {
    const mod = await import('@aws-sdk/client-kms');
    return { mod, client: new mod.KMSClient({}) as KMSClient };
  });
  private readonly publicJwk = lazy(async (): Promise<Jwk> => {
    const { mod, client } = await this.sdk();
    const out = await client.send(new mod.GetPublicKeyCommand({ KeyId: this.keyId }));
    if (!out.PublicKey) throw new Error(`KMS key ${this.keyId} answered no public key`);
    if (out.KeySpec && out.KeySpec !== 'ECC_NIST_P256') throw new Error(`KMS key ${this.keyId} is ${out.KeySpec}, ES256 needs ECC_NIST_P256`);
    const jwk = createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' }).export({ format: 'jwk' });
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') throw new Error(`KMS key ${this.keyId} is not a P-256 key`);
    return { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y, kid: this.kid, alg: 'ES256', use: 'sig' };
  });

  constructor(
    readonly keyId: string,
    readonly issuer?: string,
  ) {
    this.kid = kidForKeyId(keyId);
  }

  async sign(claims: Record<string, unknown>): Promise<string> {
    const payload = this.issuer && claims.iss === undefined ? { ...claims, iss: this.issuer } : claims;
    const header = { alg: 'ES256', typ: 'JWT', kid: this.kid };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
    const { mod, client } = await this.sdk();
    const message = Buffer.from(signingInput, 'utf8');
    // KMS signs RAW messages up to 4096 bytes; a larger token is hashed here and sent as DIGEST (same signature).
    const raw = message.length <= KMS_RAW_MESSAGE_MAX;
    const out = await client.send(
      new mod.SignCommand({
        KeyId: this.keyId,
        Message: raw ? message : createHash('sha256').update(message).digest(),
        MessageType: raw ? 'RAW' : 'DIGEST',
        SigningAlgorithm: 'ECDSA_SHA_256',
      }),
    );
    if (!out.Signature) throw new Error(`KMS Sign answered no signature for key ${this.keyId}`);
    return `${signingInput}.${b64url(derToJose(out.Signature, 32))}`;
  }

  async jwks(): Promise<{ keys: Jwk[] }> {
    return { keys: [{ ...(await this.publicJwk()) }] };
  }
}
