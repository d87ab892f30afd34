import { afterEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand, ThrottlingException, AccessDeniedException } from '@aws-sdk/client-bedrock-runtime';
import { BedrockProvider } from '../../../shared/providers/llm/bedrock.js';
import { LocalProvider, LOCAL_MODEL, analysePrompt } from '../../../shared/providers/llm/local.js';
import { ProviderError } from '../../../shared/providers/types.js';
import { countTokens } from '../../../shared/providers/tokens.js';

const bedrock = mockClient(BedrockRuntimeClient);
afterEach(() => bedrock.reset());

const provider = () => new BedrockProvider({ region: 'eu-west-1', model: 'anthropic.claude-3-haiku', maxTokens: 300 });

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('bedrock provider (Converse API, commands asserted with aws-sdk-client-mock)', () => {
  it('sends a Converse command and reads output and usage', async () => {
    bedrock.on(ConverseCommand).resolves({
      output: { message: { role: 'assistant', content: [{ text: 'Looks ' }, { text: 'good.' }] } },
      usage: { inputTokens: 21, outputTokens: 4, totalTokens: 25 },
      stopReason: 'end_turn',
      metrics: { latencyMs: 10 },
      $metadata: {},
    });
    const result = await provider().complete({ model: '', system: 'Be terse.', prompt: 'Review', temperature: 0.2, signal: new AbortController().signal });
    expect(result).toEqual({ output: 'Looks good.', tokensIn: 21, tokensOut: 4, model: 'anthropic.claude-3-haiku', finishReason: 'end_turn' });
    const input = bedrock.commandCalls(ConverseCommand)[0].args[0].input;
    expect(input).toEqual({
      modelId: 'anthropic.claude-3-haiku',
      messages: [{ role: 'user', content: [{ text: 'Review' }] }],
      system: [{ text: 'Be terse.' }],
      inferenceConfig: { maxTokens: 300, temperature: 0.2 },
    });
  });

  it('streams with ConverseStream: chunks in order, usage from the metadata event', async () => {
    async function* events() {
      yield { messageStart: { role: 'assistant' as const } };
      yield { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 'one ' } } };
      yield { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 'two' } } };
      yield { messageStop: { stopReason: 'end_turn' as const } };
      yield { metadata: { usage: { inputTokens: 9, outputTokens: 2, totalTokens: 11 }, metrics: { latencyMs: 5 } } };
    }
    bedrock.on(ConverseStreamCommand).resolves({ stream: events(), $metadata: {} } as never);
    const chunks: string[] = [];
    const result = await provider().complete({ model: 'override-model', prompt: 'x', signal: new AbortController().signal, onChunk: (c) => chunks.push(c) });
    expect(chunks).toEqual(['one ', 'two']);
    expect(result).toMatchObject({ output: 'one two', tokensIn: 9, tokensOut: 2, model: 'override-model', finishReason: 'end_turn' });
    expect(bedrock.commandCalls(ConverseStreamCommand)[0].args[0].input.modelId).toBe('override-model');
  });

  it('throttling is retryable, access denied is not; both keep the service message', async () => {
    bedrock
      .on(ConverseCommand)
      .rejectsOnce(new ThrottlingException({ message: 'Too many requests, please wait', $metadata: { httpStatusCode: 429 } }))
      .rejectsOnce(new AccessDeniedException({ message: 'You do not have access to the model', $metadata: { httpStatusCode: 403 } }));
    const throttled = await failure(provider().complete({ model: '', prompt: 'x', signal: new AbortController().signal }));
    expect(throttled).toMatchObject({ code: 'rate_limited', retryable: true, status: 429, message: 'Too many requests, please wait' });
    const denied = await failure(provider().complete({ model: '', prompt: 'x', signal: new AbortController().signal }));
    expect(denied).toMatchObject({ code: 'permission_denied', retryable: false, status: 403, message: 'You do not have access to the model' });
  });

  it('an error event inside the stream fails the call', async () => {
    async function* events() {
      yield { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 'partial' } } };
      yield { throttlingException: new ThrottlingException({ message: 'slow down', $metadata: {} }) };
    }
    bedrock.on(ConverseStreamCommand).resolves({ stream: events(), $metadata: {} } as never);
    const err = await failure(provider().complete({ model: '', prompt: 'x', signal: new AbortController().signal, onChunk: () => undefined }));
    expect(err).toMatchObject({ code: 'rate_limited', retryable: true, message: 'slow down' });
  });

  it('check makes a one-token Converse call', async () => {
    bedrock.on(ConverseCommand).resolves({ output: { message: { role: 'assistant', content: [{ text: 'p' }] } }, stopReason: 'max_tokens', $metadata: {} } as never);
    await provider().check();
    expect(bedrock.commandCalls(ConverseCommand)[0].args[0].input.inferenceConfig).toEqual({ maxTokens: 1 });
  });
});

describe('local provider', () => {
  const prompt = [
    '# Fix the login bug',
    'Users see an error when logging in.',
    '',
    '## Error',
    'TypeError: Cannot read properties of undefined (reading "id")',
    '',
    '```ts',
    'const id = user.id;',
    'return id;',
    '```',
    '',
    'diff --git a/src/login.ts b/src/login.ts',
    '--- a/src/login.ts',
    '+++ b/src/login.ts',
    '-const id = user.id;',
    '+const id = user?.id;',
    '+if (!id) throw new Error("no user");',
    '- TODO: remove',
  ].join('\n');

  it('answers with a deterministic analysis of the prompt, labelled local', async () => {
    const a = await new LocalProvider({ chunkDelayMs: 0 }).complete({ model: '', prompt, signal: new AbortController().signal });
    const b = await new LocalProvider({ chunkDelayMs: 0 }).complete({ model: '', prompt, signal: new AbortController().signal });
    expect(a).toEqual(b);
    expect(a.model).toBe(LOCAL_MODEL);
    expect(a.output.startsWith('[local]')).toBe(true);
    expect(a.output).toContain(`18 lines (15 non-empty), ${prompt.length} characters, ${countTokens(prompt)} tokens`);
    expect(a.output).toContain('2 sections: "Fix the login bug", "Error"');
    expect(a.output).toContain('1 code block: ts (2 lines)');
    expect(a.output).toContain('a diff touching 1 file: +2 −2');
    expect(a.output).toContain('- [ ] Review the changes to src/login.ts (+2 −2)');
    expect(a.output).toContain('- [ ] Investigate: TypeError: Cannot read properties of undefined (reading "id")');
    expect(a.output).toContain('2 lines mentioning errors');
    expect(a.output).toContain('1 TODO/FIXME marker');
    expect(a.output).toContain('> # Fix the login bug');
    expect(a.tokensIn).toBe(countTokens(`\n${prompt}`));
    expect(a.tokensOut).toBe(countTokens(a.output));
  });

  it('another prompt gives another answer', () => {
    expect(analysePrompt('hello')).not.toBe(analysePrompt('goodbye'));
    expect(analysePrompt('just one plain line')).toContain('Read the request in full');
  });

  it('streams the same answer in chunks, in order', async () => {
    const chunks: string[] = [];
    const result = await new LocalProvider({ chunkDelayMs: 1 }).complete({ model: '', prompt, signal: new AbortController().signal, onChunk: (c) => chunks.push(c) });
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.join('')).toBe(result.output);
  });

  it('honours abort while streaming', async () => {
    const controller = new AbortController();
    const chunks: string[] = [];
    const err = await failure(
      new LocalProvider({ chunkDelayMs: 5 }).complete({
        model: '',
        prompt,
        signal: controller.signal,
        onChunk: (c) => {
          chunks.push(c);
          if (chunks.length === 2) controller.abort();
        },
      }),
    );
    expect(err).toMatchObject({ code: 'cancelled', retryable: false });
    expect(chunks.length).toBe(2);
  });
});
