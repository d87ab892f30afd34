import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Deps } from '../platform/runtime.js';
import { isConditionFailure } from '../platform/store/conflicts.js';

/**
 * The sweeper's health, kept in one item: when it last ran to the end, and its last failure that
 * reached the failure queue (after Lambda's retries on AWS; at once in the local runtime). The health
 * routes show it (`sweeper` among the dependencies).
 */
const SWEEPER_KEY = { pk: 'HEALTH', sk: 'SWEEPER' };
const MAX_ERROR_CHARS = 500;

export interface SweeperState {
  last_run_at?: string;
  last_failure_at?: string;
  last_error?: string;
  failures?: number;
}

/** A sweep ran to the end at `at` (never moves the time back, whatever order sweeps finish in). */
export async function recordSweeperRun(deps: Deps, at: Date): Promise<void> {
  try {
    await deps.store.doc.send(
      new UpdateCommand({
        TableName: deps.store.table,
        Key: SWEEPER_KEY,
        UpdateExpression: 'SET last_run_at = :at',
        ConditionExpression: 'attribute_not_exists(last_run_at) OR last_run_at < :at',
        ExpressionAttributeValues: { ':at': at.toISOString() },
      }),
    );
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
  }
}

/** A sweep failed for good at `at` (its invocation dead-lettered). */
export async function recordSweeperFailure(deps: Deps, at: Date, error: string): Promise<void> {
  await deps.store.doc.send(
    new UpdateCommand({
      TableName: deps.store.table,
      Key: SWEEPER_KEY,
      UpdateExpression: 'SET last_failure_at = :at, last_error = :error ADD failures :one',
      ExpressionAttributeValues: { ':at': at.toISOString(), ':error': error.slice(0, MAX_ERROR_CHARS), ':one': 1 },
    }),
  );
}

export async function sweeperState(deps: Deps): Promise<SweeperState | undefined> {
  const out = await deps.store.doc.send(new GetCommand({ TableName: deps.store.table, Key: SWEEPER_KEY, ConsistentRead: true }));
  if (!out.Item) return undefined;
  const { last_run_at, last_failure_at, last_error, failures } = out.Item as SweeperState;
  return { last_run_at, last_failure_at, last_error, failures };
}
