import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { TABLE } from '../shared/platform/infra.js';

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

export type DynamoDbLocalState = 'up' | 'down' | 'restarting' | 'stopped';

export interface DynamoDbLocal {
  endpoint: string;
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
}

/** First restart delay and its ceiling for a supervised DynamoDB Local. */
export const RESTART_INITIAL_DELAY_MS = 500;
export const RESTART_MAX_DELAY_MS = 10_000;

/** Starts Amazon's DynamoDB Local jar as a child process and waits until it answers. */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions): Promise<DynamoDbLocal> {
  if (!javaAvailable()) throw new JavaMissingError();
  const port = options.port ?? (await freePort());
  const dir = emulatorDir();
  const args = [`-Djava.library.path=${path.join(dir, 'DynamoDBLocal_lib')}`, '-Xmx512m', '-jar', path.join(dir, 'DynamoDBLocal.jar'), '-port', String(port), '-disableTelemetry'];
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    args.push('-sharedDb', '-dbPath', options.dataDir);
  } else {
    args.push('-sharedDb', '-inMemory');
  }
  const endpoint = `http://127.0.0.1:${port}`;
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

/** Spawns the jar and waits until it answers (30 s at most). */
async function launch(args: string[], endpoint: string): Promise<ChildProcess> {
  const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => (output = (output + d).slice(-20_000)));
  child.stderr?.on('data', (d) => (output = (output + d).slice(-20_000)));
  const client = localClient(endpoint);
  const deadline = Date.now() + 30_000;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`DynamoDB Local exited with code ${child.exitCode}:\n${output}`);
      try {
        await client.send(new ListTablesCommand({}));
        return child;
      } catch {
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new Error(`DynamoDB Local did not answer within 30 s:\n${output}`);
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    }
  } finally {
    client.destroy();
  }
}

export function localClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
}

/** Creates the single table (`TABLE` of `shared/platform/infra.ts`, as the CDK stack does) unless it exists. */
export async function ensureTable(endpoint: string, tableName: string): Promise<void> {
  const client = localClient(endpoint);
  try {
    try {
      await client.send(new DescribeTableCommand({ TableName: tableName }));
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
