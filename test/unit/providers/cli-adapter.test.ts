import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliProvider } from '../../../shared/providers/llm/cli.js';
import { installConfig, parseConfig, resetConfig } from '../../../shared/platform/config.js';
import { cliSettingsSchema } from '../../../shared/providers/model.js';
import { ProviderError } from '../../../shared/providers/types.js';

/** A CLI provider running `node -e <script>` (a real child process). */
function cli(script: string, settings: Record<string, unknown> = {}) {
  return new CliProvider({ ...cliSettingsSchema.parse({ command: process.execPath, args: ['-e', script], ...settings }), model: 'test-agent' });
}

const run = (provider: CliProvider, prompt: string, extra: { signal?: AbortSignal; onChunk?: (t: string) => void } = {}) =>
  provider.complete({ model: '', prompt, signal: extra.signal ?? new AbortController().signal, onChunk: extra.onChunk });

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cliEnabled = (enabled: boolean) => installConfig({ ...parseConfig({}), cliProviderEnabled: enabled });
beforeAll(() => {
  cliEnabled(true);
});
afterAll(() => {
  resetConfig();
});

describe('cli provider (real child processes)', () => {
  it('passes the prompt on stdin and streams stdout in order; tokens are labelled estimates', async () => {
    const script = `let s='';process.stdin.on('data',d=>s+=d);process.stdin.on('end',()=>{process.stdout.write('got '+s.length+' chars\\n');setTimeout(()=>process.stdout.write(s.toUpperCase()),50)})`;
    const chunks: string[] = [];
    const result = await run(cli(script), 'fix the bug', { onChunk: (c) => chunks.push(c) });
    expect(result.output).toBe('got 11 chars\nFIX THE BUG');
    expect(chunks.join('')).toBe(result.output);
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(result).toMatchObject({ tokensIn: 3, tokensOut: Math.ceil(result.output.length / 4), tokensEstimated: true, model: 'test-agent' });
  });

  it('passes only the allow-listed environment variables', async () => {
    process.env.PROVIDER_TEST_SECRET = 'do-not-leak';
    process.env.PROVIDER_TEST_ALLOWED = 'visible';
    try {
      const script = `process.stdout.write((process.env.PROVIDER_TEST_SECRET ?? 'none') + ' ' + (process.env.PROVIDER_TEST_ALLOWED ?? 'none'))`;
      const result = await run(cli(script, { env_allow: ['PROVIDER_TEST_ALLOWED'] }), '');
      expect(result.output).toBe('none visible');
    } finally {
      delete process.env.PROVIDER_TEST_SECRET;
      delete process.env.PROVIDER_TEST_ALLOWED;
    }
  });

  it('refuses to run with credential variables in env_allow that the deployment does not allow', async () => {
    process.env.AWS_SECRET_ACCESS_KEY_TEST = 'do-not-leak';
    try {
      const script = `process.stdout.write(process.env.AWS_SECRET_ACCESS_KEY_TEST ?? 'none')`;
      const err = await failure(run(cli(script, { env_allow: ['PATH', 'AWS_SECRET_ACCESS_KEY_TEST'] }), ''));
      expect(err).toMatchObject({ code: 'provider_misconfigured', retryable: false });
      expect(err.message).toContain('AWS_SECRET_ACCESS_KEY_TEST');

      installConfig({ ...parseConfig({}), cliProviderEnabled: true, cliEnvAllowCredentials: ['AWS_SECRET_ACCESS_KEY_TEST'] });
      const allowed = await run(cli(script, { env_allow: ['AWS_SECRET_ACCESS_KEY_TEST'] }), '');
      expect(allowed.output).toBe('do-not-leak');
    } finally {
      cliEnabled(true);
      delete process.env.AWS_SECRET_ACCESS_KEY_TEST;
    }
  });

  it('runs in the configured working directory', async () => {
    const result = await run(cli('process.stdout.write(process.cwd())', { cwd: '/tmp' }), '');
    expect(result.output).toBe('/tmp');
  });

  it('a non-zero exit fails, not retryable, with the tail of stderr', async () => {
    const err = await failure(run(cli(`process.stderr.write('fatal: repository not found');process.exit(3)`), 'x'));
    expect(err).toMatchObject({ code: 'cli_exit', retryable: false });
    expect(err.message).toContain('exited with code 3');
    expect(err.message).toContain('fatal: repository not found');
  });

  it('output over the cap kills the process and fails', async () => {
    const err = await failure(run(cli(`process.stdout.write('x'.repeat(4096));setInterval(()=>{},1000)`, { max_output_bytes: 1024 }), ''));
    expect(err).toMatchObject({ code: 'output_limit', retryable: false });
  });

  it('the timeout kills the whole process group (grandchildren too) and is retryable', async () => {
    const script = `const c=require('child_process').spawn(process.execPath,['-e','setInterval(()=>{},1000)'],{stdio:'ignore'});process.stdout.write(String(c.pid));setInterval(()=>{},1000)`;
    let grandchild = 0;
    const err = await failure(run(cli(script, { timeout_seconds: 1 }), '', { onChunk: (c) => (grandchild = Number(c)) }));
    expect(err).toMatchObject({ code: 'timeout', retryable: true });
    expect(grandchild).toBeGreaterThan(0);
    await waitUntil(() => !alive(grandchild));
  });

  it('abort kills it and fails as a cancellation', async () => {
    const controller = new AbortController();
    const script = `process.stdout.write(String(process.pid));setInterval(()=>{},1000)`;
    let pid = 0;
    const pending = run(cli(script), '', {
      signal: controller.signal,
      onChunk: (c) => {
        pid = Number(c);
        controller.abort();
      },
    });
    const err = await failure(pending);
    expect(err).toMatchObject({ code: 'cancelled', retryable: false });
    await waitUntil(() => !alive(pid));
  });

  it('a missing command is a clear, non-retryable error', async () => {
    const provider = new CliProvider({ ...cliSettingsSchema.parse({ command: '/nonexistent/agent-cli' }), model: 'x' });
    const err = await failure(run(provider, 'x'));
    expect(err).toMatchObject({ code: 'cli_not_found', retryable: false });
  });

  it('check runs the command with its check arguments', async () => {
    await cli('', { check_args: ['-e', 'process.exit(0)'] }).check();
    const err = await failure(cli('', { check_args: ['-e', 'process.exit(2)'] }).check());
    expect(err.code).toBe('cli_exit');
  });

  it('refuses to run while cli providers are disabled', async () => {
    cliEnabled(false);
    try {
      const err = await failure(run(cli('process.stdout.write("ran")'), 'x'));
      expect(err).toMatchObject({ code: 'cli_disabled', retryable: false });
    } finally {
      cliEnabled(true);
    }
  });
});
