import { KeyedLimiter } from '../platform/limit.js';
import { GetCommand, PutCommand, TransactWriteCommand, UpdateCommand, DeleteCommand, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { newUlid } from '../platform/ids.js';
import type { Store } from '../platform/store/client.js';
import { epochSeconds } from '../platform/store/client.js';
import { buildUpdate } from '../platform/store/update.js';
import { queryAll } from '../platform/store/query.js';
import { cancellationCodes, isConditionFailure, isTransactionConflict, retryOnConflict, VersionConflictError } from '../platform/store/conflicts.js';
import type { Amounts, PoolType } from './model.js';
import type { AllocationState, LedgerEvent, PoolSeed, Waiter } from './rules.js';

/** Transactions on the same pools in flight at once from this process (see KeyedLimiter). */
const poolWrites = new KeyedLimiter(4);
const poolsKey = (amounts: Record<string, number>) => Object.keys(amounts).sort().join(',');

/**
 * The ledger on the single table. Pools, allocations, waiting requests and conflict resolutions share
 * the partition `RESOURCES` (one Query lists each kind); the history is the partition `RESOURCE_LEDGER`,
 * one item per change (an allocation, a release, a scale) with what it changed in each pool, kept
 * LEDGER_DAYS.
 *
 * The invariant: a pool's `allocated` is the sum of the live allocations' amounts in it, and
 * `free = capacity - allocated`. Allocating is one transaction: the allocation item (only if the task
 * holds none), then for each pool `ADD allocated :n, free -:n` on the condition `free >= :n`, then the
 * ledger item. Releasing is the mirror transaction, conditioned on the allocation's lease.
 */

export interface PoolRecord {
  pool: string;
  type: PoolType;
  unit: string;
  capacity: number;
  allocated: number;
  free: number;
  min_capacity: number;
  max_capacity: number;
  version: number;
  over_committed_since?: string;
  created_at: string;
  updated_at: string;
}

export interface AllocationRecord extends AllocationState {
  waited_ms: number;
}

export interface ResolutionRecord {
  conflict_id: string;
  strategy: string;
  resolved_at: string;
  deferred_until?: string;
  result: unknown;
}

const PK = 'RESOURCES';
const poolKey = (pool: string) => ({ pk: PK, sk: `POOL#${pool}` });
const allocKey = (taskId: string) => ({ pk: PK, sk: `ALLOC#${taskId}` });
const waitKey = (taskId: string) => ({ pk: PK, sk: `WAIT#${taskId}` });
const conflictKey = (id: string) => ({ pk: PK, sk: `CONFLICT#${id}` });
const LEDGER_PK = 'RESOURCE_LEDGER';
/**
 * Where each pool's history was kept, one item per pool, before a change became one item whatever pools
 * it touches (2026-12). Nothing writes there now; it is still read so the history a deployment had is not
 * lost. Its last items expire LEDGER_DAYS after the upgrade: once every deployment has run this layout
 * that long, these reads can go.
 */
const perPoolLedgerPk = (pool: string) => `RESOURCE_LEDGER#${pool}`;
/** Reads of the per-pool ledger in flight at once (one per pool: many with many CLI runner hosts). */
const perPoolReads = new KeyedLimiter(8);
/** How long the ledger's history is kept. */
export const LEDGER_DAYS = 35;

/** One change as the ledger stores it: by pool, what it added to `allocated` and to `capacity`. */
interface LedgerChange {
  kind: LedgerEvent['kind'];
  delta_allocated: Amounts;
  delta_capacity: Amounts;
  task_id?: string;
  waited_ms?: number;
}

const strip = <T>(item: Record<string, unknown>): T => {
  const { pk: _pk, sk: _sk, entity: _e, expires_at: _x, ...rest } = item;
  return rest as T;
};

export type AllocateResult = { ok: true; allocation: AllocationRecord } | { ok: false; reason: 'exists' } | { ok: false; reason: 'short' };

export class ResourceRepository {
  constructor(private readonly store: Store) {}

  private async listPrefix<T>(prefix: string): Promise<T[]> {
    const items = await queryAll(this.store, { keyCondition: 'pk = :pk AND begins_with(sk, :p)', values: { ':pk': PK, ':p': prefix }, consistent: true });
    return items.map((item) => strip<T>(item));
  }

  pools(): Promise<PoolRecord[]> {
    return this.listPrefix<PoolRecord>('POOL#');
  }

  async pool(pool: string): Promise<PoolRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: poolKey(pool), ConsistentRead: true }));
    return out.Item ? strip<PoolRecord>(out.Item) : undefined;
  }

  /** Creates the pool unless it exists (a restart or a second function seeding at once changes nothing). */
  async seed(seed: PoolSeed, nowIso: string): Promise<boolean> {
    try {
      await this.store.doc.send(
        new PutCommand({
          TableName: this.store.table,
          Item: { ...poolKey(seed.pool), entity: 'resource_pool', ...seed, allocated: 0, free: seed.capacity, version: 1, created_at: nowIso, updated_at: nowIso },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /**
   * The pools and the waiting requests in one Query (their sort keys `POOL#…` and `WAIT#…` are adjacent
   * in the partition: nothing else sorts between them).
   */
  async poolsAndWaiters(): Promise<{ pools: PoolRecord[]; waiters: Waiter[] }> {
    const pools: PoolRecord[] = [];
    const waiters: Waiter[] = [];
    const items = await queryAll(this.store, { keyCondition: 'pk = :pk AND sk BETWEEN :from AND :to', values: { ':pk': PK, ':from': 'POOL#', ':to': 'WAIT#\uffff' }, consistent: true });
    for (const item of items) {
      const sk = String(item.sk);
      if (sk.startsWith('POOL#')) pools.push(strip<PoolRecord>(item));
      else if (sk.startsWith('WAIT#')) waiters.push(strip<Waiter>(item));
    }
    return { pools, waiters };
  }

  allocations(): Promise<AllocationRecord[]> {
    return this.listPrefix<AllocationRecord>('ALLOC#');
  }

  async allocation(taskId: string): Promise<AllocationRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: allocKey(taskId), ConsistentRead: true }));
    return out.Item ? strip<AllocationRecord>(out.Item) : undefined;
  }

  waiters(): Promise<Waiter[]> {
    return this.listPrefix<Waiter>('WAIT#');
  }

  async waiter(taskId: string): Promise<Waiter | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: waitKey(taskId), ConsistentRead: true }));
    return out.Item ? strip<Waiter>(out.Item) : undefined;
  }

  /** Records (or refreshes) a waiting request; its first `since` is kept. */
  async putWaiter(w: Waiter & { created_by: string }): Promise<Waiter> {
    const out = await this.store.doc.send(
      new UpdateCommand({
        TableName: this.store.table,
        Key: waitKey(w.task_id),
        UpdateExpression: `SET #e = :e, #t = :t, #a = :a, #p = :p, #x = :x, #src = :src, #cb = :cb, #ttl = :ttl, #s = if_not_exists(#s, :s)${w.run_token ? ', #rt = :rt' : ' REMOVE #rt'}`,
        ExpressionAttributeNames: { '#e': 'entity', '#t': 'task_id', '#a': 'amounts', '#p': 'priority', '#x': 'expires_at_iso', '#src': 'source', '#cb': 'created_by', '#ttl': 'expires_at', '#s': 'since', '#rt': 'run_token' },
        ExpressionAttributeValues: {
          ':e': 'resource_waiter',
          ':t': w.task_id,
          ':a': w.amounts,
          ':p': w.priority,
          ':x': w.expires_at_iso,
          ':src': w.source,
          ':cb': w.created_by,
          ':ttl': epochSeconds(new Date(w.expires_at_iso)) + 3600,
          ':s': w.since,
          ...(w.run_token ? { ':rt': w.run_token } : {}),
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return strip<Waiter>(out.Attributes as Record<string, unknown>);
  }

  async deleteWaiter(taskId: string): Promise<void> {
    await this.store.doc.send(new DeleteCommand({ TableName: this.store.table, Key: waitKey(taskId) }));
  }

  private ledgerItem(at: Date, change: LedgerChange) {
    return {
      pk: LEDGER_PK,
      sk: `${at.toISOString()}#${newUlid(at.getTime())}`,
      entity: 'resource_ledger',
      at: at.toISOString(),
      ...change,
      expires_at: epochSeconds(at) + LEDGER_DAYS * 86_400,
    };
  }

  /**
   * The atomic allocation. Answers `exists` when the task already holds one (idempotent per task) and
   * `short` when some pool lacks room (or does not exist); nothing is written then.
   */
  async allocate(allocation: AllocationRecord, at: Date): Promise<AllocateResult> {
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      { Put: { TableName: this.store.table, Item: { ...allocKey(allocation.task_id), entity: 'resource_allocation', ...allocation }, ConditionExpression: 'attribute_not_exists(pk)' } },
    ];
    const pools = Object.entries(allocation.amounts);
    for (const [pool, n] of pools) {
      items.push({
        Update: {
          TableName: this.store.table,
          Key: poolKey(pool),
          ...buildUpdate({ add: { allocated: n, free: -n }, set: { updated_at: at.toISOString() }, condition: 'attribute_exists(pk) AND #free >= :need', names: { '#free': 'free' }, values: { ':need': n } }),
        },
      });
    }
    items.push({ Put: { TableName: this.store.table, Item: this.ledgerItem(at, { kind: 'allocate', delta_allocated: allocation.amounts, delta_capacity: {}, task_id: allocation.task_id, waited_ms: allocation.waited_ms }) } });
    try {
      await poolWrites.run(poolsKey(allocation.amounts), () => retryOnConflict(() => this.store.doc.send(new TransactWriteCommand({ TransactItems: items })), { isConflict: isTransactionConflict }));
      return { ok: true, allocation };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const codes = cancellationCodes(err);
      if (codes[0] === 'ConditionalCheckFailed') return { ok: false, reason: 'exists' };
      return { ok: false, reason: 'short' };
    }
  }

  /** Moves an allocation's lease on (a new attempt of the same task), while it still holds `expected`. */
  async renewLease(taskId: string, expected: string, leaseUntil: string): Promise<boolean> {
    try {
      await this.store.doc.send(
        new UpdateCommand({ TableName: this.store.table, Key: allocKey(taskId), ...buildUpdate({ set: { lease_until: leaseUntil }, condition: 'lease_until = :old', values: { ':old': expected } }) }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** Gives an allocation back, only while it still has this lease (a later holder's is not touched). False when it was not so held. */
  async release(allocation: AllocationRecord, at: Date): Promise<boolean> {
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      { Delete: { TableName: this.store.table, Key: allocKey(allocation.task_id), ConditionExpression: 'lease_until = :l', ExpressionAttributeValues: { ':l': allocation.lease_until } } },
    ];
    const given: Amounts = {};
    for (const [pool, n] of Object.entries(allocation.amounts)) {
      items.push({ Update: { TableName: this.store.table, Key: poolKey(pool), ...buildUpdate({ add: { allocated: -n, free: n }, set: { updated_at: at.toISOString() } }) } });
      given[pool] = -n;
    }
    items.push({ Put: { TableName: this.store.table, Item: this.ledgerItem(at, { kind: 'release', delta_allocated: given, delta_capacity: {}, task_id: allocation.task_id }) } });
    try {
      await poolWrites.run(poolsKey(allocation.amounts), () => retryOnConflict(() => this.store.doc.send(new TransactWriteCommand({ TransactItems: items })), { isConflict: isTransactionConflict }));
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** Sets a pool's capacity on the version read (free moves with it) and records the change in the ledger. */
  async setCapacity(pool: PoolRecord, capacity: number, at: Date, overCommittedSince: string | null): Promise<void> {
    const delta = capacity - pool.capacity;
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      {
        Update: {
          TableName: this.store.table,
          Key: poolKey(pool.pool),
          ...buildUpdate({
            set: { capacity, updated_at: at.toISOString(), version: pool.version + 1, ...(overCommittedSince ? { over_committed_since: overCommittedSince } : {}) },
            add: { free: delta },
            ...(overCommittedSince ? {} : { remove: ['over_committed_since'] }),
            expect: { expected: pool.version },
          }),
        },
      },
      { Put: { TableName: this.store.table, Item: this.ledgerItem(at, { kind: 'scale', delta_allocated: {}, delta_capacity: { [pool.pool]: delta } }) } },
    ];
    try {
      await this.store.doc.send(new TransactWriteCommand({ TransactItems: items }));
    } catch (err) {
      if (isConditionFailure(err) || isTransactionConflict(err)) throw new VersionConflictError(`pool ${pool.pool}`);
      throw err;
    }
  }

  /** Each pool's changes since `from`, oldest first: one Query of the ledger (and one per pool of the per-pool ledger it replaced). */
  async ledgers(pools: readonly string[], from: Date): Promise<Map<string, LedgerEvent[]>> {
    const out = new Map<string, LedgerEvent[]>(pools.map((p) => [p, []]));
    const [changes, ...perPool] = await Promise.all([
      this.ledgerPartition(LEDGER_PK, from),
      ...pools.map((p) => perPoolReads.run('per-pool ledger', () => this.ledgerPartition(perPoolLedgerPk(p), from))),
    ]);
    for (const item of changes) {
      const change = strip<LedgerChange & { at: string }>(item);
      for (const pool of new Set([...Object.keys(change.delta_allocated ?? {}), ...Object.keys(change.delta_capacity ?? {})])) {
        out.get(pool)?.push({
          at: change.at,
          pool,
          kind: change.kind,
          delta_allocated: change.delta_allocated?.[pool] ?? 0,
          delta_capacity: change.delta_capacity?.[pool] ?? 0,
          ...(change.task_id ? { task_id: change.task_id } : {}),
          ...(change.waited_ms !== undefined ? { waited_ms: change.waited_ms } : {}),
        });
      }
    }
    pools.forEach((pool, k) => {
      if (perPool[k].length) out.set(pool, [...perPool[k].map((item) => strip<LedgerEvent>(item)), ...out.get(pool)!].sort((a, b) => a.at.localeCompare(b.at)));
    });
    return out;
  }

  private ledgerPartition(pk: string, from: Date): Promise<Record<string, unknown>[]> {
    return queryAll(this.store, { keyCondition: 'pk = :pk AND sk >= :from', values: { ':pk': pk, ':from': from.toISOString() } });
  }

  resolutions(): Promise<ResolutionRecord[]> {
    return this.listPrefix<ResolutionRecord>('CONFLICT#');
  }

  /** Records a resolution once: false when the conflict was already resolved. */
  async recordResolution(r: ResolutionRecord): Promise<boolean> {
    try {
      await this.store.doc.send(
        new PutCommand({
          TableName: this.store.table,
          Item: { ...conflictKey(r.conflict_id), entity: 'resource_conflict', ...r, expires_at: epochSeconds(new Date(r.resolved_at)) + LEDGER_DAYS * 86_400 },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async resolution(id: string): Promise<ResolutionRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: conflictKey(id), ConsistentRead: true }));
    return out.Item ? strip<ResolutionRecord>(out.Item) : undefined;
  }
}

export type { Amounts };
