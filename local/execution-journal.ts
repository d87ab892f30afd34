import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { RunnerStatus } from '../shared/platform/ports.js';
import type { Store } from '../shared/platform/store/client.js';
import { TABLE } from '../shared/platform/infra.js';

/**
 * Where the local Step Functions stand-in keeps its executions (name, input, status, and the output or
 * error once finished), so that they outlive the process as Step Functions' do: a runtime that starts
 * runs again the executions still RUNNING (see LocalStateMachineRunner.resume), and answers `describe`
 * for the finished ones. Items: `LOCAL_SFN` / `EXECUTION#<name>`; finished ones expire after 30 days.
 */
export interface JournalEntry {
  name: string;
  input: string;
  status: RunnerStatus;
  output?: unknown;
  error?: string;
}

export interface ExecutionJournal {
  save(entry: JournalEntry): Promise<void>;
  get(name: string): Promise<JournalEntry | undefined>;
  /** Executions recorded RUNNING. */
  unfinished(): Promise<JournalEntry[]>;
}

const PK = 'LOCAL_SFN';
const FINISHED_TTL_SECONDS = 30 * 24 * 3600;
/** A larger output is not kept (the engine records a run's outcome itself; this is the runner's copy). */
const MAX_OUTPUT_BYTES = 100_000;

export class StoreExecutionJournal implements ExecutionJournal {
  constructor(private readonly store: Store) {}

  async save(entry: JournalEntry): Promise<void> {
    const item: Record<string, unknown> = { pk: PK, sk: `EXECUTION#${entry.name}`, name: entry.name, input: entry.input, status: entry.status };
    if (entry.error !== undefined) item.error = entry.error.slice(0, 1000);
    if (entry.output !== undefined) {
      const text = JSON.stringify(entry.output);
      if (text !== undefined && Buffer.byteLength(text) <= MAX_OUTPUT_BYTES) item.output = text;
    }
    if (entry.status !== 'RUNNING') item[TABLE.ttlAttribute] = Math.floor(Date.now() / 1000) + FINISHED_TTL_SECONDS;
    await this.store.doc.send(new PutCommand({ TableName: this.store.table, Item: item }));
  }

  async get(name: string): Promise<JournalEntry | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: { pk: PK, sk: `EXECUTION#${name}` }, ConsistentRead: true }));
    return out.Item ? toEntry(out.Item) : undefined;
  }

  async unfinished(): Promise<JournalEntry[]> {
    const found: JournalEntry[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.store.doc.send(
        new QueryCommand({
          TableName: this.store.table,
          KeyConditionExpression: 'pk = :pk',
          FilterExpression: '#s = :running',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':pk': PK, ':running': 'RUNNING' },
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
        }),
      );
      for (const item of out.Items ?? []) found.push(toEntry(item));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return found;
  }
}

function toEntry(item: Record<string, unknown>): JournalEntry {
  return {
    name: String(item.name),
    input: String(item.input),
    status: item.status as RunnerStatus,
    ...(typeof item.output === 'string' ? { output: JSON.parse(item.output) as unknown } : {}),
    ...(typeof item.error === 'string' ? { error: item.error } : {}),
  };
}
