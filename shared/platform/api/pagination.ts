import { createHmac, timingSafeEqual } from 'node:crypto';
import { invalidCursor } from './errors.js';
import { appSecret } from '../use/app-secret.js';

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

/** A position in the store, or none for the first page. */
export type StartKey = Record<string, unknown> | undefined;

/** What a list request needs for paging: its `cursor` query parameter and the application secret. */
export interface PagedRequest {
  query: { cursor?: string };
  deps: { appSecret(): Promise<Buffer> };
}

/** A list's answer: the page's items and the cursor of the next page (null on the last). */
export interface PagedList<T> {
  items: T[];
  next_cursor: string | null;
}

/**
 * The paging of one list request. The cursor is scoped to the list `name` and its `filter` (a string
 * as it is, anything else as JSON; no filter: the name alone), so a cursor only continues the query it
 * came from. Answers the position to start from (an invalid cursor is a 400) and `respond`, which
 * turns the page the store answered into the list's answer with the next cursor.
 *
 *   const { startKey, respond } = await pageRequest(req, 'agents', filter);
 *   return { data: respond(await listAgents(req.deps, filter, limit, startKey)) };
 */
export async function pageRequest(
  req: PagedRequest,
  name: string,
  filter?: unknown,
): Promise<{ startKey: StartKey; respond<T>(page: { items: T[]; lastKey?: Record<string, unknown> }): PagedList<T> }> {
  const scope = filter === undefined ? name : `${name}:${typeof filter === 'string' ? filter : JSON.stringify(filter)}`;
  const secret = await appSecret(req.deps);
  return {
    startKey: decodeCursor(req.query.cursor, scope, secret),
    respond: (page) => ({ items: page.items, next_cursor: encodeCursor(page.lastKey, scope, secret) }),
  };
}
