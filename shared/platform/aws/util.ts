/** Small helpers shared by the AWS adapters. */

/** The error's name (`ResourceNotFoundException`, …) as the SDK sets it, or '' for non-errors. */
export function errorName(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { name?: unknown }).name === 'string'
    ? (err as { name: string }).name
    : '';
}

/** HTTP status of an SDK service error, when it has one. */
export function httpStatus(err: unknown): number | undefined {
  const meta = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata;
  return typeof meta?.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
}

/**
 * Memoises an async factory; a failed attempt is forgotten so the next call tries again. Used to import
 * an SDK client module (`await import()`) and build the client on first use only, so a Lambda cold
 * start loads just the clients its handler touches.
 */
export function lazy<T>(factory: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= factory().catch((err: unknown) => {
      value = undefined;
      throw err;
    });
    return value;
  };
}

/** Deep equality of JSON values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => Object.hasOwn(bo, k) && jsonEqual(ao[k], bo[k]));
}

/**
 * A local endpoint's client settings. The URL may carry the access key id as its user name
 * (`http://KEY@127.0.0.1:8000`): DynamoDB Local keeps one database per access key id, and the local
 * runtime's `@connections` endpoint admits only its own key. Without one the key is `local`.
 */
export function localEndpoint(url: string): { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } } {
  const parsed = new URL(url);
  const accessKeyId = decodeURIComponent(parsed.username) || 'local';
  const secretAccessKey = decodeURIComponent(parsed.password) || 'local';
  parsed.username = '';
  parsed.password = '';
  const endpoint = parsed.pathname === '/' && !url.endsWith('/') ? parsed.toString().slice(0, -1) : parsed.toString();
  return { endpoint, region: 'local', credentials: { accessKeyId, secretAccessKey } };
}
