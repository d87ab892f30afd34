import { createParser } from 'eventsource-parser';
import { ProviderError } from '../types.js';
import { abortError, httpError, parseRetryAfter, transportError } from '../errors.js';
import { outboundFetch, OutboundRefusedError, type OutboundInit } from '../../platform/outbound.js';

/** Longest error body read from a provider (the message is all we keep). */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** The caller's signal, bounded by the provider's own timeout when it has one. */
export function withTimeout(signal: AbortSignal, timeoutSeconds?: number): AbortSignal {
  return timeoutSeconds ? AbortSignal.any([signal, AbortSignal.timeout(timeoutSeconds * 1000)]) : signal;
}

export function trimBaseUrl(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * One HTTP call to a provider, through the outbound guard (no loopback, private or metadata address
 * unless allowed, no redirects, a size cap): a refusal, a transport failure or a non-2xx answer becomes
 * a classified ProviderError carrying the provider's own message and its Retry-After.
 */
export async function request(url: string, init: OutboundInit & { signal: AbortSignal }, label: string): Promise<Response> {
  let res: Response;
  try {
    res = await outboundFetch(url, init);
  } catch (err) {
    if (err instanceof OutboundRefusedError) throw new ProviderError(err.code, `${label} was not called: ${err.message}`, false);
    throw transportError(err, init.signal, label);
  }
  if (res.ok) return res;
  const body = await readBounded(res, init.signal, label).catch((err) => {
    if (err instanceof ProviderError && err.code === 'cancelled') throw err;
    return '';
  });
  throw httpError(label, res.status, res.statusText, body, parseRetryAfter(res.headers, new Date()));
}

/** The JSON body of a successful answer. */
export async function readJson<T>(res: Response, signal: AbortSignal, label: string): Promise<T> {
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw transportError(err, signal, label);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ProviderError('invalid_response', `${label} answered something that is not JSON`, true, res.status);
  }
}

async function readBounded(res: Response, signal: AbortSignal, label: string): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_ERROR_BODY_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch (err) {
    throw transportError(err, signal, label);
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, MAX_ERROR_BODY_BYTES);
}

export interface SseEvent {
  event: string;
  data: string;
}

/**
 * Server-sent events from a streaming answer, as they arrive (parsed by eventsource-parser, which
 * follows the specification: any line ending, also one split across chunks; `data:` lines of one
 * event joined with newlines; comments skipped). An event the stream ends in without its blank line
 * is still delivered.
 */
export async function* readSse(res: Response, signal: AbortSignal, label: string): AsyncGenerator<SseEvent> {
  if (!res.body) throw new ProviderError('invalid_response', `${label} sent a streaming answer without a body`, true, res.status);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const parsed: SseEvent[] = [];
  const parser = createParser({ onEvent: (message) => parsed.push({ event: message.event || 'message', data: message.data }) });
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        throw transportError(err, signal, label);
      }
      if (chunk.done) break;
      parser.feed(chunk.value);
      yield* parsed.splice(0);
    }
    if (signal.aborted) throw abortError(signal, label);
    // Ends the last line and the last event, if the stream stopped without them.
    parser.feed('\n\n');
    yield* parsed.splice(0);
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

export function parseEventData<T>(data: string, label: string): T {
  try {
    return JSON.parse(data) as T;
  } catch {
    throw new ProviderError('invalid_response', `${label} sent a stream event that is not JSON`, true);
  }
}
