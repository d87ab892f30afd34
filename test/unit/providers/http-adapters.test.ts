import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeLlmServer } from '../../support/fake-llm.js';
import { OpenAiProvider } from '../../../shared/providers/llm/openai.js';
import { AnthropicProvider, ANTHROPIC_VERSION } from '../../../shared/providers/llm/anthropic.js';
import { ProviderError, type LlmProvider } from '../../../shared/providers/types.js';

let fake: FakeLlmServer;

beforeAll(async () => {
  fake = await FakeLlmServer.start();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => fake.reset());

const clients: Record<'openai' | 'anthropic', () => LlmProvider> = {
  openai: () => new OpenAiProvider({ baseUrl: fake.openaiBaseUrl, apiKey: 'sk-openai-test-key', model: 'gpt-fake' }),
  anthropic: () => new AnthropicProvider({ baseUrl: fake.anthropicBaseUrl, apiKey: 'sk-ant-test-key', model: 'claude-fake' }),
};

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe.each(['openai', 'anthropic'] as const)('%s adapter against a server speaking its wire format', (format) => {
  it('completes without streaming and parses the usage', async () => {
    fake.enqueue({ reply: 'The diff looks fine.', usage: { input: 42, output: 7 } });
    const result = await clients[format]().complete({ model: '', system: 'Be brief.', prompt: 'Review this diff', maxTokens: 256, signal: new AbortController().signal });
    expect(result).toMatchObject({ output: 'The diff looks fine.', tokensIn: 42, tokensOut: 7 });
    expect(result.tokensEstimated).toBeUndefined();
    const [sent] = fake.completions;
    if (format === 'openai') {
      expect(sent.path).toBe('/v1/chat/completions');
      expect(sent.headers.authorization).toBe('Bearer sk-openai-test-key');
      expect(sent.body).toMatchObject({ model: 'gpt-fake', max_tokens: 256, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Review this diff' }] });
    } else {
      expect(sent.path).toBe('/v1/messages');
      expect(sent.headers['x-api-key']).toBe('sk-ant-test-key');
      expect(sent.headers['anthropic-version']).toBe(ANTHROPIC_VERSION);
      expect(sent.body).toMatchObject({ model: 'claude-fake', max_tokens: 256, system: 'Be brief.', messages: [{ role: 'user', content: 'Review this diff' }] });
    }
    expect(sent.body.stream).toBeUndefined();
  });

  it('streams: chunks arrive in order, the output is their concatenation, usage comes from the stream', async () => {
    const chunks = ['Line one. ', 'Line two. ', 'Line three.'];
    fake.enqueue({ chunks, usage: { input: 11, output: 5 } });
    const received: string[] = [];
    const result = await clients[format]().complete({ model: '', prompt: 'stream please', signal: new AbortController().signal, onChunk: (c) => received.push(c) });
    expect(received).toEqual(chunks);
    expect(result.output).toBe(chunks.join(''));
    expect(result.tokensIn).toBe(11);
    expect(result.tokensOut).toBe(5);
    expect(result.finishReason).toBe(format === 'openai' ? 'stop' : 'end_turn');
    expect(fake.completions[0].body.stream).toBe(true);
    if (format === 'openai') expect(fake.completions[0].body.stream_options).toEqual({ include_usage: true });
  });

  it('429 is retryable and carries Retry-After and the provider message', async () => {
    fake.enqueue({ kind: 'error', status: 429, message: 'Rate limit reached for requests', errorType: 'rate_limit_error', headers: { 'retry-after': '7' } });
    const err = await failure(clients[format]().complete({ model: '', prompt: 'x', signal: new AbortController().signal }));
    expect(err).toMatchObject({ code: 'rate_limited', retryable: true, status: 429, retryAfterSeconds: 7, message: 'Rate limit reached for requests' });
  });

  it('401 is not retryable and carries the provider message', async () => {
    fake.enqueue({ kind: 'error', status: 401, message: 'invalid x-api-key', errorType: 'authentication_error' });
    const err = await failure(clients[format]().complete({ model: '', prompt: 'x', signal: new AbortController().signal, onChunk: () => undefined }));
    expect(err).toMatchObject({ code: 'authentication_failed', retryable: false, status: 401, message: 'invalid x-api-key' });
    expect(err.retryAfterSeconds).toBeUndefined();
  });

  it('500 and 503 are retryable; 400 and 404 are not', async () => {
    fake.enqueue(
      { kind: 'error', status: 500, message: 'boom' },
      { kind: 'error', status: 503, message: 'overloaded' },
      { kind: 'error', status: 400, message: 'max_tokens too large' },
      { kind: 'error', status: 404, message: 'model not found' },
    );
    const client = clients[format]();
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await failure(client.complete({ model: '', prompt: 'x', signal: new AbortController().signal })));
    expect(results.map((e) => [e.status, e.retryable, e.message])).toEqual([
      [500, true, 'boom'],
      [503, true, 'overloaded'],
      [400, false, 'max_tokens too large'],
      [404, false, 'model not found'],
    ]);
  });

  it('an error event in the middle of a stream fails the call, classified by its type', async () => {
    fake.enqueue({ kind: 'stream_error', chunks: ['partial '], errorType: 'overloaded_error', message: 'Overloaded' });
    const received: string[] = [];
    const err = await failure(clients[format]().complete({ model: '', prompt: 'x', signal: new AbortController().signal, onChunk: (c) => received.push(c) }));
    expect(received).toEqual(['partial ']);
    expect(err).toMatchObject({ retryable: true, message: 'Overloaded' });
  });

  it('abort stops the request: the server sees the client go away, the error is a cancellation', async () => {
    fake.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const pending = clients[format]().complete({ model: '', prompt: 'x', signal: controller.signal, onChunk: () => undefined });
    await waitUntil(() => fake.completions.length === 1);
    controller.abort();
    const err = await failure(pending);
    expect(err).toMatchObject({ code: 'cancelled', retryable: false });
    await waitUntil(() => fake.completions[0].aborted);
  });

  it('a timeout abort is retryable', async () => {
    fake.enqueue({ kind: 'hang' });
    const err = await failure(clients[format]().complete({ model: '', prompt: 'x', signal: AbortSignal.timeout(200) }));
    expect(err).toMatchObject({ code: 'timeout', retryable: true });
  });

  it('a refused connection is a retryable network error', async () => {
    const down = await FakeLlmServer.start();
    const url = down.url;
    await down.close();
    const client =
      format === 'openai'
        ? new OpenAiProvider({ baseUrl: `${url}/v1`, model: 'm' })
        : new AnthropicProvider({ baseUrl: url, apiKey: 'k', model: 'm' });
    const err = await failure(client.complete({ model: '', prompt: 'x', signal: new AbortController().signal }));
    expect(err).toMatchObject({ code: 'network_error', retryable: true });
  });

  it('check lists the models with the credentials, and reports a 401', async () => {
    await clients[format]().check();
    expect(fake.requests.at(-1)).toMatchObject({ method: 'GET', path: '/v1/models' });
    fake.enqueue({ kind: 'error', status: 401, message: 'bad key' });
    const err = await failure(clients[format]().check());
    expect(err).toMatchObject({ status: 401, retryable: false, message: 'bad key' });
  });
});

describe('openai adapter specifics', () => {
  it('sends no Authorization header without a key (Ollama, vLLM)', async () => {
    await new OpenAiProvider({ baseUrl: fake.openaiBaseUrl, model: 'llama3' }).complete({ model: '', prompt: 'hi', signal: new AbortController().signal });
    expect(fake.completions[0].headers.authorization).toBeUndefined();
  });

  it('estimates tokens, and says so, when the server reports no usage', async () => {
    fake.enqueue({ reply: 'abcdefgh', omitUsage: true });
    const result = await new OpenAiProvider({ baseUrl: fake.openaiBaseUrl, model: 'm' }).complete({ model: '', prompt: '12345678', signal: new AbortController().signal, onChunk: () => undefined });
    expect(result).toMatchObject({ output: 'abcdefgh', tokensOut: 2, tokensEstimated: true });
  });

  it('reads Retry-After given as an HTTP date and retry-after-ms', async () => {
    fake.enqueue({ kind: 'error', status: 429, headers: { 'retry-after-ms': '1500' } });
    const err = await failure(new OpenAiProvider({ baseUrl: fake.openaiBaseUrl, model: 'm' }).complete({ model: '', prompt: 'x', signal: new AbortController().signal }));
    expect(err.retryAfterSeconds).toBe(1.5);
  });
});

async function waitUntil(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 10));
  }
}
