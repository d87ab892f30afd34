import '../local/quiet-sdk.js';
/**
 * Bootstrap the first admin (never a default password):
 *   npm run admin:create -- --username admin [--email a@b.c]          (local; asks the password)
 *   TABLE_NAME=<table> AWS_REGION=<region> npm run admin:create -- --username … --aws
 * The password is asked on the terminal without echo, or read from standard input with
 * `--password-stdin`; `--password '…'` works too but leaves it in the shell history.
 * Locally it works whether or not `npm start` is running: it writes to the database of the runtime
 * running on the data directory (runtime.json), else to that of a running `npm start -- --in-memory`
 * (runtime-memory.json; `--in-memory` picks it even when both run), else it starts DynamoDB Local on
 * the data directory for the moment it needs. It says which database it wrote to.
 */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { Store } from '../shared/platform/store/client.js';
import { UserRepository } from '../shared/auth/repo.js';
import { AuthService } from '../shared/auth/service.js';
import { SessionRepository, LoginAttemptRepository } from '../shared/auth/sessions-repo.js';
import { registerBody } from '../shared/auth/model.js';
import { getConfig } from '../shared/platform/config.js';
import { TABLE } from '../shared/platform/infra.js';
import { systemClock } from '../shared/platform/ports.js';
import type { Deps } from '../shared/platform/runtime.js';
import { ensureTable, localClient, startDynamoDbLocal, JavaMissingError, type DynamoDbLocal } from '../local/dynamodb-local.js';
import { DataDirLockedError, lockDataDir } from '../local/data-dir.js';
import { readRuntimeState, runtimeStateFile, type RuntimeState } from '../local/runtime-state.js';

const { values } = parseArgs({
  options: {
    username: { type: 'string' },
    password: { type: 'string' },
    'password-stdin': { type: 'boolean', default: false },
    email: { type: 'string' },
    aws: { type: 'boolean', default: false },
    'in-memory': { type: 'boolean', default: false },
    'data-dir': { type: 'string' },
  },
});

/** The first line of standard input (`--password-stdin`: from a file, a pipe or a secret manager). */
async function firstLineOfStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0];
}

/** Asks on the terminal without echoing what is typed (nothing lands in the shell history). */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.resume();
    let value = '';
    const finish = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (typed: string) => {
      for (const c of typed) {
        if (c === '\r' || c === '\n') return finish();
        if (c === '\u0003') return finish(new Error('cancelled'));
        if (c === '\u007f' || c === '\b') value = value.slice(0, -1);
        else value += c;
      }
    };
    stdin.on('data', onData);
  });
}

async function password(): Promise<string | undefined> {
  if (values.password !== undefined) return values.password;
  if (values['password-stdin']) return firstLineOfStdin();
  if (process.stdin.isTTY) return promptHidden(`Password for ${values.username ?? 'the admin'}: `);
  return undefined;
}

const input = registerBody.safeParse({ username: values.username, password: await password(), ...(values.email ? { email: values.email } : {}) });
if (!input.success) {
  for (const issue of input.error.issues) console.error(`--${issue.path.join('.')}: ${issue.message}`);
  console.error('usage: npm run admin:create -- --username NAME [--password-stdin | --password PASSWORD] [--email EMAIL] [--in-memory | --aws]');
  console.error('  with neither, the password is asked on the terminal (not echoed, not in the shell history)');
  process.exit(2);
}

async function reachable(endpoint: string): Promise<boolean> {
  const client = localClient(endpoint);
  try {
    await client.send(new ListTablesCommand({}));
    return true;
  } catch {
    return false;
  } finally {
    client.destroy();
  }
}

/** The endpoint without its access key id. */
function shown(endpoint: string): string {
  const url = new URL(endpoint);
  url.username = '';
  return url.origin;
}

/** The runtime a state file names, when its DynamoDB Local answers. */
async function running(file: string): Promise<RuntimeState | undefined> {
  const state = readRuntimeState(file);
  return state && (await reachable(state.dynamodb_endpoint)) ? state : undefined;
}

let started: DynamoDbLocal | undefined;
let unlock = (): void => undefined;
let store: Store;
/** Which database the admin was written to, in words. */
let target: string;
try {
  if (values.aws) {
    if (!process.env.TABLE_NAME) throw new Error('TABLE_NAME must name the deployed table (see the stack outputs)');
    store = new Store({ tableName: process.env.TABLE_NAME });
    target = `DynamoDB table ${process.env.TABLE_NAME} (AWS, region ${process.env.AWS_REGION ?? 'from the AWS profile'})`;
  } else {
    const dataDir = path.resolve(values['data-dir'] ?? process.env.DATA_DIR ?? '.data');
    const tableName = process.env.TABLE_NAME ?? TABLE.defaultName;
    let endpoint = process.env.DYNAMODB_ENDPOINT;
    target = `DYNAMODB_ENDPOINT ${endpoint ? shown(endpoint) : ''}, table ${tableName}`;
    if (!endpoint) {
      const persistent = values['in-memory'] ? undefined : await running(runtimeStateFile(dataDir, false));
      const memory = persistent ? undefined : await running(runtimeStateFile(dataDir, true));
      if (persistent) {
        endpoint = persistent.dynamodb_endpoint;
        target = `the database of the server running at ${persistent.url} (pid ${persistent.pid}), data in ${dataDir}`;
      } else if (memory) {
        endpoint = memory.dynamodb_endpoint;
        target = `the in-memory database of the server running at ${memory.url} (pid ${memory.pid}); it is gone when that server stops`;
      } else if (values['in-memory']) {
        throw new Error(`no in-memory server is running (none published in ${runtimeStateFile(dataDir, true)}): start one with \`npm start -- --in-memory\``);
      }
    }
    if (!endpoint) {
      // No runtime is serving this data directory: hold it as one would for the moment it takes.
      unlock = lockDataDir(dataDir);
      const dbDir = path.join(dataDir, 'dynamodb');
      console.log(`No server is running on ${dataDir}: starting DynamoDB Local on ${dbDir} (Java; usually 10-30 s)…`);
      const since = Date.now();
      const progress = setInterval(() => console.log(`  still starting DynamoDB Local… ${Math.round((Date.now() - since) / 1000)} s`), 3000);
      try {
        started = await startDynamoDbLocal({ dataDir: dbDir });
      } finally {
        clearInterval(progress);
      }
      console.log(`DynamoDB Local ready after ${((Date.now() - since) / 1000).toFixed(1)} s`);
      endpoint = started.endpoint;
      target = `${dbDir} (table ${tableName}; DynamoDB Local was started for this and is stopped again)`;
    }
    await ensureTable(endpoint, tableName);
    store = new Store({ tableName, endpoint });
  }
  const deps = { config: getConfig(), store, clock: systemClock } as unknown as Deps;
  const service = new AuthService(deps, {
    users: new UserRepository(store),
    sessions: new SessionRepository(store),
    attempts: new LoginAttemptRepository(store),
  });
  const user = await service.createUser({ ...input.data, roles: ['admin'] });
  console.log(`admin created: ${user.username} (${user.user_id})`);
  console.log(`  written to ${target}`);
  await started?.stop();
  unlock();
  process.exit(0);
} catch (err) {
  await started?.stop();
  unlock();
  if (err instanceof JavaMissingError || err instanceof DataDirLockedError) console.error(err.message);
  else console.error(`admin:create failed: ${(err as { detail?: string }).detail ?? (err as Error).message}`);
  process.exit(1);
}
