import '../local/quiet-sdk.js';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { startLocalRuntime } from '../local/runtime.js';
import { JavaMissingError } from '../local/dynamodb-local.js';
import { DataDirLockedError } from '../local/data-dir.js';
import { publishRuntimeState, runtimeStateFile } from '../local/runtime-state.js';

const { values } = parseArgs({
  options: {
    'in-memory': { type: 'boolean', default: false },
    port: { type: 'string' },
    host: { type: 'string' },
    // How long SIGTERM/SIGINT wait for running tasks before handing them back to the queue (default 20).
    'drain-seconds': { type: 'string' },
  },
  allowPositionals: false,
});

const port = Number(values.port ?? process.env.PORT ?? 3000);
const drainSeconds = values['drain-seconds'] === undefined ? undefined : Number(values['drain-seconds']);
if (drainSeconds !== undefined && !(Number.isFinite(drainSeconds) && drainSeconds >= 0 && drainSeconds <= 25)) {
  console.error('--drain-seconds must be a number of seconds from 0 to 25');
  process.exit(2);
}
const inMemory = values['in-memory'] ?? false;
const dataDirOption = path.resolve(process.env.DATA_DIR ?? '.data');
const dataDir = inMemory ? null : dataDirOption;

try {
  const runtime = await startLocalRuntime({
    port,
    host: values.host ?? process.env.HOST ?? '127.0.0.1',
    dataDir,
    dynamodbEndpoint: process.env.DYNAMODB_ENDPOINT,
    ...(drainSeconds !== undefined ? { drainMs: drainSeconds * 1000 } : {}),
    // Local development talks to model servers on this machine (Ollama, LM Studio…): outbound requests
    // may reach loopback and private addresses unless the environment says otherwise.
    env: { OUTBOUND_ALLOW_PRIVATE: process.env.OUTBOUND_ALLOW_PRIVATE || 'true' },
  });
  // Where this runtime's database is, for admin:create (an in-memory one too: only this pointer is
  // written). The endpoint carries DynamoDB Local's access key id: mode 0600, this user's eyes only.
  const stateFile = runtimeStateFile(dataDirOption, inMemory);
  const unpublish = runtime.dynamodb
    ? publishRuntimeState(stateFile, { pid: process.pid, url: runtime.url, dynamodb_endpoint: runtime.dynamodb.endpoint, dynamodb_pid: runtime.dynamodb.process.pid, data_dir: dataDir })
    : () => undefined;
  console.log(
    [
      '',
      `Supervisor is running (${dataDir ? `data in ${dataDir}` : 'in memory'})`,
      `  HTTP API    ${runtime.url}`,
      `  WebSocket   ${runtime.wsUrl}/ws?token=<access token>`,
      `  API docs    ${runtime.url}/docs`,
      `  DynamoDB    ${runtime.dynamodb ? `${runtime.dynamodb.url} (access key id in ${dataDir ? path.join(dataDir, 'dynamodb', 'access-key-id') : 'memory only'})` : process.env.DYNAMODB_ENDPOINT}`,
      ...(runtime.dynamodb ? [`  First admin npm run admin:create -- --username admin --password '…' (writes to this ${inMemory ? 'in-memory ' : ''}database)`] : []),
      '',
    ].join('\n'),
  );
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping (draining requests and queued work)…`);
    const force = setTimeout(() => {
      console.error('shutdown took longer than 30 s; exiting');
      process.exit(1);
    }, 30_000);
    await runtime.stop();
    clearTimeout(force);
    unpublish();
    console.log('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
} catch (err) {
  if (err instanceof JavaMissingError || err instanceof DataDirLockedError) {
    console.error(err.message);
    process.exit(2);
  }
  console.error('failed to start:', (err as Error).message);
  process.exit(1);
}
