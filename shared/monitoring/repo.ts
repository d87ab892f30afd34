/**
 * Monitoring items on the single table: alert rules (with a name marker that keeps names unique), the
 * evaluator's state per rule and label set (versioned: every change is a conditional write, so two
 * evaluators racing apply each transition once), alerts, the monitoring configuration and the
 * evaluator's run record.
 *
 * | item | key |
 * |---|---|
 * | rule | `ALERT_RULE#<id>` / `RULE`; `gsi1pk = ALERT_RULES`, `gsi1sk = <created_at>#<id>` |
 * | rule name | `ALERT_RULE_NAME#<lower-case name>` / `NAME` |
 * | state of a label set | `ALERT_RULE#<id>` / `STATE#<label set JSON>` (`version`) |
 * | alert | `ALERT#<id>` / `ALERT`; `gsi1pk = ALERTS`, `gsi1sk = <started_at>#<id>`; TTL once resolved |
 * | configuration / evaluator run | `MONITORING` / `CONFIG`, `MONITORING` / `EVALUATOR` |
 */
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Store } from '../platform/store/client.js';
import { isConditionFailure, isTransactionCancelled } from '../platform/store/conflicts.js';
import { queryPage } from '../platform/store/query.js';
import type { AlertView, CreateRuleBody, MonitoringConfig, RuleState } from './model.js';
import type { SeriesState } from './rules.js';

export interface RuleRecord extends Required<Omit<CreateRuleBody, 'description' | 'labels' | 'group_by'>> {
  rule_id: string;
  description: string | null;
  labels: Record<string, string>;
  group_by: string[];
  builtin: boolean;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface StateRecord extends SeriesState {
  rule_id: string;
  labels: Record<string, string | null>;
  last_value: number | null;
  /** The evaluation that last changed the state or the value (one that changes neither writes nothing). */
  changed_at: string;
  version: number;
}

export type AlertRecord = AlertView & { expires_at?: number };

export interface ConfigRecord extends MonitoringConfig {
  updated_at: string | null;
  updated_by: string | null;
  version: number;
}

export interface EvaluatorRecord {
  last_run_at: string | null;
  last_duration_ms: number | null;
  last_rules_evaluated: number | null;
  last_error: string | null;
  errors_total: number;
  runs_total: number;
}

export const ruleKey = (id: string) => ({ pk: `ALERT_RULE#${id}`, sk: 'RULE' });
export const nameKey = (name: string) => ({ pk: `ALERT_RULE_NAME#${name.toLowerCase()}`, sk: 'NAME' });
export const stateKey = (ruleId: string, labels: Record<string, string | null>) => ({ pk: `ALERT_RULE#${ruleId}`, sk: `STATE#${JSON.stringify(sortKeys(labels))}` });
export const alertKey = (id: string) => ({ pk: `ALERT#${id}`, sk: 'ALERT' });
export const CONFIG_KEY = { pk: 'MONITORING', sk: 'CONFIG' };
export const EVALUATOR_KEY = { pk: 'MONITORING', sk: 'EVALUATOR' };

export function sortKeys<T>(labels: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}

const strip = <T>(item: Record<string, unknown>): T => {
  const { pk: _pk, sk: _sk, gsi1pk: _g, gsi1sk: _gs, entity: _e, ...rest } = item;
  return rest as T;
};

/** A stored state; records written before `cleared_since` and `changed_at` existed read as their equivalents. */
function stateOf(item: Record<string, unknown>): StateRecord {
  const { last_true_at: _l, evaluated_at, ...state } = strip<StateRecord & { last_true_at?: string; evaluated_at?: string }>(item);
  return { ...state, cleared_since: state.cleared_since ?? null, changed_at: state.changed_at ?? evaluated_at ?? '' };
}

export class MonitoringRepository {
  constructor(private readonly store: Store) {}

  private get table() {
    return this.store.table;
  }

  // ------------------------------------------------------------ rules

  ruleItem(rule: RuleRecord) {
    return { ...ruleKey(rule.rule_id), entity: 'alert_rule', gsi1pk: 'ALERT_RULES', gsi1sk: `${rule.created_at}#${rule.rule_id}`, ...rule };
  }

  nameItem(rule: Pick<RuleRecord, 'name' | 'rule_id'>) {
    return { ...nameKey(rule.name), entity: 'alert_rule_name', rule_id: rule.rule_id };
  }

  /** Creates rules with their name markers in one transaction; false when a name is taken. */
  async createRules(rules: RuleRecord[], extra: Record<string, unknown>[] = []): Promise<boolean> {
    try {
      await this.store.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            ...rules.flatMap((r) => [
              { Put: { TableName: this.table, Item: this.ruleItem(r), ConditionExpression: 'attribute_not_exists(pk)' } },
              { Put: { TableName: this.table, Item: this.nameItem(r), ConditionExpression: 'attribute_not_exists(pk)' } },
            ]),
            ...extra.map((Item) => ({ Put: { TableName: this.table, Item, ConditionExpression: 'attribute_not_exists(pk)' } })),
          ],
        }),
      );
      return true;
    } catch (err) {
      if (isTransactionCancelled(err) && isConditionFailure(err)) return false;
      throw err;
    }
  }

  /** Replaces a rule (condition: its version); a new name swaps the name marker in the same transaction. */
  async replaceRule(before: RuleRecord, after: RuleRecord): Promise<'ok' | 'name_taken' | 'changed'> {
    const items: NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']> = [
      {
        Put: {
          TableName: this.table,
          Item: this.ruleItem(after),
          ConditionExpression: '#v = :v',
          ExpressionAttributeNames: { '#v': 'version' },
          ExpressionAttributeValues: { ':v': before.version },
        },
      },
    ];
    const renamed = before.name.toLowerCase() !== after.name.toLowerCase();
    if (renamed) {
      items.push({ Put: { TableName: this.table, Item: this.nameItem(after), ConditionExpression: 'attribute_not_exists(pk)' } });
      items.push({ Delete: { TableName: this.table, Key: nameKey(before.name) } });
    }
    try {
      await this.store.doc.send(new TransactWriteCommand({ TransactItems: items }));
      return 'ok';
    } catch (err) {
      if (!isTransactionCancelled(err)) throw err;
      const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
      if (reasons[1]?.Code === 'ConditionalCheckFailed') return 'name_taken';
      if (reasons[0]?.Code === 'ConditionalCheckFailed') return 'changed';
      throw err;
    }
  }

  async getRule(id: string): Promise<RuleRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.table, Key: ruleKey(id), ConsistentRead: true }));
    return out.Item ? strip<RuleRecord>(out.Item) : undefined;
  }

  async listRules(): Promise<RuleRecord[]> {
    const out: RuleRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.store.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :p',
          ExpressionAttributeValues: { ':p': 'ALERT_RULES' },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const i of page.Items ?? []) out.push(strip<RuleRecord>(i));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return out;
  }

  /** Deletes a rule, its name marker and its states (the open alerts are resolved by the caller first). */
  async deleteRule(rule: RuleRecord, states: StateRecord[]): Promise<boolean> {
    try {
      await this.store.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            { Delete: { TableName: this.table, Key: ruleKey(rule.rule_id), ConditionExpression: 'attribute_exists(pk)' } },
            { Delete: { TableName: this.table, Key: nameKey(rule.name) } },
          ],
        }),
      );
    } catch (err) {
      if (isTransactionCancelled(err) && isConditionFailure(err)) return false;
      throw err;
    }
    for (const s of states) await this.store.doc.send(new DeleteCommand({ TableName: this.table, Key: stateKey(rule.rule_id, s.labels) }));
    return true;
  }

  // ------------------------------------------------------------ states

  /** One rule's states, read consistently. */
  async states(ruleId: string): Promise<StateRecord[]> {
    const out: StateRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.store.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :p AND begins_with(sk, :s)',
          ExpressionAttributeValues: { ':p': `ALERT_RULE#${ruleId}`, ':s': 'STATE#' },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const i of page.Items ?? []) out.push(stateOf(i));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return out;
  }

  /** The Put of a state, conditional on the version it was read at (absent: version 0). */
  statePut(next: StateRecord, readVersion: number) {
    return {
      TableName: this.table,
      Item: { ...stateKey(next.rule_id, next.labels), entity: 'alert_state', ...next, version: readVersion + 1 },
      ConditionExpression: readVersion === 0 ? 'attribute_not_exists(pk)' : '#v = :v',
      ...(readVersion === 0 ? {} : { ExpressionAttributeNames: { '#v': 'version' }, ExpressionAttributeValues: { ':v': readVersion } }),
    };
  }

  /**
   * Writes a state change with the alert writes it implies, all or nothing. False when another
   * evaluator changed the state first (nothing written: the winner owns the transition).
   */
  async transition(next: StateRecord, readVersion: number, alertWrites: NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']> = []): Promise<boolean> {
    try {
      if (!alertWrites.length) await this.store.doc.send(new PutCommand(this.statePut(next, readVersion)));
      else await this.store.doc.send(new TransactWriteCommand({ TransactItems: [{ Put: this.statePut(next, readVersion) }, ...alertWrites] }));
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  // ------------------------------------------------------------ alerts

  alertPut(alert: AlertRecord) {
    return {
      TableName: this.table,
      Item: { ...alertKey(alert.alert_id), entity: 'alert', gsi1pk: 'ALERTS', gsi1sk: `${alert.started_at}#${alert.alert_id}`, ...alert },
      ConditionExpression: 'attribute_not_exists(pk)',
    };
  }

  /** Marks a firing alert resolved (condition: still firing). */
  alertResolve(alertId: string, at: string, value: number | null, reason: AlertView['resolved_reason'], expiresAt: number) {
    return {
      TableName: this.table,
      Key: alertKey(alertId),
      UpdateExpression: 'SET #st = :r, resolved_at = :at, resolved_reason = :why, #val = :val, transitions = list_append(transitions, :t), expires_at = :exp',
      ConditionExpression: '#st = :f',
      ExpressionAttributeNames: { '#st': 'status', '#val': 'value' },
      ExpressionAttributeValues: { ':r': 'resolved', ':f': 'firing', ':at': at, ':why': reason, ':val': value, ':t': [{ state: 'resolved', at, value }], ':exp': expiresAt },
    };
  }

  async getAlert(id: string): Promise<AlertRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.table, Key: alertKey(id), ConsistentRead: true }));
    return out.Item ? strip<AlertRecord>(out.Item) : undefined;
  }

  async addDelivery(id: string, delivery: AlertView['deliveries'][number]): Promise<void> {
    await this.store.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: alertKey(id),
        UpdateExpression: 'SET deliveries = list_append(deliveries, :d)',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':d': [delivery] },
      }),
    );
  }

  /** Sets the acknowledgement once; false when it was already acknowledged (or is gone). */
  async acknowledge(id: string, by: string, at: string): Promise<boolean> {
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: alertKey(id),
          UpdateExpression: 'SET acknowledged_at = :at, acknowledged_by = :by',
          ConditionExpression: 'attribute_exists(pk) AND acknowledged_at = :null',
          ExpressionAttributeValues: { ':at': at, ':by': by, ':null': null },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async listAlerts(q: {
    limit: number;
    startKey?: Record<string, unknown>;
    status?: string[];
    severity?: string[];
    ruleId?: string;
    from?: string;
    to?: string;
  }): Promise<{ items: AlertRecord[]; lastKey?: Record<string, unknown> }> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':p': 'ALERTS', ':a': q.from ?? '0', ':b': `${q.to ?? '9999'}#~` };
    const filters: string[] = [];
    const inList = (attr: string, list: string[] | undefined, tag: string) => {
      if (!list?.length) return;
      names[`#${tag}`] = attr;
      filters.push(`#${tag} IN (${list.map((v, i) => ((values[`:${tag}${i}`] = v), `:${tag}${i}`)).join(', ')})`);
    };
    inList('status', q.status, 'st');
    inList('severity', q.severity, 'sev');
    if (q.ruleId) {
      filters.push('rule_id = :rule');
      values[':rule'] = q.ruleId;
    }
    const page = await queryPage<Record<string, unknown>>(this.store, {
      index: 'gsi1',
      keyCondition: 'gsi1pk = :p AND gsi1sk BETWEEN :a AND :b',
      names,
      values,
      filter: filters.length ? filters.join(' AND ') : undefined,
      limit: q.limit,
      startKey: q.startKey,
    });
    return { items: page.items.map((i) => strip<AlertRecord>(i)), lastKey: page.lastKey };
  }

  // ------------------------------------------------------------ configuration and evaluator runs

  async getConfig(): Promise<ConfigRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.table, Key: CONFIG_KEY, ConsistentRead: true }));
    return out.Item ? strip<ConfigRecord>(out.Item) : undefined;
  }

  configItem(config: ConfigRecord) {
    return { ...CONFIG_KEY, entity: 'monitoring_config', ...config };
  }

  /** Replaces the configuration (condition: the version read); false when it changed meanwhile. */
  async putConfig(config: ConfigRecord, readVersion: number): Promise<boolean> {
    try {
      await this.store.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: this.configItem({ ...config, version: readVersion + 1 }),
          ConditionExpression: '#v = :v',
          ExpressionAttributeNames: { '#v': 'version' },
          ExpressionAttributeValues: { ':v': readVersion },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async getEvaluator(): Promise<EvaluatorRecord | undefined> {
    const out = await this.store.doc.send(new GetCommand({ TableName: this.table, Key: EVALUATOR_KEY, ConsistentRead: true }));
    return out.Item ? strip<EvaluatorRecord>(out.Item) : undefined;
  }

  /**
   * Claims a run of the evaluator: only when no run was claimed within `minGapMs` before `now`, so a
   * redelivered schedule or a second timer does not evaluate again within the interval.
   */
  async claimRun(now: Date, minGapMs: number): Promise<boolean> {
    try {
      await this.store.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: EVALUATOR_KEY,
          UpdateExpression: 'SET last_claimed_at = :now, runs_total = if_not_exists(runs_total, :zero) + :one, errors_total = if_not_exists(errors_total, :zero)',
          ConditionExpression: 'attribute_not_exists(last_claimed_at) OR last_claimed_at <= :before',
          ExpressionAttributeValues: { ':now': now.toISOString(), ':before': new Date(now.getTime() - minGapMs).toISOString(), ':zero': 0, ':one': 1 },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async recordRun(run: { at: string; durationMs: number; rules: number; error: string | null }): Promise<void> {
    await this.store.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: EVALUATOR_KEY,
        UpdateExpression:
          'SET last_run_at = :at, last_duration_ms = :d, last_rules_evaluated = :n, last_error = :e, errors_total = if_not_exists(errors_total, :zero) + :err',
        ExpressionAttributeValues: { ':at': run.at, ':d': run.durationMs, ':n': run.rules, ':e': run.error, ':zero': 0, ':err': run.error ? 1 : 0 },
      }),
    );
  }
}

export type { RuleState };
