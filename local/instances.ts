import os from 'node:os';
import { DeleteCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Store } from '../shared/platform/store/client.js';
import { processAlive } from './process-alive.js';

/**
 * The local runtimes that use a table, one item each (`LOCAL_RUNTIME` / `INSTANCE#<id>`: process id,
 * host, start time), written at start and deleted at a clean stop. A runtime that starts finds the
 * records its predecessors left: one whose process is gone (same host, no such pid) crashed, and the
 * task leases it held are dead at once, without waiting for them to run out. A record whose process
 * still runs is another runtime sharing the table (tests do): it is left alone.
 */
const PK = 'LOCAL_RUNTIME';
const sk = (instanceId: string) => `INSTANCE#${instanceId}`;

export interface InstanceRecord {
  instance_id: string;
  pid: number;
  host: string;
  started_at: string;
}

export interface Registration {
  /** Instances whose process is gone: their leases are dead. */
  dead: InstanceRecord[];
  /** Other runtimes still running on this table. */
  live: InstanceRecord[];
}

/** Records this runtime and answers which earlier ones died (and which still run). */
export async function registerInstance(store: Store, instanceId: string): Promise<Registration> {
  const found: InstanceRecord[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const out = await store.doc.send(
      new QueryCommand({ TableName: store.table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': PK }, ExclusiveStartKey: startKey }),
    );
    for (const item of out.Items ?? []) found.push(item as unknown as InstanceRecord);
    startKey = out.LastEvaluatedKey;
  } while (startKey);
  const host = os.hostname();
  const others = found.filter((r) => r.instance_id !== instanceId);
  // Another host's record cannot be checked: it counts as live (its leases still run out in time).
  const dead = others.filter((r) => r.host === host && r.pid !== process.pid && !processAlive(r.pid));
  const live = others.filter((r) => !dead.includes(r));
  const record: InstanceRecord = { instance_id: instanceId, pid: process.pid, host, started_at: new Date().toISOString() };
  await store.doc.send(new PutCommand({ TableName: store.table, Item: { pk: PK, sk: sk(instanceId), ...record } }));
  return { dead, live };
}

/** Deletes an instance's record (a clean stop, or a dead one whose leases were recovered). */
export async function forgetInstance(store: Store, instanceId: string): Promise<void> {
  await store.doc.send(new DeleteCommand({ TableName: store.table, Key: { pk: PK, sk: sk(instanceId) } }));
}
