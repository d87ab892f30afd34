import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { prepareDataDir } from './data-dir.js';

/**
 * What a running `npm start` publishes so that tools on the same machine (admin:create) find its
 * database: the runtime's URL and its DynamoDB Local endpoint, whose user name is the access key id
 * that opens the table (so the file is mode 0600 in the 0700 data directory).
 *
 * A runtime on a data directory writes `<dir>/runtime.json`; an in-memory one writes
 * `<dir>/runtime-memory.json` (no data goes to disk, only this pointer). Each is removed on stop.
 */
export interface RuntimeState {
  pid: number;
  url: string;
  dynamodb_endpoint: string;
  /** DynamoDB Local's first process id (a restart after its exit gets another). */
  dynamodb_pid?: number;
  /** The data directory the database lives in; null for an in-memory runtime. */
  data_dir: string | null;
}

export function runtimeStateFile(dataDir: string, inMemory: boolean): string {
  return path.join(dataDir, inMemory ? 'runtime-memory.json' : 'runtime.json');
}

/** Writes the state file; returns what removes it (only while it is still this process's). */
export function publishRuntimeState(file: string, state: RuntimeState): () => void {
  prepareDataDir(path.dirname(file));
  writeFileSync(file, JSON.stringify(state), { mode: 0o600 });
  chmodSync(file, 0o600);
  return () => {
    if (readRuntimeState(file)?.pid === state.pid) rmSync(file, { force: true });
  };
}

export function readRuntimeState(file: string): RuntimeState | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<RuntimeState>;
    if (typeof value.dynamodb_endpoint !== 'string' || typeof value.pid !== 'number') return undefined;
    return { pid: value.pid, url: String(value.url ?? ''), dynamodb_endpoint: value.dynamodb_endpoint, data_dir: value.data_dir ?? null };
  } catch {
    return undefined;
  }
}
