import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { TABLE } from '../shared/platform/infra.js';
import { localEndpoint } from '../shared/platform/aws/util.js';
import { prepareDataDir } from './data-dir.js';

export class JavaMissingError extends Error {
  constructor() {
    super(
      [
        'DynamoDB Local needs Java (17 or later), and no `java` was found on the PATH.',
        'Install it, for example:',
        '  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless',
        '  macOS:         brew install openjdk@17',
        'or point DYNAMODB_ENDPOINT at a DynamoDB Local that is already running.',
      ].join('\n'),
    );
  }
}

export function javaAvailable(): boolean {
  const res = spawnSync('java', ['-version'], { stdio: 'ignore' });
  return !res.error && res.status === 0;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function emulatorDir(): string {
  const req = createRequire(import.meta.url);
  return path.join(path.dirname(req.resolve('amplify-dynamodb-simulator/package.json')), 'emulator');
}

/** DynamoDB Local accepts access key ids of letters and digits only. */
export function newAccessKeyId(): string {
  return randomBytes(24).toString('hex');
}

/** The file, in DynamoDB Local's data directory, that keeps the access key id of its database. */
export const ACCESS_KEY_FILE = 'access-key-id';
/** The region the local clients name; DynamoDB Local's database file is `<accessKeyId>_<region>.db`. */
const REGION = 'local';

/**
 * The access key id of `dataDir`'s database: read from `<dataDir>/access-key-id` (mode 0600), created at
 * first start. A database left by `-sharedDb` (`shared-local-instance.db`, how earlier versions ran it) is
 * renamed to the key's file, so the data stays.
 */
export function dataDirAccessKey(dataDir: string): string {
  prepareDataDir(dataDir);
  const file = path.join(dataDir, ACCESS_KEY_FILE);
  let key = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  if (!/^[A-Za-z0-9]{16,}$/.test(key)) {
    key = newAccessKeyId();
    writeFileSync(file, key, { mode: 0o600 });
  }
  chmodSync(file, 0o600);
  const shared = path.join(dataDir, 'shared-local-instance.db');
  const own = path.join(dataDir, `${key}_${REGION}.db`);
  if (existsSync(shared) && !existsSync(own)) renameSync(shared, own);
  for (const name of readdirSync(dataDir)) if (name.endsWith('.db')) chmodSync(path.join(dataDir, name), 0o600);
  return key;
}

export type DynamoDbLocalState = 'up' | 'down' | 'restarting' | 'stopped';

export interface DynamoDbLocal {
  /**
   * The URL the runtime's clients use, with the instance's access key id as user name: DynamoDB Local
   * (run without `-sharedDb`) shows a client with other credentials an empty database of its own.
   */
  endpoint: string;
  /** The same without credentials (for display). */
  url: string;
  accessKeyId: string;
  port: number;
  stop(): Promise<void>;
  /** Kills the current process without waiting (tests of "the store is down"); a supervised one is restarted. */
  kill(): void;
  /** The current Java process (a new one after each restart). */
  readonly process: ChildProcess;
  /** up: answering; down: exited, a restart is due; restarting: a new process is starting; stopped: by stop(). */
  state(): DynamoDbLocalState;
  /** Restarts since the first start. */
  readonly restarts: number;
}

export interface DynamoDbLocalOptions {
  dataDir?: string;
  port?: number;
  /**
   * Restart the process when it exits (on the same port and data directory), after a backoff of
   * `initialDelayMs` doubling up to `maxDelayMs` while restarts keep failing; an exit is logged with
   * its code either way. Off unless given (`restart: false` only logs).
   */
  supervise?: { restart?: boolean; initialDelayMs?: number; maxDelayMs?: number; log?: (line: string) => void; onRestart?: (endpoint: string) => Promise<void> };
  /** Which of the JVM's compilers run DynamoDB Local (see `JIT_OPTIONS`); `peak` unless given. */
  jit?: DynamoDbLocalJit;
}

/**
 * `peak`: the JVM's default tiered compilation, the quick compiler (C1) then the optimising one (C2).
 * `quick`: C1 only (`-XX:TieredStopAtLevel=1`). C2's own threads take much of the CPU for the first
 * minutes while they compile DynamoDB Local's many paths, and pay that back only under minutes of
 * steady load. Measured on 2 cores:
 * - a fresh process: a 10-step workflow chain cost DynamoDB Local 584 ms of CPU per step with `peak`,
 *   216 ms with `quick` (439 against 268 ms a step); the tasks' and workflows' integration tests took
 *   104 s against 88 s;
 * - after minutes of load: a task's run cost it 43.7 ms with `peak`, 60.3 ms with `quick` (the worker
 *   drained 21.8 against 16.4 tasks/s).
 * So a runtime that serves (`npm start`, the bench) keeps `peak`; the test run, short and touching
 * every path once, takes `quick`.
 */
export type DynamoDbLocalJit = 'peak' | 'quick';
const JIT_OPTIONS: Record<DynamoDbLocalJit, string[]> = { peak: [], quick: ['-XX:TieredStopAtLevel=1'] };

/** First restart delay and its ceiling for a supervised DynamoDB Local. */
export const RESTART_INITIAL_DELAY_MS = 500;
export const RESTART_MAX_DELAY_MS = 10_000;

/**
 * Starts Amazon's DynamoDB Local jar as a child process and waits until it answers. It listens on every
 * interface (it has no bind option) and checks no signature, so its database is keyed by a secret
 * access key id: one per data directory (see `dataDirAccessKey`), a random one in memory.
 */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions): Promise<DynamoDbLocal> {
  if (!javaAvailable()) throw new JavaMissingError();
  const port = options.port ?? (await freePort());
  const dir = emulatorDir();
  const args = [...JIT_OPTIONS[options.jit ?? 'peak'], `-Djava.library.path=${path.join(dir, 'DynamoDBLocal_lib')}`, '-Xmx512m', '-jar', path.join(dir, 'DynamoDBLocal.jar'), '-port', String(port), '-disableTelemetry'];
  let accessKeyId: string;
  if (options.dataDir) {
    accessKeyId = dataDirAccessKey(options.dataDir);
    args.push('-dbPath', options.dataDir);
  } else {
    accessKeyId = newAccessKeyId();
    args.push('-inMemory');
  }
  const url = `http://127.0.0.1:${port}`;
  // The access key id travels as the endpoint's user name (see `localEndpoint`).
  const endpoint = `http://${accessKeyId}@127.0.0.1:${port}`;
  let child = await launch(args, endpoint);
  let state: DynamoDbLocalState = 'up';
  let restarts = 0;
  let timer: NodeJS.Timeout | undefined;
  const supervise = options.supervise;
  const log = supervise?.log ?? (() => undefined);

  const watch = (proc: ChildProcess) => {
    proc.once('exit', (code, signal) => {
      if (state === 'stopped') return;
      state = 'down';
      const restart = supervise && supervise.restart !== false;
      log(`DynamoDB Local exited (code ${code ?? 'none'}${signal ? `, signal ${signal}` : ''})${restart ? `; restarting it on port ${port}` : ''}`);
      if (restart) schedule(supervise.initialDelayMs ?? RESTART_INITIAL_DELAY_MS);
    });
  };
  const schedule = (delayMs: number) => {
    timer = setTimeout(() => void restart(delayMs), delayMs);
  };
  const restart = async (delayMs: number) => {
    if (state === 'stopped') return;
    state = 'restarting';
    const started = Date.now();
    try {
      const next = await launch(args, endpoint);
      if ((state as DynamoDbLocalState) === 'stopped') {
        next.kill('SIGKILL');
        return;
      }
      child = next;
      restarts++;
      watch(child);
      await supervise?.onRestart?.(endpoint);
      state = 'up';
      log(`DynamoDB Local restarted (restart ${restarts}, up after ${Date.now() - started} ms)`);
    } catch (err) {
      if ((state as DynamoDbLocalState) === 'stopped') return;
      state = 'down';
      const next = Math.min(delayMs * 2, supervise?.maxDelayMs ?? RESTART_MAX_DELAY_MS);
      log(`DynamoDB Local restart failed: ${(err as Error).message.split('\n')[0]}; next try in ${next} ms`);
      schedule(next);
    }
  };
  watch(child);

  return {
    endpoint,
    url,
    accessKeyId,
    port,
    get process() {
      return child;
    },
    get restarts() {
      return restarts;
    },
    state: () => state,
    kill: () => child.kill('SIGKILL'),
    stop: async () => {
      state = 'stopped';
      if (timer) clearTimeout(timer);
      const proc = child;
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        proc.kill('SIGTERM');
        const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(kill);
      }
    },
  };
}

/** Spawns the jar and waits until it answers (60 s at most). */
async function launch(args: string[], endpoint: string): Promise<ChildProcess> {
  const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => (output = (output + d).slice(-20_000)));
  child.stderr?.on('data', (d) => (output = (output + d).slice(-20_000)));
  const client = localClient(endpoint);
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`DynamoDB Local exited with code ${child.exitCode}:\n${output}`);
      try {
        await client.send(new ListTablesCommand({}));
        return child;
      } catch {
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new Error(`DynamoDB Local did not answer within 60 s:\n${output}`);
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    }
  } finally {
    client.destroy();
  }
}

/** A client of DynamoDB Local; `endpoint` carries the access key id as user name (see `DynamoDbLocal.endpoint`). */
export function localClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient(localEndpoint(endpoint));
}

/**
 * Creates the single table (`TABLE` of `shared/platform/infra.ts`, as the CDK stack does, its stream
 * included) unless it exists. `stream: false` (a runtime without the change feed) leaves the stream off:
 * DynamoDB Local looks up a table's stream metadata on every write to it.
 */
export async function ensureTable(endpoint: string, tableName: string, options: { stream?: boolean } = {}): Promise<void> {
  const stream = options.stream !== false;
  const client = localClient(endpoint);
  try {
    try {
      const existing = await client.send(new DescribeTableCommand({ TableName: tableName }));
      // A table made before the change feed existed gets its stream now.
      if (stream && !existing.Table?.StreamSpecification?.StreamEnabled) {
        await client.send(new UpdateTableCommand({ TableName: tableName, StreamSpecification: { StreamEnabled: true, StreamViewType: TABLE.stream } }));
      }
      return;
    } catch (err) {
      if ((err as { name?: string }).name !== 'ResourceNotFoundException') throw err;
    }
    const attrs = new Set<string>([TABLE.partitionKey, TABLE.sortKey]);
    for (const idx of TABLE.indexes) {
      attrs.add(idx.partitionKey);
      attrs.add(idx.sortKey);
    }
    try {
      await client.send(
        new CreateTableCommand({
          TableName: tableName,
          BillingMode: 'PAY_PER_REQUEST',
          ...(stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: TABLE.stream } } : {}),
          AttributeDefinitions: [...attrs].map((name) => ({ AttributeName: name, AttributeType: 'S' })),
          KeySchema: [
            { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
            { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
          ],
          GlobalSecondaryIndexes: TABLE.indexes.map((idx) => ({
            IndexName: idx.name,
            KeySchema: [
              { AttributeName: idx.partitionKey, KeyType: 'HASH' },
              { AttributeName: idx.sortKey, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          })),
        }),
      );
    } catch (err) {
      if ((err as { name?: string }).name !== 'ResourceInUseException') throw err;
    }
    await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: tableName });
    await client
      .send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { Enabled: true, AttributeName: TABLE.ttlAttribute } }))
      .catch(() => undefined);
  } finally {
    client.destroy();
  }
}
