import { createHash } from 'node:crypto';
import { encodeTime } from 'ulid';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A ULID derived from another and a label, the same every time: the base's time part (or `atMs`'s, when
 * the item belongs to a later time than its base) and 80 bits of SHA-256(base, label). An operation that
 * creates several items under one idempotent request (a batch's tasks) names each of them this way, so a
 * retry finds the ones the first attempt stored.
 */
export function derivedUlid(base: string, label: string, atMs?: number): string {
  const digest = createHash('sha256').update(`${base}#${label}`).digest();
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 16) {
      out += CROCKFORD[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
    if (out.length === 16) break;
  }
  return (atMs === undefined ? base.slice(0, 10) : encodeTime(atMs, 10)) + out;
}
