import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { ProviderError, type LlmProvider, type LlmRequest, type LlmResult } from '../types.js';
import { abortError } from '../errors.js';
import { estimateTokens } from '../../platform/tokens.js';
import type { CliSettings } from '../model.js';
import { ENV, getConfig, inheritedEnv } from '../../platform/config.js';

/** Environment switch without which no `cli` provider can be registered or run. */
export const CLI_PROVIDER_ENV = ENV.cliProviderEnabled;
export const cliProvidersEnabled = () => getConfig().cliProviderEnabled;

const STDERR_TAIL_BYTES = 2048;
const KILL_GRACE_MS = 2000;
const CHECK_TIMEOUT_SECONDS = 10;
const LABEL = 'the CLI agent';

/** Variable names that look like credentials: a cli provider inherits them only when the deployment allows them by name. */
const CREDENTIAL_NAME = /^AWS_|SECRET|TOKEN|KEY/i;

/** The names of `envAllow` that look like credentials and are not in the deployment's allow list. */
export function refusedCredentialVariables(envAllow: readonly string[], allowed: readonly string[]): string[] {
  return envAllow.filter((name) => CREDENTIAL_NAME.test(name) && !allowed.includes(name));
}

export interface CliOptions extends CliSettings {
  model: string;
}

interface RunOutcome {
  stdout: string;
  stderrTail: string;
}

/**
 * Runs a configured coding-agent command with the prompt on stdin (no shell, so nothing in the prompt
 * or the arguments is interpreted), streaming its stdout. The command runs in its own process group,
 * killed as a whole on abort, timeout or when its output passes the cap. Token counts are estimates
 * (characters / 4) and the result says so.
 */
export class CliProvider implements LlmProvider {
  readonly type = 'cli' as const;

  constructor(private readonly options: CliOptions) {}

  async complete(req: LlmRequest): Promise<LlmResult> {
    const input = req.system ? `${req.system}\n\n${req.prompt}` : req.prompt;
    const { stdout } = await this.run(this.options.args, input, req.signal, this.options.timeout_seconds, req.onChunk);
    return {
      output: stdout,
      tokensIn: estimateTokens(input),
      tokensOut: estimateTokens(stdout),
      model: req.model || this.options.model,
      finishReason: 'exit_0',
      tokensEstimated: true,
    };
  }

  async check(signal: AbortSignal = AbortSignal.timeout(CHECK_TIMEOUT_SECONDS * 1000)): Promise<void> {
    await this.run(this.options.check_args, '', signal, CHECK_TIMEOUT_SECONDS);
  }

  private run(args: string[], input: string, signal: AbortSignal, timeoutSeconds: number, onChunk?: (text: string) => void): Promise<RunOutcome> {
    if (!cliProvidersEnabled()) {
      return Promise.reject(new ProviderError('cli_disabled', `cli providers are disabled (set ${CLI_PROVIDER_ENV}=true)`, false));
    }
    if (signal.aborted) return Promise.reject(abortError(signal, LABEL));
    // A provider stored before the rule (or with a name since removed from the allow list) does not run.
    const refused = refusedCredentialVariables(this.options.env_allow, getConfig().cliEnvAllowCredentials);
    if (refused.length) {
      return Promise.reject(new ProviderError('provider_misconfigured', `env_allow names credential variables not allowed on this deployment: ${refused.join(', ')}`, false));
    }
    return new Promise<RunOutcome>((resolve, reject) => {
      const env = inheritedEnv(this.options.env_allow);
      const child = spawn(this.options.command, args, {
        cwd: this.options.cwd,
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
        shell: false,
        windowsHide: true,
      });
      const decoder = new StringDecoder('utf8');
      let stdout = '';
      let stdoutBytes = 0;
      let stderr = Buffer.alloc(0);
      let failure: ProviderError | undefined;
      let exited = false;

      const killGroup = (reason: ProviderError) => {
        failure ??= reason;
        if (exited || child.pid === undefined) return;
        signalGroup(child.pid, 'SIGTERM');
        setTimeout(() => {
          if (!exited && child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
        }, KILL_GRACE_MS).unref();
      };
      const timer = setTimeout(
        () => killGroup(new ProviderError('timeout', `${LABEL} did not finish within ${timeoutSeconds} s`, true)),
        timeoutSeconds * 1000,
      );
      const onAbort = () => killGroup(abortError(signal, LABEL));
      signal.addEventListener('abort', onAbort, { once: true });

      child.stdout.on('data', (data: Buffer) => {
        if (failure) return;
        stdoutBytes += data.byteLength;
        if (stdoutBytes > this.options.max_output_bytes) {
          killGroup(new ProviderError('output_limit', `${LABEL} wrote more than ${this.options.max_output_bytes} bytes of output`, false));
          return;
        }
        const text = decoder.write(data);
        if (text) {
          stdout += text;
          onChunk?.(text);
        }
      });
      child.stderr.on('data', (data: Buffer) => {
        stderr = Buffer.concat([stderr, data]);
        if (stderr.byteLength > STDERR_TAIL_BYTES) stderr = stderr.subarray(stderr.byteLength - STDERR_TAIL_BYTES);
      });
      child.stdin.on('error', () => undefined); // the command may exit without reading its input
      child.stdin.end(input);

      const finish = (err?: ProviderError) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
      };
      child.once('error', (err: NodeJS.ErrnoException) => {
        exited = true;
        finish(
          err.code === 'ENOENT'
            ? new ProviderError('cli_not_found', `command not found: ${this.options.command}`, false)
            : new ProviderError('cli_spawn_failed', `could not start ${this.options.command}: ${err.code ?? err.message}`, false),
        );
      });
      child.once('close', (code, signalName) => {
        exited = true;
        if (failure) return finish(failure);
        const tail = stderr.toString('utf8').trim();
        if (code !== 0) {
          const how = code === null ? `was killed by ${signalName}` : `exited with code ${code}`;
          return finish(new ProviderError('cli_exit', `${this.options.command} ${how}${tail ? `: ${tail.slice(-500)}` : ''}`, false));
        }
        const rest = decoder.end();
        if (rest) {
          stdout += rest;
          onChunk?.(rest);
        }
        finish();
        resolve({ stdout, stderrTail: tail });
      });
    });
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // The group is already gone.
  }
}
