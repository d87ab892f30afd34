/**
 * Workflow schedules and their firing records. Keys are documented in docs/data-model.md
 * ("Workflows and schedules").
 */
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import type { Store } from '../platform/store/client.js';
import { epochSeconds } from '../platform/store/client.js';
import { countItems, queryPage, type StorePage } from '../platform/store/query.js';
import { isConditionFailure, isTransactionCancelled, VersionConflictError } from '../platform/store/conflicts.js';
import { buildUpdate } from '../platform/store/update.js';
import type { VariableValue } from '../workflows/definition.js';
import type { OverlapPolicy, ScheduleStatus } from './schedule.js';

export type FiringOutcome = 'started' | 'skipped' | 'failed';

export interface ScheduleRecord {
  schedule_id: string;
  workflow_id: string;
  name: string;
  cron_expression: string;
  timezone: string;
  variables: Record<string, VariableValue>;
  overlap: OverlapPolicy;
  status: ScheduleStatus;
  /** Why the system paused it (its owner can no longer run it); null when active or paused by a user. */
  paused_reason?: string | null;
  next_run_at: string | null;
  last_run_at: string | null;
  last_execution_id: string | null;
  last_outcome: FiringOutcome | null;
  /** Why the last firing failed (its reason), when `last_outcome` is `failed`. */
  last_error?: string | null;
  runs: number;
  skipped_runs: number;
  last_skipped_at: string | null;
  created_by: string;
  created_by_username: string;
  created_at: string;
  updated_at: string;
  /** Write revision: user changes are conditional on it. */
  rev: number;
}

export interface FiringRecord {
  schedule_id: string;
  /** The instant the firing was due (the Scheduler's scheduled time). */
  scheduled_for: string;
  fired_at: string;
  outcome: FiringOutcome | 'starting';
  execution_id: string | null;
  reason: string | null;
  /**
   * The id the firing's run is (or will be) created under, chosen when the firing is claimed, so that a
   * retry can find out whether a claimer that died left a run behind. Absent on claims from before it.
   */
  planned_execution_id?: string | null;
  /** How many times the claim was taken over from a claimer that died. */
  takeovers?: number;
}

/** Firing records only serve deduplication and recent history. */
const FIRING_TTL_SECONDS = 7 * 24 * 3600;

const scheduleKey = (id: string) => ({ pk: `SCHEDULE#${id}`, sk: 'META' });
const firingKey = (id: string, scheduledFor: string) => ({ pk: `SCHEDULE#${id}`, sk: `FIRING#${scheduledFor}` });
const ACTIVE_SCHEDULES = { pk: 'COUNTER#schedules', sk: 'ACTIVE' };
const ACTIVE_INDEX = 'SCHEDULES_ACTIVE';


function strip(item: Record<string, unknown> | undefined): ScheduleRecord | undefined {
  if (!item) return undefined;
  const { pk: _a, sk: _b, gsi1pk: _c, gsi1sk: _d, gsi2pk: _e, gsi2sk: _f, gsi3pk: _g, gsi3sk: _h, entity: _i, ...rest } = item;
  return rest as unknown as ScheduleRecord;
}

export class ScheduleRepository {
  constructor(private readonly store: Store) {}

  private item(s: ScheduleRecord) {
    const due = s.status === 'active' && s.next_run_at ? { gsi3pk: ACTIVE_INDEX, gsi3sk: `${s.next_run_at}#${s.schedule_id}` } : {};
    return {
      ...scheduleKey(s.schedule_id),
      entity: 'schedule',
      gsi1pk: 'SCHEDULES',
      gsi1sk: s.schedule_id,
      gsi2pk: `WORKFLOW_SCHEDULES#${s.workflow_id}`,
      gsi2sk: s.schedule_id,
      ...due,
      ...s,
    };
  }

  private activeDelta(delta: number) {
    return {
      Update: {
        TableName: this.store.table,
        Key: ACTIVE_SCHEDULES,
        UpdateExpression: 'ADD #c :d',
        ExpressionAttributeNames: { '#c': 'count' },
        ExpressionAttributeValues: { ':d': delta },
      },
    };
  }

  async create(schedule: ScheduleRecord): Promise<void> {
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      { Put: { TableName: this.store.table, Item: this.item(schedule), ConditionExpression: 'attribute_not_exists(pk)' } },
    ];
    if (schedule.status === 'active') items.push(this.activeDelta(1));
    await this.store.doc.send(new TransactWriteCommand({ TransactItems: items }));
  }

  async get(scheduleId: string): Promise<ScheduleRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: scheduleKey(scheduleId), ConsistentRead: true }));
    return strip(out.Item);
  }

  /** Replaces the record if nobody changed it since `before` was read; keeps the active counter right. */
  async replace(before: ScheduleRecord, after: ScheduleRecord): Promise<ScheduleRecord> {
    const next = { ...after, rev: before.rev + 1 };
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      {
        Put: {
          TableName: this.store.table,
          Item: this.item(next),
          ConditionExpression: 'rev = :rev',
          ExpressionAttributeValues: { ':rev': before.rev },
        },
      },
    ];
    if (before.status !== next.status) items.push(this.activeDelta(next.status === 'active' ? 1 : -1));
    try {
      await this.store.doc.send(new TransactWriteCommand({ TransactItems: items }));
    } catch (err) {
      if (isTransactionCancelled(err)) throw new VersionConflictError('the schedule');
      throw err;
    }
    return next;
  }

  /** Deletes the record if it is still the one read. Its firing records are left to expire (TTL). */
  async delete(schedule: ScheduleRecord): Promise<void> {
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      {
        Delete: {
          TableName: this.store.table,
          Key: scheduleKey(schedule.schedule_id),
          ConditionExpression: 'rev = :rev',
          ExpressionAttributeValues: { ':rev': schedule.rev },
        },
      },
    ];
    if (schedule.status === 'active') items.push(this.activeDelta(-1));
    try {
      await this.store.doc.send(new TransactWriteCommand({ TransactItems: items }));
    } catch (err) {
      if (isTransactionCancelled(err)) throw new VersionConflictError('the schedule');
      throw err;
    }
  }

  /**
   * Claims one firing (the Scheduler delivers at least once): false when this firing was already
   * claimed, so a redelivery starts nothing. `executionId` is the id the firing's run will have.
   */
  async claimFiring(scheduleId: string, scheduledFor: string, now: Date, executionId?: string): Promise<boolean> {
    try {
      await this.store.doc.send(
        new PutCommand({
          TableName: this.store.table,
          Item: {
            ...firingKey(scheduleId, scheduledFor),
            entity: 'schedule_firing',
            schedule_id: scheduleId,
            scheduled_for: scheduledFor,
            fired_at: now.toISOString(),
            outcome: 'starting',
            execution_id: null,
            reason: null,
            planned_execution_id: executionId ?? null,
            expires_at: epochSeconds(now) + FIRING_TTL_SECONDS,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async getFiring(scheduleId: string, scheduledFor: string): Promise<FiringRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: firingKey(scheduleId, scheduledFor), ConsistentRead: true }));
    if (!out.Item) return undefined;
    const { pk: _a, sk: _b, entity: _c, expires_at: _d, ...rest } = out.Item;
    return rest as FiringRecord;
  }

  /**
   * Takes over a claim left `starting` by a claimer that died: the claim is stamped with `now` on the
   * condition that it is still the one read (`starting`, claimed at `claimedAt`), so that of two retries
   * only one takes it. False when someone else took or completed it meanwhile.
   */
  async takeOverFiring(scheduleId: string, scheduledFor: string, claimedAt: string, now: Date): Promise<boolean> {
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: firingKey(scheduleId, scheduledFor),
          UpdateExpression: 'SET fired_at = :now ADD takeovers :one',
          ConditionExpression: 'outcome = :starting AND fired_at = :claimed',
          ExpressionAttributeValues: { ':now': now.toISOString(), ':one': 1, ':starting': 'starting', ':claimed': claimedAt },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /**
   * Gives a firing back (it failed before starting anything) so that the Scheduler's retry can take it:
   * only while it is still `starting` (and, given `claimedAt`, still the claim of that time).
   */
  async releaseFiring(scheduleId: string, scheduledFor: string, claimedAt?: Date): Promise<void> {
    const values: Record<string, unknown> = { ':starting': 'starting' };
    let condition = 'outcome = :starting';
    if (claimedAt) {
      condition += ' AND fired_at = :claimed';
      values[':claimed'] = claimedAt.toISOString();
    }
    try {
      await this.store.doc.send(
        new DeleteCommand({ TableName: this.store.table, Key: firingKey(scheduleId, scheduledFor), ConditionExpression: condition, ExpressionAttributeValues: values }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /**
   * Records what a firing did, on the firing and on the schedule (last run, counts, next run). The
   * next run is only written when the schedule is still the one the firing read (`schedule.rev`). A
   * firing is recorded once: one already recorded (not `starting`) changes nothing, counts included.
   */
  async recordFiring(
    schedule: ScheduleRecord,
    firing: { scheduledFor: string; firedAt: Date; outcome: FiringOutcome; executionId: string | null; reason: string | null; nextRunAt: string | null },
  ): Promise<void> {
    const firedAt = firing.firedAt.toISOString();
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: firingKey(schedule.schedule_id, firing.scheduledFor),
          UpdateExpression: 'SET outcome = :o, execution_id = :e, reason = :r',
          ConditionExpression: 'attribute_not_exists(outcome) OR outcome = :starting',
          ExpressionAttributeValues: { ':o': firing.outcome, ':e': firing.executionId, ':r': firing.reason, ':starting': 'starting' },
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) return;
      throw err;
    }
    // What the firing did: its outcome, when, and its counts. The revision moves too, so that a user
    // change made on a read from before this firing is refused (409) instead of writing back the old
    // counts and last run.
    const record = {
      set: {
        updated_at: firedAt,
        last_outcome: firing.outcome,
        ...(firing.outcome === 'failed' ? { last_error: firing.reason } : {}),
        ...(firing.outcome === 'skipped' ? { last_skipped_at: firedAt } : {}),
        ...(firing.outcome === 'started' ? { last_run_at: firedAt, last_execution_id: firing.executionId } : {}),
      },
      add: { rev: 1, ...(firing.outcome === 'skipped' ? { skipped_runs: 1 } : {}), ...(firing.outcome === 'started' ? { runs: 1 } : {}) },
    };
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: scheduleKey(schedule.schedule_id),
          ...buildUpdate({
            set: { ...record.set, next_run_at: firing.nextRunAt, ...(firing.nextRunAt ? { gsi3sk: `${firing.nextRunAt}#${schedule.schedule_id}` } : {}) },
            add: record.add,
            remove: firing.nextRunAt ? [] : ['gsi3pk', 'gsi3sk'],
            condition: '#s = :active AND rev = :rev',
            names: { '#s': 'status' },
            values: { ':active': 'active', ':rev': schedule.rev },
          }),
        }),
      );
      return;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
    // Changed (new cron, paused) or deleted since the firing read it: its next run is the change's to
    // say, but what the firing did is still recorded (a run it started is the one overlap looks at).
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: scheduleKey(schedule.schedule_id),
          ...buildUpdate({ ...record, condition: 'attribute_exists(pk)' }),
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /** A manual run: counted and remembered as the schedule's last run, whatever its status. */
  async recordManualRun(scheduleId: string, executionId: string, now: Date): Promise<void> {
    await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: scheduleKey(scheduleId),
        UpdateExpression: 'SET last_run_at = :now, last_execution_id = :e, last_outcome = :o, updated_at = :now ADD runs :one, rev :one',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':now': now.toISOString(), ':e': executionId, ':o': 'started', ':one': 1 },
      }),
    ).catch((err) => {
      if (!isConditionFailure(err)) throw err;
    });
  }

  async firings(scheduleId: string, limit: number): Promise<FiringRecord[]> {
    const out = await this.store.doc.send(
      new QueryCommand({
        TableName: this.store.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :f)',
        ExpressionAttributeValues: { ':pk': scheduleKey(scheduleId).pk, ':f': 'FIRING#' },
        ScanIndexForward: false,
        Limit: limit,
        ConsistentRead: true,
      }),
    );
    return (out.Items ?? []).map((i) => {
      const { pk: _a, sk: _b, entity: _c, expires_at: _d, ...rest } = i;
      return rest as FiringRecord;
    });
  }

  async list(filter: { workflow_id?: string }, limit: number, startKey?: Record<string, unknown>): Promise<StorePage<ScheduleRecord>> {
    const byWorkflow = filter.workflow_id !== undefined;
    const page = await queryPage<Record<string, unknown>>(this.store, {
      index: byWorkflow ? 'gsi2' : 'gsi1',
      keyCondition: byWorkflow ? 'gsi2pk = :p' : 'gsi1pk = :p',
      values: { ':p': byWorkflow ? `WORKFLOW_SCHEDULES#${filter.workflow_id}` : 'SCHEDULES' },
      limit,
      startKey,
    });
    return { ...page, items: page.items.map((i) => strip(i)!) };
  }

  /** Every schedule of a workflow (a workflow has few). */
  async allOfWorkflow(workflowId: string): Promise<ScheduleRecord[]> {
    return this.collect({ index: 'gsi2', key: 'gsi2pk', value: `WORKFLOW_SCHEDULES#${workflowId}` });
  }

  /** Every schedule a user created (few per user; read when the user is deleted). */
  async allOfOwner(userId: string): Promise<ScheduleRecord[]> {
    return this.collect({ index: 'gsi1', key: 'gsi1pk', value: 'SCHEDULES', createdBy: userId });
  }


  /** Every active schedule, soonest first (re-registration at local start-up). */
  async allActive(): Promise<ScheduleRecord[]> {
    return this.collect({ index: 'gsi3', key: 'gsi3pk', value: ACTIVE_INDEX });
  }

  /** Active schedules whose next run is before `before` (not fired when due). */
  async overdueCount(before: Date): Promise<number> {
    return countItems(this.store, { index: 'gsi3', keyCondition: 'gsi3pk = :p AND gsi3sk < :cut', values: { ':p': ACTIVE_INDEX, ':cut': before.toISOString() } });
  }

  async activeCount(): Promise<number> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: ACTIVE_SCHEDULES, ConsistentRead: true }));
    return Number(out.Item?.count ?? 0);
  }

  /** Every item of one index partition (optionally only one creator's), page after page. */
  private async collect(q: { index: 'gsi1' | 'gsi2' | 'gsi3'; key: string; value: string; createdBy?: string }): Promise<ScheduleRecord[]> {
    const out: ScheduleRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.store.doc.send(
        new QueryCommand({
          TableName: this.store.table,
          IndexName: q.index,
          KeyConditionExpression: `${q.key} = :p`,
          ...(q.createdBy ? { FilterExpression: 'created_by = :u' } : {}),
          ExpressionAttributeValues: { ':p': q.value, ...(q.createdBy ? { ':u': q.createdBy } : {}) },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) out.push(strip(item)!);
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return out;
  }
}
