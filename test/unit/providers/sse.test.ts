import { describe, expect, it } from 'vitest';
import { readSse, type SseEvent } from '../../../shared/providers/llm/http.js';

/** A streaming answer whose body arrives in exactly these chunks. */
function streamOf(chunks: string[]): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
  return new Response(body, { headers: { 'Content-Type': 'text/event-stream' } });
}

async function events(chunks: string[]): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const event of readSse(streamOf(chunks), new AbortController().signal, 'test')) out.push(event);
  return out;
}

describe('readSse', () => {
  it('keeps one event and its name when a \\r\\n is split across chunks', async () => {
    expect(await events(['event: content_block_delta\r', '\ndata: {"a":1}\r\n\r\n'])).toEqual([{ event: 'content_block_delta', data: '{"a":1}' }]);
  });

  it('treats a \\r\\n split between the data line and the blank line as one line ending', async () => {
    expect(await events(['event: ping\r\ndata: one\r', '\n\r', '\nevent: done\r\ndata: two\r\n\r\n'])).toEqual([
      { event: 'ping', data: 'one' },
      { event: 'done', data: 'two' },
    ]);
  });

  it('joins data lines, skips comments, names unnamed events "message" and delivers an unterminated last event', async () => {
    expect(await events([': keep-alive\n', 'data: a\nda', 'ta: b\n\n', 'data: last'])).toEqual([
      { event: 'message', data: 'a\nb' },
      { event: 'message', data: 'last' },
    ]);
  });
});
