import { ProviderError, type LlmProvider, type LlmRequest, type LlmResult } from '../types.js';
import { streamError } from '../errors.js';
import { estimateTokens } from '../../platform/tokens.js';
import { parseEventData, readJson, readSse, request, trimBaseUrl, withTimeout } from './http.js';

export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';
const LABEL = 'the OpenAI-compatible endpoint';

export interface OpenAiOptions {
  /** Including `/v1`. */
  baseUrl?: string;
  apiKey?: string;
  model: string;
  maxTokens?: number;
  timeoutSeconds?: number;
}

interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

interface CompletionResponse {
  model?: string;
  choices?: { message?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: Usage | null;
}

interface CompletionChunk {
  model?: string;
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: Usage | null;
  error?: { message?: string; type?: string; code?: string };
}

/**
 * Chat Completions on any OpenAI-compatible server (OpenAI, Ollama, vLLM, LM Studio…). Streams with
 * `stream_options.include_usage` so the last chunk carries the token counts; a server that sends none
 * gets its counts estimated, and the result says so.
 */
export class OpenAiProvider implements LlmProvider {
  readonly type = 'openai' as const;
  private readonly baseUrl: string;

  constructor(private readonly options: OpenAiOptions) {
    this.baseUrl = trimBaseUrl(options.baseUrl ?? OPENAI_DEFAULT_BASE_URL);
  }

  async complete(req: LlmRequest): Promise<LlmResult> {
    const signal = withTimeout(req.signal, this.options.timeoutSeconds);
    const stream = req.onChunk !== undefined;
    const messages = [...(req.system ? [{ role: 'system', content: req.system }] : []), { role: 'user', content: req.prompt }];
    const maxTokens = req.maxTokens ?? this.options.maxTokens;
    const body = {
      model: req.model || this.options.model,
      messages,
      ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    };
    const res = await request(
      `${this.baseUrl}/chat/completions`,
      { method: 'POST', headers: { ...this.headers(), 'content-type': 'application/json' }, body: JSON.stringify(body), signal },
      LABEL,
    );
    const result = stream ? await this.readStream(res, signal, req.onChunk!, body.model) : await this.readCompletion(res, signal, body.model);
    if (result.tokensIn === undefined || result.tokensOut === undefined) {
      return {
        ...result,
        tokensIn: result.tokensIn ?? estimateTokens(`${req.system ?? ''}\n${req.prompt}`),
        tokensOut: result.tokensOut ?? estimateTokens(result.output),
        tokensEstimated: true,
      };
    }
    return result as LlmResult;
  }

  async check(signal: AbortSignal = AbortSignal.timeout(10_000)): Promise<void> {
    const res = await request(`${this.baseUrl}/models`, { method: 'GET', headers: this.headers(), signal }, LABEL);
    await res.body?.cancel();
  }

  private headers(): Record<string, string> {
    return this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {};
  }

  private async readCompletion(res: Response, signal: AbortSignal, requested: string): Promise<PartialResult> {
    const body = await readJson<CompletionResponse>(res, signal, LABEL);
    const choice = body.choices?.[0];
    if (!choice) throw new ProviderError('invalid_response', `${LABEL} answered without choices`, true, res.status);
    return {
      output: choice.message?.content ?? '',
      tokensIn: body.usage?.prompt_tokens,
      tokensOut: body.usage?.completion_tokens,
      model: body.model ?? requested,
      finishReason: choice.finish_reason ?? undefined,
    };
  }

  private async readStream(res: Response, signal: AbortSignal, onChunk: (text: string) => void, requested: string): Promise<PartialResult> {
    let output = '';
    let model = requested;
    let usage: Usage | undefined;
    let finishReason: string | undefined;
    let done = false;
    for await (const sse of readSse(res, signal, LABEL)) {
      if (sse.data.trim() === '[DONE]') {
        done = true;
        break;
      }
      const chunk = parseEventData<CompletionChunk>(sse.data, LABEL);
      if (chunk.error) throw streamError(chunk.error.type ?? chunk.error.code, chunk.error.message, LABEL);
      model = chunk.model ?? model;
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices ?? []) {
        const text = choice.delta?.content;
        if (text) {
          output += text;
          onChunk(text);
        }
        finishReason = choice.finish_reason ?? finishReason;
      }
    }
    if (!done && finishReason === undefined) throw new ProviderError('stream_interrupted', `${LABEL} ended the stream before [DONE]`, true);
    return { output, tokensIn: usage?.prompt_tokens, tokensOut: usage?.completion_tokens, model, finishReason };
  }
}

type PartialResult = Omit<LlmResult, 'tokensIn' | 'tokensOut'> & { tokensIn?: number; tokensOut?: number };
