import '../../local/quiet-sdk.js';
import { createWriteStream, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startLocalRuntime, type LocalRuntime } from '../../local/runtime.js';
import { AuthService } from '../../shared/auth/service.js';
import { UserRepository } from '../../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../../shared/auth/sessions-repo.js';

declare module 'vitest' {
  export interface ProvidedContext {
    baseUrl: string;
    wsUrl: string;
    /** With DynamoDB Local's access key id as user name (`http://KEY@127.0.0.1:PORT`). */
    dynamodbEndpoint: string;
    /** The runtime's loopback-only `@connections` endpoint, with its access key id as user name. */
    connectionsUrl: string;
    /**
     * The bootstrap admins: the same role under several accounts, because login is limited to 10 a minute
     * per account and every test file logs an admin in once (a fast run starts more than 10 files a minute).
     */
    admins: { username: string; password: string }[];
    /** Everything the runtime (and this process) wrote to stdout and stderr: tests search it for secrets. */
    runtimeLogFile: string;
  }
}

export const ADMINS = ['root-admin', 'root-admin-2', 'root-admin-3'].map((username) => ({ username, password: 'integration-admin-password' }));

let runtime: LocalRuntime | undefined;

/** One local runtime with DynamoDB Local (in memory) for the whole run; tests speak HTTP and WebSocket to it. */
export default async function setup(project: TestProject) {
  // The handlers log to this process's stdout and stderr (structured JSON lines): a copy goes to a file.
  const runtimeLogFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'supervisor-test-log-')), 'runtime.log');
  const copy = createWriteStream(runtimeLogFile);
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      copy.write(typeof chunk === 'string' || chunk instanceof Uint8Array ? chunk : String(chunk));
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
  runtime = await startLocalRuntime({
    port: 0,
    dataDir: null,
    log: () => undefined,
    // The fake LLM servers listen on 127.0.0.1: outbound requests to loopback are allowed explicitly.
    env: {
      ALLOW_REGISTRATION: 'true',
      OUTBOUND_ALLOW_PRIVATE: 'true',
      // A CLI runner host of its own, for the published resource examples.
      RESOURCE_POOLS: JSON.stringify({ cli_runners: [{ host: 'example', cpu: 2, memory_mb: 4096, disk_mb: 10_000 }] }),
      PLUGINS_ALLOW_PRIVATE_URLS: 'true',
      PLUGIN_RETRY_BASE_MS: '200',
      PLUGIN_MAX_ATTEMPTS: '4',
    },
    workflowWaitScale: 0.1,
    // A test run is short and takes each path a few times: the JVM's quick compiler alone serves it best.
    dynamodbJit: 'quick',
  });
  const deps = runtime.deps;
  const auth = new AuthService(deps, {
    users: new UserRepository(deps.store),
    sessions: new SessionRepository(deps.store),
    attempts: new LoginAttemptRepository(deps.store),
  });
  for (const admin of ADMINS) await auth.createUser({ ...admin, roles: ['admin'] });
  project.provide('baseUrl', runtime.url);
  project.provide('wsUrl', runtime.wsUrl);
  project.provide('dynamodbEndpoint', runtime.dynamodb!.endpoint);
  project.provide('connectionsUrl', runtime.connectionsUrl);
  project.provide('admins', ADMINS);
  project.provide('runtimeLogFile', runtimeLogFile);
  return async () => {
    await runtime?.stop();
    copy.end();
  };
}
