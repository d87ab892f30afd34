/**
 * ECDSA signature encodings. KMS (and node's crypto by default) answer a DER `ECDSA-Sig-Value`
 * (`SEQUENCE { r INTEGER, s INTEGER }`); JWS (RFC 7518 §3.4) wants the fixed-size big-endian
 * concatenation `r || s`, each left-padded to the curve size (32 bytes for P-256 / ES256).
 *
 * DER INTEGERs are minimal two's complement: a value with its top bit set gets a leading 0x00 (so a
 * 32-byte r can take 33 bytes), and a small value takes fewer bytes than the curve size.
 */

function readLength(der: Uint8Array, at: number): { length: number; next: number } {
  const first = der[at];
  if (first === undefined) throw new Error('DER signature truncated');
  if (first < 0x80) return { length: first, next: at + 1 };
  const count = first & 0x7f;
  if (count === 0 || count > 2) throw new Error('DER signature has an unsupported length encoding');
  let length = 0;
  for (let i = 1; i <= count; i++) {
    const b = der[at + i];
    if (b === undefined) throw new Error('DER signature truncated');
    length = (length << 8) | b;
  }
  if (length < 0x80) throw new Error('DER signature length is not minimally encoded');
  return { length, next: at + 1 + count };
}

function readInteger(der: Uint8Array, at: number, size: number): { value: Uint8Array; next: number } {
  if (der[at] !== 0x02) throw new Error('DER signature: expected INTEGER');
  const { length, next } = readLength(der, at + 1);
  if (length === 0) throw new Error('DER signature: empty INTEGER');
  const end = next + length;
  if (end > der.length) throw new Error('DER signature truncated');
  let bytes = der.subarray(next, end);
  if (bytes[0] & 0x80) throw new Error('DER signature: negative INTEGER');
  if (bytes.length > 1 && bytes[0] === 0x00 && !(bytes[1] & 0x80)) {
    throw new Error('DER signature: INTEGER is not minimally encoded');
  }
  while (bytes.length > 1 && bytes[0] === 0x00) bytes = bytes.subarray(1);
  if (bytes.length > size) throw new Error(`DER signature: INTEGER longer than ${size} bytes`);
  const value = new Uint8Array(size);
  value.set(bytes, size - bytes.length);
  return { value, next: end };
}

/** DER `SEQUENCE { r, s }` → JOSE `r || s` (2 × `size` bytes; 32 for ES256). */
export function derToJose(der: Uint8Array, size = 32): Buffer {
  if (der[0] !== 0x30) throw new Error('DER signature: expected SEQUENCE');
  const { length, next } = readLength(der, 1);
  if (next + length !== der.length) throw new Error('DER signature: length does not match');
  const r = readInteger(der, next, size);
  const s = readInteger(der, r.next, size);
  if (s.next !== der.length) throw new Error('DER signature: trailing bytes');
  return Buffer.concat([r.value, s.value]);
}

function encodeInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  let value = Buffer.from(bytes.subarray(start));
  if (value[0] & 0x80) value = Buffer.concat([Buffer.from([0]), value]);
  return Buffer.concat([Buffer.from([0x02, value.length]), value]);
}

/** JOSE `r || s` → DER `SEQUENCE { r, s }` (the inverse of `derToJose`). */
export function joseToDer(jose: Uint8Array): Buffer {
  if (jose.length === 0 || jose.length % 2 !== 0) throw new Error('JOSE signature must have an even, non-zero length');
  const half = jose.length / 2;
  const body = Buffer.concat([encodeInteger(jose.subarray(0, half)), encodeInteger(jose.subarray(half))]);
  const len = body.length < 0x80 ? Buffer.from([body.length]) : Buffer.from([0x81, body.length]);
  return Buffer.concat([Buffer.from([0x30]), len, body]);
}
