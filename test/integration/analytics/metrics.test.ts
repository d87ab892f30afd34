import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, beforeAll } from 'vitest';
import { inject } from 'vitest';
import { ulid } from 'ulid';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand, type _Record } from '@aws-sdk/client-dynamodb-streams';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { call, eventually, adminSession, userWithRole, type Session } from '../../support/client.js';
import { createTask, customTask, registerLocalProvider, sessionAs, TERMINAL, waitForStatus } from '../tasks/helpers.js';
import { Store } from '../../../shared/platform/store/client.js';
import { localEndpoint } from '../../../shared/platform/aws/util.js';
import { getConfig } from '../../../shared/platform/config.js';
import { systemClock } from '../../../shared/platform/ports.js';
import type { Deps } from '../../../shared/platform/runtime.js';
import { handleStreamEvent } from '../../../shared/platform/feed.js';
import { CHANGE_CONSUMERS } from '../../../shared/change-feed.js';
import { toLambdaRecord } from '../../../local/stream-poller.js';
import { bucketStart, MetricsStore } from '../../../shared/platform/metrics/store.js';

const TASKS = 5;

async function query(session: Session, body: Record<string, unknown>) {
  return call('POST', '/api/v1/analytics/query', { token: session.token, body });
}

/** Every record of the table's stream so far (all shards, from the trim horizon). */
async function streamRecords(): Promise<{ records: _Record[]; arn: string }> {
  const config = localEndpoint(inject('dynamodbEndpoint'));
  const dynamo = new DynamoDBClient(config);
  const streams = new DynamoDBStreamsClient(config);
  try {
    const arn = (await dynamo.send(new DescribeTableCommand({ TableName: 'supervisor' }))).Table!.LatestStreamArn!;
    const shards = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription?.Shards ?? [];
    const records: _Record[] = [];
    for (const shard of shards) {
      let it = (await streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: shard.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
      while (it) {
        const out = await streams.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
        records.push(...(out.Records ?? []));
        if (!out.Records?.length) break;
        it = out.NextShardIterator;
      }
    }
    return { records, arn };
  } finally {
    dynamo.destroy();
    streams.destroy();
  }
}

describe('analytics: metrics recorded from the change feed', () => {
  let admin: Session;
  let user: Session;
  let providerId: string;
  let tasks: any[];

  beforeAll(async () => {
    admin = await adminSession();
    user = await sessionAs('user');
    providerId = await registerLocalProvider(admin, { pricing: { input_per_million: 3, output_per_million: 15 } });
    const created = [];
    for (let i = 0; i < TASKS; i++) created.push(await createTask(user, customTask(`analytics task ${i} ${ulid()}`, { provider_id: providerId })));
    tasks = await Promise.all(created.map((t) => waitForStatus(user, t.task_id, TERMINAL, 60_000)));
  }, 120_000);

  const expected = () => {
    const byStatus: Record<string, number> = {};
    for (const t of tasks) byStatus[t.status] = (byStatus[t.status] ?? 0) + 1;
    return {
      byStatus,
      tokensIn: tasks.reduce((a, t) => a + t.tokens_in, 0),
      tokensOut: tasks.reduce((a, t) => a + t.tokens_out, 0),
      cost: tasks.reduce((a, t) => a + t.cost_usd, 0),
      durations: tasks.map((t) => t.duration_ms).filter((d) => d !== null).sort((a: number, b: number) => a - b),
    };
  };

  it('the summary of a user counts their own tasks, as computed from the tasks themselves', async () => {
    const want = expected();
    const res = await eventually(
      () => call('GET', '/api/v1/analytics/summary?window=1h', { token: user.token }),
      // The points of one change are recorded side by side: wait until the last of them is in.
      (r) =>
        r.status === 200 &&
        Object.values(r.body.data.tasks.finished_in_window as Record<string, number>).reduce((a, n) => a + n, 0) === TASKS &&
        r.body.data.today.tokens_in === want.tokensIn &&
        r.body.data.today.tokens_out === want.tokensOut &&
        Math.abs(r.body.data.today.cost_usd - want.cost) < 1e-9 &&
        r.body.data.tasks.duration_ms.count === want.durations.length &&
        r.body.data.tasks.created_in_window === TASKS,
      60_000,
      250,
    );
    const s = res.body.data;
    expect(s.scope).toBe('own');
    expect(s.tasks.created_in_window).toBe(TASKS);
    expect(s.tasks.created_today).toBe(TASKS);
    expect(s.tasks.finished_in_window).toEqual(want.byStatus);
    const done = want.byStatus.completed ?? 0;
    const failed = want.byStatus.failed ?? 0;
    expect(s.tasks.success_rate).toBe(done + failed ? done / (done + failed) : null);
    expect(s.today.tokens_in).toBe(want.tokensIn);
    expect(s.today.tokens_out).toBe(want.tokensOut);
    expect(s.today.cost_usd).toBeCloseTo(want.cost, 9);
    expect(s.tasks.duration_ms.count).toBe(want.durations.length);
    const nearest = (q: number) => want.durations[Math.ceil(q * want.durations.length) - 1];
    for (const [q, got] of [[0.5, s.tasks.duration_ms.p50], [0.95, s.tasks.duration_ms.p95]] as const) {
      expect(Math.abs(got - nearest(q))).toBeLessThanOrEqual(Math.max(1, nearest(q) * 0.011));
    }
    expect(s.health.formula).toContain('success_rate');
    expect(s.health.inputs.success_rate).toBe(s.tasks.success_rate);
    expect(s.items_read).toBeGreaterThan(0);
  });

  it('query: count, sum, grouping by label and by bucket agree with the tasks', async () => {
    const want = expected();
    const labels = { provider: providerId };
    const count = await eventually(
      () => query(admin, { metric_type: 'task.finished', time_range: '1h', aggregation: 'count', filters: { labels } }),
      (r) => r.body.data?.series?.[0]?.value === TASKS,
      60_000,
      250,
    );
    expect(count.status).toBe(200);
    expect(count.body.data.resolution).toBe('minute');
    expect(count.body.data.series[0].value).toBe(TASKS);
    expect(count.body.data.items_read).toBeGreaterThan(0);

    const tokens = await query(admin, { metric_type: 'task.tokens_in', time_range: '1h', aggregation: 'sum', filters: { labels } });
    expect(tokens.body.data.series[0].value).toBe(want.tokensIn);

    const grouped = await query(admin, { metric_type: 'task.finished', time_range: '1h', filters: { labels }, group_by: { labels: ['status'] } });
    expect(Object.fromEntries(grouped.body.data.series.map((s: any) => [s.labels.status, s.value]))).toEqual(want.byStatus);

    const bucketed = await query(admin, { metric_type: 'task.finished', time_range: '2h', filters: { labels }, group_by: { bucket: 'minute' } });
    expect(bucketed.status).toBe(200);
    const points = bucketed.body.data.series[0].points as { count: number }[];
    expect(points.length).toBeGreaterThanOrEqual(120);
    expect(points.reduce((a, p) => a + p.count, 0)).toBe(TASKS);

    const max = await query(admin, { metric_type: 'task.duration_ms', time_range: '1h', aggregation: 'max', filters: { labels } });
    expect(max.body.data.series[0].value).toBe(want.durations[want.durations.length - 1]);

    // value_range reads raw points: exact.
    const cut = want.durations[Math.floor(want.durations.length / 2)];
    const ranged = await query(admin, { metric_type: 'task.duration_ms', time_range: '1h', aggregation: 'count', filters: { labels, value_range: { min: cut } } });
    expect(ranged.body.data.resolution).toBe('raw');
    expect(ranged.body.data.series[0].value).toBe(want.durations.filter((d: number) => d >= cut).length);
  });

  it('a user reads only their own points; another user sees none of them', async () => {
    const own = await query(user, { metric_type: 'task.finished', time_range: '1h', filters: { labels: { provider: providerId } } });
    expect(own.body.data.scope).toBe('own');
    expect(own.body.data.series[0].value).toBe(TASKS);
    const other = await sessionAs('user');
    const theirs = await query(other, { metric_type: 'task.finished', time_range: '1h', filters: { labels: { provider: providerId } } });
    expect(theirs.body.data.series[0].value ?? 0).toBe(0);
    const spying = await query(other, { metric_type: 'task.finished', time_range: '1h', filters: { labels: { user: user.userId } } });
    expect(spying.status).toBe(403);

    const page1 = await call('GET', '/api/v1/analytics/metrics?metric_type=task.finished&limit=2', { token: user.token });
    expect(page1.status).toBe(200);
    expect(page1.body.data.items).toHaveLength(2);
    expect(page1.body.data.items.every((p: any) => p.labels.user === user.userId)).toBe(true);
    const all: any[] = [...page1.body.data.items];
    let cursor = page1.body.data.next_cursor;
    while (cursor) {
      const next = await call('GET', `/api/v1/analytics/metrics?metric_type=task.finished&limit=2&cursor=${encodeURIComponent(cursor)}`, { token: user.token });
      all.push(...next.body.data.items);
      cursor = next.body.data.next_cursor;
    }
    expect(all).toHaveLength(TASKS);
    const none = await call('GET', '/api/v1/analytics/metrics?metric_type=task.finished', { token: other.token });
    expect(none.body.data.items).toHaveLength(0);
  });

  it('a redelivered stream record counts nothing twice', async () => {
    const { records, arn } = await streamRecords();
    const mine = new Set(tasks.map((t) => `TASK#${t.task_id}`));
    const taskRecords = records.filter((r) => mine.has(String(unmarshall(r.dynamodb!.Keys as never).pk)));
    expect(taskRecords.length).toBeGreaterThan(TASKS);
    const store = new Store({ tableName: 'supervisor', endpoint: inject('dynamodbEndpoint') });
    const deps = { config: getConfig(), store, clock: systemClock } as unknown as Deps;
    const result = await handleStreamEvent({ Records: taskRecords.map((r) => toLambdaRecord(r, arn)) }, deps, CHANGE_CONSUMERS, (_c, _ch, err) => {
      throw err;
    });
    expect(result.batchItemFailures).toEqual([]);
    const count = await query(admin, { metric_type: 'task.finished', time_range: '1h', filters: { labels: { provider: providerId } } });
    expect(count.body.data.series[0].value).toBe(TASKS);
    const created = await query(admin, { metric_type: 'task.created', time_range: '1h', filters: { labels: { provider: providerId } } });
    expect(created.body.data.series[0].value).toBe(TASKS);
    store.raw.destroy();
  });
});

describe('analytics: collect', () => {
  it('records an event once however often it is sent; platform namespaces are refused', async () => {
    const operator = await userWithRole('operator');
    const metric = `custom.deploys_${ulid().toLowerCase().slice(-8)}`;
    const body = { event_id: `deploy-${ulid()}`, metric_type: metric, value: 42.5, labels: { env: 'staging' } };
    const first = await call('POST', '/api/v1/analytics/collect', { token: operator.token, body });
    expect(first.status).toBe(201);
    expect(first.body.data.recorded).toBe(true);
    expect(first.body.data.point.labels).toEqual({ env: 'staging', user: operator.userId });
    const again = await call('POST', '/api/v1/analytics/collect', { token: operator.token, body });
    expect(again.status).toBe(200);
    expect(again.body.data.recorded).toBe(false);
    const sum = await query(operator, { metric_type: metric, time_range: '1h', aggregation: 'sum' });
    expect(sum.body.data.series[0]).toMatchObject({ value: 42.5, count: 1 });

    const reserved = await call('POST', '/api/v1/analytics/collect', { token: operator.token, body: { ...body, event_id: 'x1', metric_type: 'task.finished' } });
    expect(reserved.status).toBe(422);
    expect(reserved.body.errors.map((e: any) => e.path ?? e.field)).toContain('metric_type');
    const user = await sessionAs('user');
    const denied = await call('POST', '/api/v1/analytics/collect', { token: user.token, body });
    expect(denied.status).toBe(403);
  });
});

describe('analytics: bad bodies are 422 naming the field', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['time_range with start/end', { metric_type: 'task.finished', time_range: '1h', start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' }, 'time_range'],
    ['start without end', { metric_type: 'task.finished', start: '2026-01-01T00:00:00Z' }, 'end'],
    ['end before start', { metric_type: 'task.finished', start: '2026-01-02T00:00:00Z', end: '2026-01-01T00:00:00Z' }, 'end'],
    ['too many buckets', { metric_type: 'task.finished', time_range: '30d', group_by: { bucket: 'minute' } }, 'group_by.bucket'],
    ['over 365 days', { metric_type: 'task.finished', time_range: '400d' }, 'time_range'],
    ['grouping by a filtered label', { metric_type: 'task.finished', filters: { labels: { status: 'failed' } }, group_by: { labels: ['status'] } }, 'group_by.labels'],
    ['unknown aggregation', { metric_type: 'task.finished', aggregation: 'median' }, 'aggregation'],
    ['min above max', { metric_type: 'task.finished', filters: { value_range: { min: 5, max: 1 } } }, 'filters.value_range.max'],
    ['unknown field', { metric_type: 'task.finished', bogus: 1 }, 'bogus'],
    ['bad metric name', { metric_type: 'Task Finished' }, 'metric_type'],
    ['a minute bucket older than its retention', { metric_type: 'task.finished', start: new Date(Date.now() - 20 * 86_400_000).toISOString(), end: new Date(Date.now() - 19.5 * 86_400_000).toISOString(), group_by: { bucket: 'minute' } }, 'group_by.bucket'],
  ];
  it.each(cases)('%s', async (_name, body, field) => {
    const admin = await adminSession();
    const res = await query(admin, body);
    expect(res.status).toBe(422);
    expect(res.body.errors.map((e: any) => e.path ?? e.field)).toContain(field);
  });
});

describe('the metrics store: recording in batches', () => {
  it('a batch larger than one transaction counts each point once, also when some were recorded before or repeat within it', async () => {
    const store = new Store({ tableName: 'supervisor', endpoint: inject('dynamodbEndpoint') });
    const metrics = new MetricsStore(store);
    const metric = `custom.batch_${ulid().toLowerCase().slice(-8)}`;
    const at = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 120_000);
    // Two label sets: 27 rollup items each, so 150 points need several transactions.
    const points = Array.from({ length: 150 }, (_, i) => ({
      metric,
      value: i + 1,
      at,
      labels: { shard: i % 2 ? 'odd' : 'even', user: 'batch-test' },
      sourceId: `batch-test:${metric}:${i}`,
    }));
    const early = await metrics.recordMany(points.slice(0, 40));
    expect(early.every(Boolean)).toBe(true);
    // 40 already recorded, 110 new, and 10 of the new ones sent twice in the same call.
    const again = await metrics.recordMany([...points, ...points.slice(140)]);
    expect(again.filter(Boolean).length).toBe(110);
    expect(again.slice(0, 40).some(Boolean)).toBe(false);
    expect(again.slice(150).some(Boolean)).toBe(false);

    for (const resolution of ['minute', 'hour', 'day'] as const) {
      const start = bucketStart(at, resolution);
      const all = await metrics.readRollups({ metric, resolution, start, end: start });
      const rollup = [...all.groups[0].buckets.values()][0];
      expect(rollup).toMatchObject({ count: 150, sum: (150 * 151) / 2, min: 1, max: 150 });
      const odd = await metrics.readRollups({ metric, resolution, start, end: start, labels: { shard: 'odd' } });
      expect([...odd.groups[0].buckets.values()][0]).toMatchObject({ count: 75, min: 2, max: 150 });
    }
    store.raw.destroy();
  });

  it('points whose time the event fixes are guarded by their raw point: resent in a larger batch, each counts and is stored once', async () => {
    const store = new Store({ tableName: 'supervisor', endpoint: inject('dynamodbEndpoint') });
    const metrics = new MetricsStore(store);
    const metric = `custom.fixed_${ulid().toLowerCase().slice(-8)}`;
    const at = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 120_000);
    const points = Array.from({ length: 120 }, (_, i) => ({ metric, value: i + 1, at, labels: { shard: i % 2 ? 'odd' : 'even' }, sourceId: `fixed-test:${metric}:${i}`, fixedTime: true }));
    expect((await metrics.recordMany(points.slice(0, 50))).every(Boolean)).toBe(true);
    const again = await metrics.recordMany([...points, ...points.slice(100)]);
    expect(again.filter(Boolean).length).toBe(70);
    const read = await metrics.readRollups({ metric, resolution: 'hour', start: bucketStart(at, 'hour'), end: bucketStart(at, 'hour') });
    expect([...read.groups[0].buckets.values()][0]).toMatchObject({ count: 120, sum: (120 * 121) / 2, min: 1, max: 120 });
    const raw = await metrics.listPoints({ metric, from: new Date(at.getTime() - 1), to: new Date(at.getTime() + 1), limit: 500 });
    expect(raw.items).toHaveLength(120);
    store.raw.destroy();
  });

  it('min and max settle whether or not this process has seen the rollup, and a bound another writer widened is kept', async () => {
    const store = new Store({ tableName: 'supervisor', endpoint: inject('dynamodbEndpoint') });
    const metrics = new MetricsStore(store);
    const metric = `custom.bounds_${ulid().toLowerCase().slice(-8)}`;
    const at = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 120_000);
    let n = 0;
    const record = (...values: number[]) => metrics.recordMany(values.map((value) => ({ metric, value, at, labels: {}, sourceId: `bounds:${metric}:${n++}` })));
    const bounds = async () => {
      const read = await metrics.readRollups({ metric, resolution: 'minute', start: bucketStart(at, 'minute'), end: bucketStart(at, 'minute') });
      const r = [...read.groups[0].buckets.values()][0];
      return [r.count, r.min, r.max];
    };
    await record(5, 10);
    await record(7); // within what this process saw stored: nothing to settle
    await record(3);
    await record(12);
    expect(await bounds()).toEqual([5, 3, 12]);
    // Another process widened the max; a point under it leaves it, one above raises it.
    await store.doc.send(new UpdateCommand({ TableName: store.table, Key: { pk: `MROLL#minute#${metric}#*`, sk: new Date(bucketStart(at, 'minute')).toISOString() }, UpdateExpression: 'SET mx = :v', ExpressionAttributeValues: { ':v': 100 } }));
    await record(50);
    expect(await bounds()).toEqual([6, 3, 100]);
    await record(101, 1);
    expect(await bounds()).toEqual([8, 1, 101]);
    store.raw.destroy();
  });
});
