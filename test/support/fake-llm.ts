import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 speaking the OpenAI Chat Completions and Anthropic Messages wire
 * formats (streaming and not), scripted per request with a queue of behaviours, recording what it got.
 *
 *   OpenAI-compatible base URL: `${fake.url}/v1`  (POST /v1/chat/completions, GET /v1/models)
 *   Anthropic base URL:         `${fake.url}`     (POST /v1/messages, GET /v1/models)
 */
export type FakeBehaviour =
  | {
      kind?: 'reply';
      /** The answer; streamed in `chunks` when given, else in pieces of about 8 characters. */
      reply?: string;
      chunks?: string[];
      usage?: { input: number; output: number };
      /** Leave the token counts out of the answer (some OpenAI-compatible servers do). */
      omitUsage?: boolean;
      delayMs?: number;
      chunkDelayMs?: number;
      model?: string;
      /** Hold the answer until this settles (e.g. until a test has subscribed to the task's updates). */
      gate?: Promise<unknown>;
    }
  | {
      kind: 'error';
      status: number;
      message?: string;
      errorType?: string;
      headers?: Record<string, string>;
      delayMs?: number;
    }
  /** Start streaming, then fail in the middle of the stream with the provider's error event. */
  | { kind: 'stream_error'; chunks: string[]; errorType: string; message: string }
  /** Accept the request and never answer (until the client goes away). */
  | { kind: 'hang' }
  /** Close the connection without an answer. */
  | { kind: 'drop' };

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
  /** The client went away before the answer was complete. */
  aborted: boolean;
  /** Text chunks written before the client went away (streaming). */
  chunksSent: number;
}

export class FakeLlmServer {
  readonly requests: RecordedRequest[] = [];
  private readonly queue: FakeBehaviour[] = [];
  private readonly sockets = new Set<import('node:net').Socket>();

  private constructor(private readonly server: http.Server, readonly url: string) {
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(): Promise<FakeLlmServer> {
    let fake: FakeLlmServer | undefined;
    const server = http.createServer((req, res) => void fake!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.address() as AddressInfo;
    fake = new FakeLlmServer(server, `http://127.0.0.1:${port}`);
    return fake;
  }

  get openaiBaseUrl(): string {
    return `${this.url}/v1`;
  }

  get anthropicBaseUrl(): string {
    return this.url;
  }

  /** Behaviours for the next completion requests, in order; when the queue is empty the default reply is used. */
  enqueue(...behaviours: FakeBehaviour[]): this {
    this.queue.push(...behaviours);
    return this;
  }

  /** Completion requests only (model listings excluded). */
  get completions(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'POST');
  }

  reset(): void {
    this.queue.length = 0;
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await new Promise<string>((resolve) => {
      let data = '';
      req.setEncoding('utf8');
      req.on('data', (c) => (data += c));
      req.on('end', () => resolve(data));
    });
    let body: any = undefined;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
    }
    const path = (req.url ?? '/').split('?')[0];
    const record: RecordedRequest = { method: req.method ?? 'GET', path, headers: req.headers, body, aborted: false, chunksSent: 0 };
    this.requests.push(record);
    res.on('close', () => {
      if (!res.writableFinished) record.aborted = true;
    });

    if (req.method === 'GET' && path === '/v1/models') {
      const next = this.queue[0];
      if (next?.kind === 'error') {
        this.queue.shift();
        return this.sendError(res, next, guessFormat(req));
      }
      return json(res, 200, { object: 'list', data: [{ id: 'fake-model', object: 'model' }] });
    }
    const format = path === '/v1/chat/completions' ? 'openai' : path === '/v1/messages' ? 'anthropic' : undefined;
    if (req.method !== 'POST' || !format) return json(res, 404, { error: { message: `no route ${req.method} ${path}` } });

    const behaviour = this.queue.shift() ?? { kind: 'reply' as const };
    const prompt = promptOf(format, body);
    switch (behaviour.kind) {
      case 'error':
        if (behaviour.delayMs) await sleep(behaviour.delayMs);
        return this.sendError(res, behaviour, format);
      case 'hang':
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.flushHeaders();
        return;
      case 'drop':
        req.socket.destroy();
        return;
      case 'stream_error':
        return this.streamWithError(res, record, format, body, behaviour);
      default: {
        if (behaviour.gate) await behaviour.gate;
        if (behaviour.delayMs) await sleep(behaviour.delayMs);
        const reply = behaviour.reply ?? `Fake ${format} reply to: ${prompt.slice(0, 60)}`;
        const chunks = behaviour.chunks ?? splitText(reply, 8);
        const text = chunks.join('');
        const usage = behaviour.usage ?? { input: Math.ceil(prompt.length / 4), output: Math.ceil(text.length / 4) };
        const model = behaviour.model ?? body?.model ?? 'fake-model';
        if (body?.stream) return this.stream(res, record, format, model, chunks, behaviour.omitUsage ? undefined : usage, body, behaviour.chunkDelayMs ?? 5);
        if (format === 'openai') {
          return json(res, 200, {
            id: 'chatcmpl-fake',
            object: 'chat.completion',
            model,
            choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
            ...(behaviour.omitUsage ? {} : { usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output } }),
          });
        }
        return json(res, 200, {
          id: 'msg_fake',
          type: 'message',
          role: 'assistant',
          model,
          content: [{ type: 'text', text }],
          stop_reason: 'end_turn',
          usage: { input_tokens: usage.input, output_tokens: usage.output },
        });
      }
    }
  }

  private sendError(res: http.ServerResponse, b: Extract<FakeBehaviour, { kind: 'error' }>, format: 'openai' | 'anthropic'): void {
    const message = b.message ?? `fake error ${b.status}`;
    const payload =
      format === 'anthropic'
        ? { type: 'error', error: { type: b.errorType ?? 'api_error', message } }
        : { error: { message, type: b.errorType ?? 'api_error', code: null } };
    res.writeHead(b.status, { 'content-type': 'application/json', ...(b.headers ?? {}) });
    res.end(JSON.stringify(payload));
  }

  private async stream(
    res: http.ServerResponse,
    record: RecordedRequest,
    format: 'openai' | 'anthropic',
    model: string,
    chunks: string[],
    usage: { input: number; output: number } | undefined,
    body: any,
    chunkDelayMs: number,
  ): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (event: string | undefined, data: unknown) =>
      res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    if (format === 'anthropic') {
      send('message_start', {
        type: 'message_start',
        message: { id: 'msg_fake', type: 'message', role: 'assistant', model, content: [], stop_reason: null, usage: { input_tokens: usage?.input ?? 0, output_tokens: 1 } },
      });
      send('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
      send('ping', { type: 'ping' });
    }
    for (const chunk of chunks) {
      if (res.destroyed) return;
      if (format === 'anthropic') send('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: chunk } });
      else send(undefined, { id: 'chatcmpl-fake', object: 'chat.completion.chunk', model, choices: [{ index: 0, delta: { content: chunk }, finish_reason: null }] });
      record.chunksSent++;
      if (chunkDelayMs) await sleep(chunkDelayMs);
    }
    if (res.destroyed) return;
    if (format === 'anthropic') {
      send('content_block_stop', { type: 'content_block_stop', index: 0 });
      send('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: usage?.output ?? 0 } });
      send('message_stop', { type: 'message_stop' });
    } else {
      send(undefined, { id: 'chatcmpl-fake', object: 'chat.completion.chunk', model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
      if (usage && body?.stream_options?.include_usage) {
        send(undefined, { id: 'chatcmpl-fake', object: 'chat.completion.chunk', model, choices: [], usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output } });
      }
      send(undefined, '[DONE]');
    }
    res.end();
  }

  private async streamWithError(
    res: http.ServerResponse,
    record: RecordedRequest,
    format: 'openai' | 'anthropic',
    body: any,
    b: Extract<FakeBehaviour, { kind: 'stream_error' }>,
  ): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const model = body?.model ?? 'fake-model';
    if (format === 'anthropic') {
      res.write(`event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { model, usage: { input_tokens: 1, output_tokens: 0 } } })}\n\n`);
    }
    for (const chunk of b.chunks) {
      if (format === 'anthropic') res.write(`event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: chunk } })}\n\n`);
      else res.write(`data: ${JSON.stringify({ model, choices: [{ index: 0, delta: { content: chunk }, finish_reason: null }] })}\n\n`);
      record.chunksSent++;
    }
    if (format === 'anthropic') res.write(`event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: b.errorType, message: b.message } })}\n\n`);
    else res.write(`data: ${JSON.stringify({ error: { type: b.errorType, message: b.message } })}\n\n`);
    res.end();
  }
}

function guessFormat(req: http.IncomingMessage): 'openai' | 'anthropic' {
  return req.headers['x-api-key'] || req.headers['anthropic-version'] ? 'anthropic' : 'openai';
}

function promptOf(format: 'openai' | 'anthropic', body: any): string {
  const messages: { role: string; content: unknown }[] = Array.isArray(body?.messages) ? body.messages : [];
  const user = [...messages].reverse().find((m) => m.role === 'user');
  if (!user) return '';
  if (typeof user.content === 'string') return user.content;
  if (Array.isArray(user.content)) return user.content.map((c: { text?: string }) => c.text ?? '').join('');
  return format;
}

function splitText(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length ? out : [''];
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
