/**
 * API Gateway refuses a WebSocket message (one PostToConnection) over 128 KB with 413
 * PayloadTooLargeException, and the local `@connections` endpoint does the same. Every event the
 * publisher sends goes through `boundEventData` first, so an item that outgrew the limit (a task's
 * payload may be 200 KiB and its result 100 KB) still reaches its subscribers, as a bounded view:
 * ids, status and timing intact, long strings (outputs, payload fields) cut, `truncated: true` set.
 * Clients read the full item over HTTP.
 */

/** API Gateway's limit on the data of one WebSocket message. */
export const WS_MESSAGE_MAX_BYTES = 128 * 1024;
/** Room kept for the envelope around an event's data (`type`, `channel`, `timestamp`). */
const ENVELOPE_BYTES = 1024;
/** The most an event's data may take, serialised as JSON in UTF-8. */
export const EVENT_DATA_MAX_BYTES = WS_MESSAGE_MAX_BYTES - ENVELOPE_BYTES;

/** Longest string kept in a view that had to be cut, then shorter until it fits. */
const FIRST_STRING_LIMIT = 16 * 1024;
const LAST_STRING_LIMIT = 64;
/** Longest array kept in a view that had to be cut. */
const ARRAY_LIMIT = 100;

export const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? 'null', 'utf8');

/**
 * `data` itself when it fits in `maxBytes`; otherwise a copy with long strings cut (to 16 KiB,
 * then shorter) and long arrays shortened until it fits, and as a last resort only its top-level
 * scalars (ids, status, timing). A cut object carries `truncated: true`.
 */
export function boundEventData(data: unknown, maxBytes: number = EVENT_DATA_MAX_BYTES): unknown {
  if (jsonBytes(data) <= maxBytes) return data;
  for (let limit = FIRST_STRING_LIMIT; limit >= LAST_STRING_LIMIT; limit = Math.floor(limit / 4)) {
    const cut = marked(cutStrings(data, limit));
    if (jsonBytes(cut) <= maxBytes) return cut;
  }
  const skeleton = marked(scalarsOf(data));
  if (jsonBytes(skeleton) <= maxBytes) return skeleton;
  return { truncated: true };
}

function cutStrings(value: unknown, limit: number): unknown {
  if (typeof value === 'string') return value.length > limit ? value.slice(0, limit) : value;
  if (Array.isArray(value)) return value.slice(0, ARRAY_LIMIT).map((v) => cutStrings(v, limit));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cutStrings(v, limit)]));
  }
  return value;
}

/** The top-level scalars of an object (strings cut short); nested objects and arrays left out. */
function scalarsOf(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return cutStrings(value, LAST_STRING_LIMIT);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null || typeof v !== 'object') out[k] = cutStrings(v, 256);
  }
  return out;
}

function marked(value: unknown): unknown {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? { ...value, truncated: true } : value;
}
