import { createHash, generateKeyPairSync, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { JwtVerifier } from 'aws-jwt-verify';
import { mockClient } from 'aws-sdk-client-mock';
import { calculateJwkThumbprint, compactVerify, createLocalJWKSet, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { derToJose, joseToDer } from '../../shared/platform/aws/ecdsa.js';
import { KmsTokenSigner, kidForKeyId } from '../../shared/platform/aws/token-signer.js';
import { LocalTokenSigner } from '../../shared/platform/local/token-signer.js';
import type { TokenSigner } from '../../shared/platform/ports.js';
import { withTempDir } from './support.js';

const kms = mockClient(KMSClient);
const KEY_ID = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** A KMS key behind the mocked client, backed by a real P-256 key pair (KMS answers DER signatures). */
function fakeKms(): { privateKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  kms.reset();
  kms.on(GetPublicKeyCommand).resolves({
    KeyId: KEY_ID,
    KeySpec: 'ECC_NIST_P256',
    KeyUsage: 'SIGN_VERIFY',
    PublicKey: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })),
    SigningAlgorithms: ['ECDSA_SHA_256'],
  });
  kms.on(SignCommand).callsFake((input: { Message: Uint8Array; MessageType: string }) => {
    if (input.MessageType !== 'RAW') throw new Error('fake KMS signs RAW messages only');
    return { KeyId: KEY_ID, SigningAlgorithm: 'ECDSA_SHA_256', Signature: new Uint8Array(nodeSign('sha256', input.Message, { key: privateKey, dsaEncoding: 'der' })) };
  });
  return { privateKey };
}

const implementations: Array<[string, () => Promise<TokenSigner>]> = [
  ['local (jose key pair)', () => LocalTokenSigner.create(null, 'supervisor-test')],
  [
    'aws (KMS, mocked client with a real key)',
    async () => {
      fakeKms();
      return new KmsTokenSigner(KEY_ID, 'supervisor-test');
    },
  ],
];

afterEach(() => kms.reset());

const claims = () => {
  const now = Math.floor(Date.now() / 1000);
  return { sub: 'user-1', sid: 'sess-1', username: 'alice', roles: ['admin'], iss: 'supervisor-test', aud: 'supervisor-api', iat: now, nbf: now - 5, exp: now + 900, token_use: 'access' };
};

describe.each(implementations)('TokenSigner contract: %s', (_name, make) => {
  it('publishes one ES256 P-256 signing key with a kid', async () => {
    const signer = await make();
    expect(signer.algorithm).toBe('ES256');
    const { keys } = await signer.jwks();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(keys[0].kid).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(keys[0]).not.toHaveProperty('d');
    expect((await signer.jwks()).keys[0]).toEqual(keys[0]); // stable
  });

  it('signs JWTs that verify against its JWKS (jose), with alg/typ/kid in the header', async () => {
    const signer = await make();
    const signed = claims();
    const token = await signer.sign(signed);
    const jwks = await signer.jwks();
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'JWT', kid: jwks.keys[0].kid });
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks as never), { issuer: 'supervisor-test', audience: 'supervisor-api' });
    expect(payload).toEqual(signed);
  });

  it('verifies with aws-jwt-verify seeded with the JWKS (what the API does)', async () => {
    const signer = await make();
    const verifier = JwtVerifier.create({ issuer: 'supervisor-test', audience: 'supervisor-api', jwksUri: 'https://supervisor-test.invalid/.well-known/jwks.json' });
    verifier.cacheJwks((await signer.jwks()) as never);
    const payload = await verifier.verify((await signer.sign(claims())) as never);
    expect(payload.sub).toBe('user-1');
  });

  it('a tampered token does not verify', async () => {
    const signer = await make();
    const [h, p, s] = (await signer.sign(claims())).split('.');
    const forged = Buffer.from(JSON.stringify({ ...claims(), roles: ['owner'] })).toString('base64url');
    await expect(jwtVerify(`${h}.${forged}.${s}`, createLocalJWKSet((await signer.jwks()) as never))).rejects.toThrow();
    expect(p).not.toBe(forged);
  });

  it('fills iss with its issuer when the claims have none', async () => {
    const signer = await make();
    const { iss: _drop, ...rest } = claims();
    const { payload } = await jwtVerify(await signer.sign(rest), createLocalJWKSet((await signer.jwks()) as never));
    expect(payload.iss).toBe('supervisor-test');
  });

  it('signature bytes are the 64-byte JOSE form, never DER', async () => {
    const signer = await make();
    for (let i = 0; i < 20; i++) {
      const token = await signer.sign({ ...claims(), jti: `t${i}` });
      expect(Buffer.from(token.split('.')[2], 'base64url')).toHaveLength(64);
    }
  });
});

describe('KmsTokenSigner commands', () => {
  it('Sign: RAW message = the JWS signing input, ECDSA_SHA_256, the key id; GetPublicKey once', async () => {
    fakeKms();
    const signer = new KmsTokenSigner(KEY_ID, 'iss');
    const token = await signer.sign({ sub: 'x' });
    await signer.jwks();
    await signer.jwks();
    const input = kms.commandCalls(SignCommand)[0].args[0].input;
    expect(input).toMatchObject({ KeyId: KEY_ID, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' });
    expect(Buffer.from(input.Message!).toString('utf8')).toBe(token.split('.').slice(0, 2).join('.'));
    expect(kms.commandCalls(GetPublicKeyCommand)).toHaveLength(1);
    expect(signer.kid).toBe(kidForKeyId(KEY_ID));
    expect(kidForKeyId(KEY_ID)).toBe(kidForKeyId(KEY_ID));
    expect(kidForKeyId(KEY_ID)).not.toBe(kidForKeyId(`${KEY_ID}x`));
  });

  it('a token over the 4096-byte RAW limit is signed as a SHA-256 DIGEST', async () => {
    const { privateKey } = fakeKms();
    kms.on(SignCommand).callsFake(() => ({ Signature: new Uint8Array(nodeSign('sha256', Buffer.from('unused'), { key: privateKey, dsaEncoding: 'der' })) }));
    const signer = new KmsTokenSigner(KEY_ID);
    const token = await signer.sign({ blob: 'x'.repeat(5000) });
    const input = kms.commandCalls(SignCommand)[0].args[0].input;
    expect(input.MessageType).toBe('DIGEST');
    expect(Buffer.from(input.Message!)).toEqual(createHash('sha256').update(token.split('.').slice(0, 2).join('.')).digest());
  });

  it('refuses a key that is not P-256', async () => {
    fakeKms();
    kms.on(GetPublicKeyCommand).resolves({ KeySpec: 'RSA_2048', PublicKey: new Uint8Array([1]) });
    await expect(new KmsTokenSigner(KEY_ID).jwks()).rejects.toThrow(/ECC_NIST_P256/);
  });
});

describe('LocalTokenSigner key file', () => {
  it('creates the key pair once (mode 0600) and reuses it; kid is the RFC 7638 thumbprint', () =>
    withTempDir(async (dir) => {
      const a = await LocalTokenSigner.create(dir);
      const b = await LocalTokenSigner.create(dir);
      const jwkA = (await a.jwks()).keys[0];
      expect((await b.jwks()).keys[0]).toEqual(jwkA);
      const { kid, alg: _a, use: _u, ...pub } = jwkA;
      expect(kid).toBe(await calculateJwkThumbprint(pub as never, 'sha256'));
      expect((await stat(join(dir, 'keys', 'signing-key.json'))).mode & 0o777).toBe(0o600);
      // A token from the first instance verifies with the second's keys.
      await jwtVerify(await a.sign({ sub: 'x' }), createLocalJWKSet((await b.jwks()) as never));
    }));

  it('in-memory signers each get their own key', async () => {
    const a = await LocalTokenSigner.create(null);
    const b = await LocalTokenSigner.create(null);
    expect((await a.jwks()).keys[0].kid).not.toBe((await b.jwks()).keys[0].kid);
  });
});

describe('ECDSA signature conversion (DER → JOSE r||s)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  /** A JWS signed by node's ECDSA in DER, converted, then verified by jose. */
  async function joseVerifies(der: Buffer, signingInput: string): Promise<boolean> {
    const jwk = publicKey.export({ format: 'jwk' });
    const key = await importJWK({ ...jwk, alg: 'ES256' }, 'ES256');
    try {
      await compactVerify(`${signingInput}.${derToJose(der).toString('base64url')}`, key);
      return true;
    } catch {
      return false;
    }
  }

  it('converts real signatures, including 33-byte (high bit) and short (leading zero) integers', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'ES256' })).toString('base64url');
    const seen = { rHigh: false, rShort: false, sShort: false };
    for (let i = 0; i < 20000 && !(seen.rHigh && seen.rShort && seen.sShort); i++) {
      const signingInput = `${header}.${Buffer.from(`{"i":${i}}`).toString('base64url')}`;
      const der = nodeSign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'der' });
      const jose = derToJose(der);
      expect(jose).toHaveLength(64);
      // node can check the P1363 (= JOSE) form directly.
      expect(nodeVerify('sha256', Buffer.from(signingInput), { key: publicKey, dsaEncoding: 'ieee-p1363' }, jose)).toBe(true);
      const rLen = der[3];
      const sLen = der[4 + rLen + 1];
      const interesting = (rLen === 33 && !seen.rHigh) || (rLen < 32 && !seen.rShort) || (sLen < 32 && !seen.sShort);
      if (rLen === 33) seen.rHigh = true;
      if (rLen < 32) seen.rShort = true;
      if (sLen < 32) seen.sShort = true;
      if (interesting || i < 5) expect(await joseVerifies(der, signingInput)).toBe(true);
      expect(joseToDer(jose).equals(der)).toBe(true);
    }
    expect(seen).toEqual({ rHigh: true, rShort: true, sShort: true });
  });

  it('handles hand-made edge cases', () => {
    const hex = (h: string) => Buffer.from(h.replace(/\s/g, ''), 'hex');
    // r = 1, s = 0x80 followed by 31 zero bytes (33-byte DER INTEGER with its 0x00 pad).
    const der = hex(`30 26 02 01 01 02 21 00 80 ${'00'.repeat(31)}`);
    expect(derToJose(der).toString('hex')).toBe(`${'00'.repeat(31)}01` + `80${'00'.repeat(31)}`);
    expect(joseToDer(derToJose(der)).equals(der)).toBe(true);
    // r with two leading zero bytes in JOSE (a 30-byte DER INTEGER).
    const r30 = `7f${'11'.repeat(29)}`;
    const der2 = hex(`30 24 02 1e ${r30} 02 02 12 34`);
    expect(derToJose(der2).toString('hex')).toBe(`0000${r30}` + `${'00'.repeat(30)}1234`);
  });

  it('refuses malformed DER', () => {
    const hex = (h: string) => Buffer.from(h.replace(/\s/g, ''), 'hex');
    expect(() => derToJose(hex('31 06 02 01 01 02 01 01'))).toThrow(/SEQUENCE/);
    expect(() => derToJose(hex('30 07 02 01 01 02 01 01'))).toThrow(/length/);
    expect(() => derToJose(hex('30 06 02 01 01 03 01 01'))).toThrow(/INTEGER/);
    expect(() => derToJose(hex('30 06 02 01 81 02 01 01'))).toThrow(/negative/);
    expect(() => derToJose(hex('30 07 02 02 00 01 02 01 01'))).toThrow(/minimally/);
    expect(() => derToJose(hex(`30 25 02 21 01 ${'00'.repeat(32)} 02 00`))).toThrow();
    expect(() => derToJose(hex(`30 26 02 21 01 ${'00'.repeat(32)} 02 01 01`))).toThrow(/longer than 32/);
    expect(() => derToJose(hex('30 09 02 01 01 02 01 01 00 00 00'))).toThrow(/trailing/);
  });
});
