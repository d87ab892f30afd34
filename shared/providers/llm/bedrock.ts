import type https from 'node:https';
import { guardedAgent } from '../../platform/outbound.js';
import type { BedrockRuntimeClient, ConverseCommandInput, ConverseStreamOutput } from '@aws-sdk/client-bedrock-runtime';
import { ProviderError, type LlmProvider, type LlmRequest, type LlmResult } from '../types.js';
import { classifyStatus, transportError } from '../errors.js';
import { withTimeout } from './http.js';

const LABEL = 'Amazon Bedrock';
const DEFAULT_MAX_TOKENS = 4096;

export interface BedrockOptions {
  region: string;
  model: string;
  /** Endpoint override (VPC endpoint). */
  endpoint?: string;
  maxTokens?: number;
  timeoutSeconds?: number;
}

/** Bedrock exceptions that are worth a retry (throttling, capacity, transient service faults). */
const RETRYABLE = new Set([
  'ThrottlingException',
  'ServiceUnavailableException',
  'InternalServerException',
  'ModelNotReadyException',
  'ModelTimeoutException',
  'ModelStreamErrorException',
  'ServiceQuotaExceededException',
]);
const CODES: Record<string, string> = {
  ThrottlingException: 'rate_limited',
  ServiceQuotaExceededException: 'rate_limited',
  ServiceUnavailableException: 'server_error',
  InternalServerException: 'server_error',
  ModelNotReadyException: 'model_not_ready',
  ModelTimeoutException: 'timeout',
  ModelStreamErrorException: 'stream_error',
  AccessDeniedException: 'permission_denied',
  ValidationException: 'bad_request',
  ResourceNotFoundException: 'not_found',
  ModelErrorException: 'model_error',
  UnrecognizedClientException: 'authentication_failed',
  ExpiredTokenException: 'authentication_failed',
};

type BedrockSdk = typeof import('@aws-sdk/client-bedrock-runtime');
let bedrockSdk: Promise<BedrockSdk> | undefined;
/** Loaded on first use: most functions never call Bedrock, and the client is costly to import at cold start. */
const loadSdk = () => (bedrockSdk ??= import('@aws-sdk/client-bedrock-runtime'));

/** Bedrock's Converse API (ConverseStream when the caller wants chunks); credentials come from IAM. */
export class BedrockProvider implements LlmProvider {
  readonly type = 'bedrock' as const;
  private client?: BedrockRuntimeClient;

  constructor(private readonly options: BedrockOptions) {}

  private async sdk(): Promise<{ sdk: BedrockSdk; client: BedrockRuntimeClient }> {
    const sdk = await loadSdk();
    // An endpoint a user configured goes through the outbound guard's agents (no loopback, private or metadata address).
    this.client ??= new sdk.BedrockRuntimeClient({
      region: this.options.region,
      ...(this.options.endpoint
        ? { endpoint: this.options.endpoint, requestHandler: { httpAgent: guardedAgent('http:'), httpsAgent: guardedAgent('https:') as https.Agent } }
        : {}),
      maxAttempts: 1,
    });
    return { sdk, client: this.client };
  }

  async complete(req: LlmRequest): Promise<LlmResult> {
    const signal = withTimeout(req.signal, this.options.timeoutSeconds);
    const modelId = req.model || this.options.model;
    const input: ConverseCommandInput = {
      modelId,
      messages: [{ role: 'user', content: [{ text: req.prompt }] }],
      ...(req.system ? { system: [{ text: req.system }] } : {}),
      inferenceConfig: {
        maxTokens: req.maxTokens ?? this.options.maxTokens ?? DEFAULT_MAX_TOKENS,
        ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      },
    };
    try {
      if (!req.onChunk) {
        const { sdk, client } = await this.sdk();
        const out = await client.send(new sdk.ConverseCommand(input), { abortSignal: signal });
        const content = out.output?.message?.content ?? [];
        return {
          output: content.map((c) => c.text ?? '').join(''),
          tokensIn: out.usage?.inputTokens ?? 0,
          tokensOut: out.usage?.outputTokens ?? 0,
          model: modelId,
          finishReason: out.stopReason,
        };
      }
      const { sdk, client } = await this.sdk();
      const out = await client.send(new sdk.ConverseStreamCommand(input), { abortSignal: signal });
      if (!out.stream) throw new ProviderError('invalid_response', `${LABEL} answered a stream without events`, true);
      return await readStream(out.stream, req.onChunk, modelId);
    } catch (err) {
      throw classify(err, signal);
    }
  }

  /**
   * A live call that costs next to nothing: one token out. Bedrock's runtime API has no free "list
   * models" (that is the control-plane client), and CountTokens only answers for some models.
   */
  async check(signal: AbortSignal = AbortSignal.timeout(10_000)): Promise<void> {
    try {
      const { sdk, client } = await this.sdk();
      await client.send(
        new sdk.ConverseCommand({ modelId: this.options.model, messages: [{ role: 'user', content: [{ text: 'ping' }] }], inferenceConfig: { maxTokens: 1 } }),
        { abortSignal: signal },
      );
    } catch (err) {
      throw classify(err, signal);
    }
  }
}

async function readStream(stream: AsyncIterable<ConverseStreamOutput>, onChunk: (text: string) => void, model: string): Promise<LlmResult> {
  let output = '';
  let tokensIn = 0;
  let tokensOut = 0;
  let finishReason: string | undefined;
  for await (const event of stream) {
    const text = event.contentBlockDelta?.delta?.text;
    if (text) {
      output += text;
      onChunk(text);
    }
    if (event.messageStop) finishReason = event.messageStop.stopReason;
    if (event.metadata?.usage) {
      tokensIn = event.metadata.usage.inputTokens ?? tokensIn;
      tokensOut = event.metadata.usage.outputTokens ?? tokensOut;
    }
    const streamed =
      event.internalServerException ?? event.modelStreamErrorException ?? event.validationException ?? event.throttlingException ?? event.serviceUnavailableException;
    if (streamed) throw streamed;
  }
  return { output, tokensIn, tokensOut, model, finishReason };
}

function classify(err: unknown, signal: AbortSignal): ProviderError {
  if (err instanceof ProviderError) return err;
  if (signal.aborted) return transportError(err, signal, LABEL);
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  const status = e.$metadata?.httpStatusCode;
  if (e.name && (CODES[e.name] || RETRYABLE.has(e.name))) {
    return new ProviderError(CODES[e.name] ?? 'server_error', e.message || e.name, RETRYABLE.has(e.name), status);
  }
  if (status !== undefined) {
    const { code, retryable } = classifyStatus(status);
    return new ProviderError(code, e.message || `${LABEL} answered HTTP ${status}`, retryable, status);
  }
  return transportError(err, signal, LABEL);
}
