import type { Deps } from './runtime.js';
import { logger } from './logger.js';
import { eventBus } from './use/events.js';

/** What an event's detail may take of EventBridge's 256 KiB entry. */
export const MAX_EVENT_DETAIL_BYTES = 200 * 1024;
/** Longest string kept in a detail that had to be cut to fit. */
const CUT_STRING_CHARS = 4096;

function cutStrings(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.length > CUT_STRING_CHARS ? `${value.slice(0, CUT_STRING_CHARS)}…` : value;
  if (value === null || typeof value !== 'object' || depth > 20) return value;
  if (Array.isArray(value)) return value.slice(0, 100).map((v) => cutStrings(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cutStrings(v, depth + 1)]));
}

/**
 * Publishes a platform event (`task.completed`, `execution.failed`, …) on the event bus, where the
 * plugin delivery function picks it up. A detail too large for one entry has its long strings cut
 * (marked `truncated`). Never throws: a lost notification must not fail the state change behind it.
 */
export async function publishSystemEvent(deps: Deps, type: string, detail: Record<string, unknown>): Promise<void> {
  let body = detail;
  if (Buffer.byteLength(JSON.stringify(body)) > MAX_EVENT_DETAIL_BYTES) {
    body = { ...(cutStrings(detail) as Record<string, unknown>), truncated: true };
  }
  try {
    await eventBus(deps).publish(type, body);
  } catch (err) {
    logger.error('system event not published', { type, error: err as Error });
  }
}
