import '../local/quiet-sdk.js';
/**
 * Bootstrap the first admin (never a default password):
 *   npm run admin:create -- --username admin [--email a@b.c]          (local; asks the password)
 *   TABLE_NAME=<table> AWS_REGION=<region> npm run admin:create -- --username … --aws
 * The password is asked on the terminal without echo, or read from standard input with
 * `--password-stdin`; `--password '…'` works too but leaves it in the shell history.
 * Locally it works whether or not `npm start` is running: it uses the running DynamoDB Local when
 * there is one, and otherwise starts one on the same data directory for the moment it needs.
 */
import { parseArgs } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
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

const { values } = parseArgs({
  options: {
    username: { type: 'string' },
    password: { type: 'string' },
    'password-stdin': { type: 'boolean', default: false },
    email: { type: 'string' },
    aws: { type: 'boolean', default: false },
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
  console.error('usage: npm run admin:create -- --username NAME [--password-stdin | --password PASSWORD] [--email EMAIL] [--aws]');
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

let started: DynamoDbLocal | undefined;
let unlock = (): void => undefined;
let store: Store;
try {
  if (values.aws) {
    if (!process.env.TABLE_NAME) throw new Error('TABLE_NAME must name the deployed table (see the stack outputs)');
    store = new Store({ tableName: process.env.TABLE_NAME });
  } else {
    const dataDir = path.resolve(values['data-dir'] ?? process.env.DATA_DIR ?? '.data');
    const tableName = process.env.TABLE_NAME ?? TABLE.defaultName;
    const stateFile = path.join(dataDir, 'runtime.json');
    let endpoint = process.env.DYNAMODB_ENDPOINT;
    if (!endpoint && existsSync(stateFile)) {
      const candidate = JSON.parse(readFileSync(stateFile, 'utf8')).dynamodb_endpoint as string | undefined;
      if (candidate && (await reachable(candidate))) endpoint = candidate;
    }
    if (!endpoint) {
      // No runtime is serving this data directory: hold it as one would for the moment it takes.
      unlock = lockDataDir(dataDir);
      started = await startDynamoDbLocal({ dataDir: path.join(dataDir, 'dynamodb') });
      endpoint = started.endpoint;
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
