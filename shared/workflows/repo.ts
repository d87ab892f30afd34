/**
 * Workflows, their versions, executions and step records, and the counters the health endpoint reads.
 * Keys are documented in docs/data-model.md ("Workflows and schedules").
 */
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { Store } from '../platform/store/client.js';
import { epochSeconds } from '../platform/store/client.js';
import { queryPage, type StorePage } from '../platform/store/query.js';
import { writeItems } from '../platform/store/batch-write.js';
import { cancellationCodes, isConditionFailure, isTransactionCancelled, VersionConflictError } from '../platform/store/conflicts.js';
import type { WorkflowDefinition, VariableValue } from './definition.js';
import type { ExecutionStatus, StepError, StepState } from './engine.js';

export interface WorkflowRecord {
  workflow_id: string;
  name: string;
  description: string | null;
  version: number;
  step_count: number;
  created_by: string;
  created_by_username: string;
  created_at: string;
  updated_at: string;
}

export interface WorkflowVersionRecord {
  workflow_id: string;
  version: number;
  definition: WorkflowDefinition;
  created_by: string;
  created_at: string;
}

export type ExecutionTrigger = 'api' | 'schedule' | 'manual';

export interface ExecutionRecord {
  execution_id: string;
  workflow_id: string;
  workflow_name: string;
  workflow_version: number;
  status: ExecutionStatus;
  trigger: ExecutionTrigger;
  triggered_by: string;
  schedule_id: string | null;
  variables: Record<string, VariableValue>;
  created_by: string;
  created_by_username: string;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  timeout_at: string | null;
  run_id: string | null;
  error: StepError | null;
  output: Record<string, string> | null;
  updated_at: string;
}

export interface StepRecord extends StepState {
  output_truncated: boolean;
}

/** Step outputs are kept up to this many characters (DynamoDB items are limited to 400 KB). */
export const STEP_OUTPUT_LIMIT = 32 * 1024;
/** Failure buckets outlive the 24 h window the health endpoint reads. */
const FAILURE_BUCKET_TTL_SECONDS = 3 * 24 * 3600;

const workflowKey = (id: string) => ({ pk: `WORKFLOW#${id}`, sk: 'META' });
const versionKey = (id: string, version: number) => ({ pk: `WORKFLOW#${id}`, sk: `VERSION#${String(version).padStart(6, '0')}` });
const nameKey = (name: string) => ({ pk: `UNIQUE#workflow_name#${name.toLowerCase()}`, sk: 'UNIQUE' });
export const EXECUTION_KEY_PREFIX = 'EXECUTION#';
export const EXECUTION_SORT_KEY = 'META';
export const STEP_SORT_KEY_PREFIX = 'STEP#';
const executionKey = (id: string) => ({ pk: `${EXECUTION_KEY_PREFIX}${id}`, sk: EXECUTION_SORT_KEY });
const stepKey = (executionId: string, stepId: string) => ({ pk: `${EXECUTION_KEY_PREFIX}${executionId}`, sk: `${STEP_SORT_KEY_PREFIX}${stepId}` });
const ACTIVE_EXECUTIONS = { pk: 'COUNTER#workflow_executions', sk: 'ACTIVE' };
const FAILURES_PK = 'COUNTER#workflow_failures';
const failureBucket = (at: Date) => ({ pk: FAILURES_PK, sk: at.toISOString().slice(0, 13) });
const executionsOf = (workflowId: string) => `WORKFLOW_EXECUTIONS#${workflowId}`;
const executionsWithStatus = (workflowId: string, status: ExecutionStatus) => `WORKFLOW_EXECUTIONS#${workflowId}#${status}`;

export class WorkflowNameTakenError extends Error {
  constructor(readonly workflowName: string) {
    super(`a workflow named '${workflowName}' already exists`);
  }
}

function strip<T>(item: Record<string, unknown> | undefined): T | undefined {
  if (!item) return undefined;
  const { pk: _a, sk: _b, gsi1pk: _c, gsi1sk: _d, gsi2pk: _e, gsi2sk: _f, gsi3pk: _g, gsi3sk: _h, entity: _i, name_lower: _j, ...rest } = item;
  return rest as T;
}

/** A run as its stored item (or a stream image of it) holds it. */
export function executionOfItem(item: Record<string, unknown>): ExecutionRecord {
  return strip<ExecutionRecord>(item)!;
}

/** A step's state as its stored item (or a stream image of it) holds it. */
export function stepOfItem(item: Record<string, unknown>): StepRecord {
  const { execution_id: _e, ...state } = strip<StepRecord & { execution_id: string }>(item)!;
  return state;
}

export class WorkflowRepository {
  constructor(private readonly store: Store) {}

  private metaItem(w: WorkflowRecord) {
    return {
      ...workflowKey(w.workflow_id),
      entity: 'workflow',
      gsi1pk: 'WORKFLOWS',
      gsi1sk: w.workflow_id,
      gsi2pk: `WORKFLOWS_BY#${w.created_by}`,
      gsi2sk: w.workflow_id,
      name_lower: w.name.toLowerCase(),
      ...w,
    };
  }

  /** The workflow, its first version and its name claim, in one transaction. */
  async create(workflow: WorkflowRecord, version: WorkflowVersionRecord): Promise<void> {
    try {
      await this.store.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: this.store.table, Item: { ...nameKey(workflow.name), entity: 'unique', workflow_id: workflow.workflow_id }, ConditionExpression: 'attribute_not_exists(pk)' } },
            { Put: { TableName: this.store.table, Item: this.metaItem(workflow), ConditionExpression: 'attribute_not_exists(pk)' } },
            { Put: { TableName: this.store.table, Item: { ...versionKey(workflow.workflow_id, version.version), entity: 'workflow_version', ...version }, ConditionExpression: 'attribute_not_exists(pk)' } },
          ],
        }),
      );
    } catch (err) {
      if (isTransactionCancelled(err) && cancellationCodes(err)[0] === 'ConditionalCheckFailed') throw new WorkflowNameTakenError(workflow.name);
      throw err;
    }
  }

  async get(workflowId: string): Promise<WorkflowRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: workflowKey(workflowId), ConsistentRead: true }));
    return strip<WorkflowRecord>(out.Item);
  }

  async getVersion(workflowId: string, version: number): Promise<WorkflowVersionRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: versionKey(workflowId, version) }));
    return strip<WorkflowVersionRecord>(out.Item);
  }

  /**
   * A new version: the meta moves to it on the condition that nobody else moved it first; a rename
   * moves the name claim in the same transaction.
   */
  async addVersion(before: WorkflowRecord, after: WorkflowRecord, version: WorkflowVersionRecord): Promise<void> {
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      {
        Put: {
          TableName: this.store.table,
          Item: this.metaItem(after),
          ConditionExpression: 'attribute_exists(pk) AND version = :expected',
          ExpressionAttributeValues: { ':expected': before.version },
        },
      },
      { Put: { TableName: this.store.table, Item: { ...versionKey(after.workflow_id, version.version), entity: 'workflow_version', ...version }, ConditionExpression: 'attribute_not_exists(pk)' } },
    ];
    const renamed = before.name.toLowerCase() !== after.name.toLowerCase();
    if (renamed) {
      items.push(
        { Put: { TableName: this.store.table, Item: { ...nameKey(after.name), entity: 'unique', workflow_id: after.workflow_id }, ConditionExpression: 'attribute_not_exists(pk)' } },
        { Delete: { TableName: this.store.table, Key: nameKey(before.name) } },
      );
    }
    try {
      await this.store.doc.send(new TransactWriteCommand({ TransactItems: items }));
    } catch (err) {
      if (isTransactionCancelled(err)) {
        const codes = cancellationCodes(err);
        if (renamed && codes[2] === 'ConditionalCheckFailed') throw new WorkflowNameTakenError(after.name);
        if (codes[0] === 'ConditionalCheckFailed') throw new VersionConflictError('the workflow');
      }
      throw err;
    }
  }

  /**
   * Removes the workflow, its name claim and every version, on the condition that it is still the
   * version that was read (a rename meanwhile moved the name claim): VersionConflictError otherwise,
   * also when it is gone already.
   */
  async delete(workflow: WorkflowRecord): Promise<void> {
    try {
      await this.store.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Delete: {
                TableName: this.store.table,
                Key: workflowKey(workflow.workflow_id),
                ConditionExpression: 'version = :expected',
                ExpressionAttributeValues: { ':expected': workflow.version },
              },
            },
            { Delete: { TableName: this.store.table, Key: nameKey(workflow.name) } },
          ],
        }),
      );
    } catch (err) {
      if (isTransactionCancelled(err) && cancellationCodes(err)[0] === 'ConditionalCheckFailed') throw new VersionConflictError('the workflow');
      throw err;
    }
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.store.doc.send(
        new QueryCommand({
          TableName: this.store.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': workflowKey(workflow.workflow_id).pk, ':prefix': 'VERSION#' },
          ProjectionExpression: 'pk, sk',
          ExclusiveStartKey: startKey,
        }),
      );
      await writeItems(this.store, (out.Items ?? []).map((i) => ({ delete: { pk: i.pk, sk: i.sk } })));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
  }

  async list(filter: { created_by?: string; search?: string }, limit: number, startKey?: Record<string, unknown>): Promise<StorePage<WorkflowRecord>> {
    const byOwner = filter.created_by !== undefined;
    const page = await queryPage<Record<string, unknown>>(this.store, {
      index: byOwner ? 'gsi2' : 'gsi1',
      keyCondition: byOwner ? 'gsi2pk = :p' : 'gsi1pk = :p',
      values: { ':p': byOwner ? `WORKFLOWS_BY#${filter.created_by}` : 'WORKFLOWS', ...(filter.search ? { ':search': filter.search.toLowerCase() } : {}) },
      filter: filter.search ? 'contains(name_lower, :search)' : undefined,
      limit,
      startKey,
    });
    return { ...page, items: page.items.map((i) => strip<WorkflowRecord>(i)!) };
  }
}

export class ExecutionRepository {
  constructor(private readonly store: Store) {}

  private executionItem(e: ExecutionRecord) {
    return {
      ...executionKey(e.execution_id),
      entity: 'workflow_execution',
      gsi1pk: executionsOf(e.workflow_id),
      gsi1sk: e.execution_id,
      gsi2pk: executionsWithStatus(e.workflow_id, e.status),
      gsi2sk: e.execution_id,
      ...e,
    };
  }

  /**
   * A new run (pending), counted as active. A run of that id that already exists is a
   * VersionConflictError (callers that choose the id in advance, such as a schedule firing, rely on it).
   */
  async create(execution: ExecutionRecord): Promise<void> {
    try {
      await this.store.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: this.store.table, Item: this.executionItem(execution), ConditionExpression: 'attribute_not_exists(pk)' } },
            { Update: { TableName: this.store.table, Key: ACTIVE_EXECUTIONS, UpdateExpression: 'ADD #c :one', ExpressionAttributeNames: { '#c': 'count' }, ExpressionAttributeValues: { ':one': 1 } } },
          ],
        }),
      );
    } catch (err) {
      if (isTransactionCancelled(err) && cancellationCodes(err)[0] === 'ConditionalCheckFailed') throw new VersionConflictError('the execution');
      throw err;
    }
  }

  async get(executionId: string): Promise<ExecutionRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: executionKey(executionId), ConsistentRead: true }));
    return strip<ExecutionRecord>(out.Item);
  }

  /** The run and its step records in one consistent query. */
  async load(executionId: string): Promise<{ execution?: ExecutionRecord; steps: Map<string, StepRecord> }> {
    const steps = new Map<string, StepRecord>();
    let execution: ExecutionRecord | undefined;
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.store.doc.send(
        new QueryCommand({
          TableName: this.store.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': executionKey(executionId).pk },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) {
        if (item.sk === EXECUTION_SORT_KEY) execution = executionOfItem(item);
        else {
          const state = stepOfItem(item);
          steps.set(state.step_id, state);
        }
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return { execution, steps };
  }

  async setRunId(executionId: string, runId: string, now: string): Promise<void> {
    await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: executionKey(executionId),
        UpdateExpression: 'SET run_id = :run, updated_at = :now',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':run': runId, ':now': now },
      }),
    );
  }

  /**
   * Keeps the task token of the engine's Advance waiting for step callbacks (replacing an older one);
   * false when the run is not running any more.
   */
  async storeCallbackToken(executionId: string, token: string): Promise<boolean> {
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: executionKey(executionId),
          UpdateExpression: 'SET callback_token = :token',
          ConditionExpression: '#s = :running',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':token': token, ':running': 'running' },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** Takes (removes and answers) the waiting task token, with the run as it was; undefined when none waits. */
  async takeCallbackToken(executionId: string): Promise<{ token: string; execution: ExecutionRecord } | undefined> {
    try {
      const out = await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: executionKey(executionId),
          UpdateExpression: 'REMOVE callback_token',
          ConditionExpression: 'attribute_exists(callback_token)',
          ReturnValues: 'ALL_OLD',
        }),
      );
      const old = out.Attributes as (ExecutionRecord & { callback_token?: string }) | undefined;
      return old?.callback_token ? { token: old.callback_token, execution: old } : undefined;
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  /** pending → running; false when the run was not pending any more. */
  async markRunning(execution: ExecutionRecord, now: string): Promise<boolean> {
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: executionKey(execution.execution_id),
          UpdateExpression: 'SET #s = :running, gsi2pk = :g2, started_at = :now, updated_at = :now',
          ConditionExpression: '#s = :pending',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':running': 'running', ':pending': 'pending', ':g2': executionsWithStatus(execution.workflow_id, 'running'), ':now': now },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /**
   * Ends a run (pending or running → completed, failed or cancelled), uncounts it as active and counts
   * a failure in its hour's bucket, in one transaction. False when the run had already ended.
   */
  async finish(
    execution: ExecutionRecord,
    status: 'completed' | 'failed' | 'cancelled',
    result: { error: StepError | null; output: Record<string, string> | null },
    now: Date,
  ): Promise<boolean> {
    const nowIso = now.toISOString();
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      {
        Update: {
          TableName: this.store.table,
          Key: executionKey(execution.execution_id),
          UpdateExpression: 'SET #s = :status, gsi2pk = :g2, completed_at = :now, updated_at = :now, #e = :error, #o = :output, started_at = if_not_exists(started_at, :now)',
          ConditionExpression: '#s IN (:pending, :running)',
          ExpressionAttributeNames: { '#s': 'status', '#e': 'error', '#o': 'output' },
          ExpressionAttributeValues: {
            ':status': status,
            ':g2': executionsWithStatus(execution.workflow_id, status),
            ':now': nowIso,
            ':error': result.error,
            ':output': result.output,
            ':pending': 'pending',
            ':running': 'running',
          },
        },
      },
      { Update: { TableName: this.store.table, Key: ACTIVE_EXECUTIONS, UpdateExpression: 'ADD #c :minus', ExpressionAttributeNames: { '#c': 'count' }, ExpressionAttributeValues: { ':minus': -1 } } },
    ];
    if (status === 'failed') {
      items.push({
        Update: {
          TableName: this.store.table,
          Key: failureBucket(now),
          UpdateExpression: 'ADD #c :one SET expires_at = :exp',
          ExpressionAttributeNames: { '#c': 'count' },
          ExpressionAttributeValues: { ':one': 1, ':exp': epochSeconds(now) + FAILURE_BUCKET_TTL_SECONDS },
        },
      });
    }
    try {
      await this.store.doc.send(new TransactWriteCommand({ TransactItems: items }));
      return true;
    } catch (err) {
      if (isTransactionCancelled(err) && cancellationCodes(err)[0] === 'ConditionalCheckFailed') return false;
      throw err;
    }
  }

  /**
   * Writes a step's new state on the condition that the record is still the one the decision was
   * made on (same revision). With `whileRunning` the run must still be running too (a step is never
   * started after the run ended). False when either condition failed: another Advance or a cancel got
   * there first.
   */
  async writeStep(executionId: string, before: StepState, after: StepState, options: { whileRunning?: boolean } = {}): Promise<boolean> {
    const output = after.output;
    const truncated = output !== null && output.length > STEP_OUTPUT_LIMIT;
    const item = {
      ...stepKey(executionId, after.step_id),
      entity: 'workflow_step',
      execution_id: executionId,
      ...after,
      output: truncated ? output!.slice(0, STEP_OUTPUT_LIMIT) : output,
      output_truncated: truncated || (after as Partial<StepRecord>).output_truncated === true,
      rev: before.rev + 1,
    };
    const put = {
      TableName: this.store.table,
      Item: item,
      ConditionExpression: before.rev === 0 ? 'attribute_not_exists(pk)' : 'rev = :rev',
      ExpressionAttributeValues: before.rev === 0 ? undefined : { ':rev': before.rev },
    };
    try {
      if (options.whileRunning) {
        await this.store.doc.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                ConditionCheck: {
                  TableName: this.store.table,
                  Key: executionKey(executionId),
                  ConditionExpression: '#s = :running',
                  ExpressionAttributeNames: { '#s': 'status' },
                  ExpressionAttributeValues: { ':running': 'running' },
                },
              },
              { Put: put },
            ],
          }),
        );
      } else {
        await this.store.doc.send(new PutCommand(put));
      }
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async listByWorkflow(workflowId: string, status: ExecutionStatus | undefined, limit: number, startKey?: Record<string, unknown>): Promise<StorePage<ExecutionRecord>> {
    const page = await queryPage<Record<string, unknown>>(this.store, status
      ? { index: 'gsi2', keyCondition: 'gsi2pk = :p', values: { ':p': executionsWithStatus(workflowId, status) }, limit, startKey }
      : { index: 'gsi1', keyCondition: 'gsi1pk = :p', values: { ':p': executionsOf(workflowId) }, limit, startKey });
    return { ...page, items: page.items.map((i) => strip<ExecutionRecord>(i)!) };
  }

  /** Ids of the workflow's runs that have not ended (pending or running). */
  async unfinishedOf(workflowId: string): Promise<string[]> {
    const ids: string[] = [];
    for (const status of ['pending', 'running'] as const) {
      let startKey: Record<string, unknown> | undefined;
      do {
        const out = await this.store.doc.send(
          new QueryCommand({
            TableName: this.store.table,
            IndexName: 'gsi2',
            KeyConditionExpression: 'gsi2pk = :p',
            ExpressionAttributeValues: { ':p': executionsWithStatus(workflowId, status) },
            ProjectionExpression: 'execution_id',
            ExclusiveStartKey: startKey,
          }),
        );
        for (const item of out.Items ?? []) ids.push(item.execution_id as string);
        startKey = out.LastEvaluatedKey;
      } while (startKey);
    }
    return ids;
  }

  /** Runs that have not ended, all workflows (kept on write). */
  async activeCount(): Promise<number> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: ACTIVE_EXECUTIONS, ConsistentRead: true }));
    return Number(out.Item?.count ?? 0);
  }

  /** Runs that failed in the current hour and the 23 before it (hourly buckets kept on write). */
  async failuresSince(now: Date): Promise<number> {
    const from = failureBucket(new Date(now.getTime() - 23 * 3600 * 1000)).sk;
    const out = await this.store.doc.send(
      new QueryCommand({
        TableName: this.store.table,
        KeyConditionExpression: 'pk = :pk AND sk >= :from',
        ExpressionAttributeValues: { ':pk': FAILURES_PK, ':from': from },
      }),
    );
    return (out.Items ?? []).reduce((sum, item) => sum + Number(item.count ?? 0), 0);
  }
}
