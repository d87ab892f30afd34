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

export interface DynamoDbLocal {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
  /** Kills the process without waiting (tests of "the store is down"). */
  kill(): void;
  process: ChildProcess;
}

/** Starts Amazon's DynamoDB Local jar as a child process and waits until it answers. */
export async function startDynamoDbLocal(options: { dataDir?: string; port?: number }): Promise<DynamoDbLocal> {
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
  const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const endpoint = `http://127.0.0.1:${port}`;
  const client = localClient(endpoint);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`DynamoDB Local exited with code ${child.exitCode}:\n${output}`);
    try {
      await client.send(new ListTablesCommand({}));
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`DynamoDB Local did not answer within 30 s:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  client.destroy();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    endpoint,
    port,
    process: child,
    kill: () => child.kill('SIGKILL'),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
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
