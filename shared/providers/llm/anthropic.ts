import { ProviderError, type LlmProvider, type LlmRequest, type LlmResult } from '../types.js';
import { streamError } from '../errors.js';
import { parseEventData, readJson, readSse, request, trimBaseUrl, withTimeout } from './http.js';

export const ANTHROPIC_DEFAULT_BASE_URL = 'https://api.anthropic.com';
export const ANTHROPIC_VERSION = '2023-06-01';
const DEFAULT_MAX_TOKENS = 4096;
const LABEL = 'Anthropic';

export interface AnthropicOptions {
  baseUrl?: string;
  apiKey: string;
  model: string;
  maxTokens?: number;
  timeoutSeconds?: number;
}

interface MessageResponse {
  model?: string;
  content?: { type: string; text?: string }[];
  stop_reason?: string | null;
  usage?: { input_tokens?: number; output_tokens?: number };
}

type StreamEvent =
  | { type: 'message_start'; message: MessageResponse }
  | { type: 'content_block_delta'; delta: { type: string; text?: string } }
  | { type: 'message_delta'; delta?: { stop_reason?: string | null }; usage?: { input_tokens?: number; output_tokens?: number } }
  | { type: 'error'; error?: { type?: string; message?: string } }
  | { type: 'content_block_start' | 'content_block_stop' | 'message_stop' | 'ping' };

/** Anthropic's Messages API (`POST /v1/messages`), streamed over SSE when the caller wants chunks. */
export class AnthropicProvider implements LlmProvider {
  readonly type = 'anthropic' as const;
  private readonly baseUrl: string;

  constructor(private readonly options: AnthropicOptions) {
    this.baseUrl = trimBaseUrl(options.baseUrl ?? ANTHROPIC_DEFAULT_BASE_URL);
  }

  async complete(req: LlmRequest): Promise<LlmResult> {
    const signal = withTimeout(req.signal, this.options.timeoutSeconds);
    const stream = req.onChunk !== undefined;
    const body = {
      model: req.model || this.options.model,
      max_tokens: req.maxTokens ?? this.options.maxTokens ?? DEFAULT_MAX_TOKENS,
      messages: [{ role: 'user', content: req.prompt }],
      ...(req.system ? { system: req.system } : {}),
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(stream ? { stream: true } : {}),
    };
    const res = await request(
      `${this.baseUrl}/v1/messages`,
      { method: 'POST', headers: { ...this.headers(), 'content-type': 'application/json' }, body: JSON.stringify(body), signal },
      LABEL,
    );
    return stream ? this.readStream(res, signal, req.onChunk!, body.model) : this.readMessage(res, signal, body.model);
  }

  async check(signal: AbortSignal = AbortSignal.timeout(10_000)): Promise<void> {
    const res = await request(`${this.baseUrl}/v1/models`, { method: 'GET', headers: this.headers(), signal }, LABEL);
    await res.body?.cancel();
  }

  private headers(): Record<string, string> {
    return { 'x-api-key': this.options.apiKey, 'anthropic-version': ANTHROPIC_VERSION };
  }

  private async readMessage(res: Response, signal: AbortSignal, requested: string): Promise<LlmResult> {
    const msg = await readJson<MessageResponse>(res, signal, LABEL);
    if (!Array.isArray(msg.content)) throw new ProviderError('invalid_response', `${LABEL} answered a message without content`, true, res.status);
    return {
      output: msg.content.filter((c) => c.type === 'text').map((c) => c.text ?? '').join(''),
      tokensIn: msg.usage?.input_tokens ?? 0,
      tokensOut: msg.usage?.output_tokens ?? 0,
      model: msg.model ?? requested,
      finishReason: msg.stop_reason ?? undefined,
    };
  }

  private async readStream(res: Response, signal: AbortSignal, onChunk: (text: string) => void, requested: string): Promise<LlmResult> {
    let output = '';
    let model = requested;
    let tokensIn = 0;
    let tokensOut = 0;
    let finishReason: string | undefined;
    let stopped = false;
    for await (const sse of readSse(res, signal, LABEL)) {
      const event = parseEventData<StreamEvent>(sse.data, LABEL);
      switch (event.type) {
        case 'message_start':
          model = event.message.model ?? model;
          tokensIn = event.message.usage?.input_tokens ?? tokensIn;
          tokensOut = event.message.usage?.output_tokens ?? tokensOut;
          break;
        case 'content_block_delta':
          if (event.delta.type === 'text_delta' && event.delta.text) {
            output += event.delta.text;
            onChunk(event.delta.text);
          }
          break;
        case 'message_delta':
          finishReason = event.delta?.stop_reason ?? finishReason;
          // message_delta's usage is cumulative.
          tokensOut = event.usage?.output_tokens ?? tokensOut;
          tokensIn = event.usage?.input_tokens ?? tokensIn;
          break;
        case 'message_stop':
          stopped = true;
          break;
        case 'error':
          throw streamError(event.error?.type, event.error?.message, LABEL);
      }
    }
    if (!stopped) throw new ProviderError('stream_interrupted', `${LABEL} ended the stream before message_stop`, true);
    return { output, tokensIn, tokensOut, model, finishReason };
  }
}
