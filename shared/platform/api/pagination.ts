import { createHmac, timingSafeEqual } from 'node:crypto';
import { invalidCursor } from './errors.js';

/**
 * Opaque, tamper-evident cursors: the store's position plus the scope of the query it belongs to,
 * signed with the application secret. A cursor from another query or an edited one is a 400.
 */
export function encodeCursor(position: Record<string, unknown> | undefined, scope: string, secret: Buffer): string | null {
  if (!position) return null;
  const payload = Buffer.from(JSON.stringify({ p: position, s: scope })).toString('base64url');
  return `${payload}.${sign(payload, secret)}`;
}

export function decodeCursor(cursor: string | undefined, scope: string, secret: Buffer): Record<string, unknown> | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const [payload, mac, extra] = cursor.split('.');
  if (!payload || !mac || extra !== undefined) throw invalidCursor();
  const expected = Buffer.from(sign(payload, secret));
  const given = Buffer.from(mac);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw invalidCursor();
  let parsed: { p?: unknown; s?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (parsed.s !== scope || !parsed.p || typeof parsed.p !== 'object') throw invalidCursor();
  return parsed.p as Record<string, unknown>;
}

function sign(payload: string, secret: Buffer): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}
