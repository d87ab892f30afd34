import { PutCommand, UpdateCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import { ulidBound } from '../platform/ids.js';
import type { Store } from '../platform/store/client.js';
import { queryPage } from '../platform/store/query.js';
import { isConditionFailure } from '../platform/store/conflicts.js';
import type { AuditEntry } from '../platform/api/http-services.js';

/** An audit entry as stored: the HTTP stack's entry plus its id. */
export interface AuditRecord extends AuditEntry {
  audit_id: string;
}

/** Where a page of the audit log ends: the month partition and the key within it. */
export type AuditPosition = {
  month?: string;
  key?: Record<string, unknown>;
};

export interface AuditFilter {
  actor_id?: string;
  action?: string;
  resource_type?: string;
  resource_id?: string;
  outcome?: string;
  from?: Date;
  to?: Date;
}

const monthOf = (date: Date) => date.toISOString().slice(0, 7);
const META = { pk: 'AUDIT_META', sk: 'AUDIT_META' };
const ULID_LOW = '0000000000000000';
const ULID_HIGH = 'ZZZZZZZZZZZZZZZZ';

function previousMonth(month: string): string {
  const [y, m] = month.split('-').map(Number);
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
}

/**
 * Audit entries are partitioned by month (`AUDIT#2026-11`) so that no partition grows without bound,
 * with an index per actor (gsi1), per resource (gsi2) and per resource type (gsi3).
 */
/**
 * The months whose entries the table's first month already covers, per store (one per process): the
 * `first_month` write is needed once per month and process, not once per entry.
 */
const ensuredMonthsOf = new WeakMap<Store, Set<string>>();

export class AuditRepository {
  private readonly ensuredMonths: Set<string>;
  constructor(private readonly store: Store) {
    let months = ensuredMonthsOf.get(store);
    if (!months) ensuredMonthsOf.set(store, (months = new Set()));
    this.ensuredMonths = months;
  }

  /**
   * Writes the entry once: its id is chosen by the caller, so a retry (the same request's, or the audit
   * retry queue's redelivery) finds it written and stores nothing more.
   */
  async append(entry: AuditEntry, at: Date): Promise<AuditRecord> {
    const id = entry.audit_id;
    const record: AuditRecord = { ...entry, audit_id: id };
    const month = monthOf(at);
    const written = await this.store.doc.send(
      new PutCommand({
        TableName: this.store.table,
        ConditionExpression: 'attribute_not_exists(pk)',
        Item: {
          pk: `AUDIT#${month}`,
          sk: id,
          entity: 'audit',
          ...(record.actor_id ? { gsi1pk: `AUDIT_ACTOR#${record.actor_id}`, gsi1sk: id } : {}),
          ...(record.resource_id ? { gsi2pk: `AUDIT_RESOURCE#${record.resource_type}#${record.resource_id}`, gsi2sk: id } : {}),
          gsi3pk: `AUDIT_TYPE#${record.resource_type}`,
          gsi3sk: id,
          ...record,
        },
      }),
    ).then(
      () => true,
      (err: unknown) => {
        if (isConditionFailure(err)) return false;
        throw err;
      },
    );
    if (!written) return record;
    if (!this.ensuredMonths.has(month)) {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.store.table,
          Key: META,
          UpdateExpression: 'SET first_month = if_not_exists(first_month, :m)',
          ExpressionAttributeValues: { ':m': month },
        }),
      );
      this.ensuredMonths.add(month);
    }
    return record;
  }

  /**
   * Newest first. Uses the narrowest index the filter allows; the month partitions are walked
   * backwards (the cursor remembers the month) down to the first month that has entries.
   */
  async list(
    filter: AuditFilter,
    limit: number,
    position: AuditPosition | undefined,
    now: Date,
  ): Promise<{ items: AuditRecord[]; next?: AuditPosition & { key: Record<string, unknown> } }> {
    const low = filter.from ? ulidBound(filter.from, false) : ULID_LOW + '0000000000';
    const high = filter.to ? ulidBound(filter.to, true) : ULID_HIGH + 'ZZZZZZZZZZ';
    const conditions: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    if (filter.action) {
      conditions.push('#action = :action');
      names['#action'] = 'action';
      values[':action'] = filter.action;
    }
    if (filter.outcome) {
      conditions.push('outcome = :outcome');
      values[':outcome'] = filter.outcome;
    }
    let index: 'gsi1' | 'gsi2' | 'gsi3' | undefined;
    let partition: string | undefined;
    if (filter.resource_id && filter.resource_type) {
      index = 'gsi2';
      partition = `AUDIT_RESOURCE#${filter.resource_type}#${filter.resource_id}`;
      if (filter.actor_id) {
        conditions.push('actor_id = :actor');
        values[':actor'] = filter.actor_id;
      }
    } else if (filter.actor_id) {
      index = 'gsi1';
      partition = `AUDIT_ACTOR#${filter.actor_id}`;
      if (filter.resource_type) {
        conditions.push('resource_type = :rtype');
        values[':rtype'] = filter.resource_type;
      }
      if (filter.resource_id) {
        conditions.push('resource_id = :rid');
        values[':rid'] = filter.resource_id;
      }
    } else if (filter.resource_type) {
      index = 'gsi3';
      partition = `AUDIT_TYPE#${filter.resource_type}`;
      if (filter.resource_id) {
        conditions.push('resource_id = :rid');
        values[':rid'] = filter.resource_id;
      }
    } else if (filter.resource_id) {
      conditions.push('resource_id = :rid');
      values[':rid'] = filter.resource_id;
    }
    const filterExpr = conditions.length ? conditions.join(' AND ') : undefined;

    if (index && partition) {
      const page = await queryPage<AuditRecord & Record<string, unknown>>(this.store, {
        index,
        keyCondition: `${index}pk = :p AND ${index}sk BETWEEN :low AND :high`,
        names,
        values: { ...values, ':p': partition, ':low': low, ':high': high },
        filter: filterExpr,
        limit,
        startKey: position?.key,
      });
      return { items: page.items.map(clean), next: page.lastKey ? { key: page.lastKey } : undefined };
    }

    const meta = await this.store.doc.send(new GetCommand({ TableName: this.store.table, Key: META }));
    const firstMonth = (meta.Item?.first_month as string | undefined) ?? monthOf(now);
    const floorMonth = filter.from && monthOf(filter.from) > firstMonth ? monthOf(filter.from) : firstMonth;
    let month = position?.month ?? monthOf(filter.to && filter.to < now ? filter.to : now);
    let startKey = position?.key;
    const items: AuditRecord[] = [];
    while (month >= floorMonth && items.length < limit) {
      const page = await queryPage<AuditRecord & Record<string, unknown>>(this.store, {
        keyCondition: 'pk = :p AND sk BETWEEN :low AND :high',
        names,
        values: { ...values, ':p': `AUDIT#${month}`, ':low': low, ':high': high },
        filter: filterExpr,
        limit: limit - items.length,
        startKey,
      });
      items.push(...page.items.map(clean));
      if (page.lastKey) return { items, next: { month, key: page.lastKey } };
      month = previousMonth(month);
      startKey = undefined;
    }
    if (items.length >= limit && month >= floorMonth) {
      return { items, next: { month, key: { pk: `AUDIT#${month}`, sk: ULID_HIGH + 'ZZZZZZZZZZ' } } };
    }
    return { items };
  }
}

function clean(item: Record<string, unknown>): AuditRecord {
  const { pk: _a, sk: _b, gsi1pk: _c, gsi1sk: _d, gsi2pk: _e, gsi2sk: _f, gsi3pk: _g, gsi3sk: _h, entity: _i, ...rest } = item;
  return rest as unknown as AuditRecord;
}

