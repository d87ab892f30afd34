import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ulid } from 'ulid';
import { Store } from '../../../shared/platform/store/client.js';
import { ensureTable } from '../../../local/dynamodb-local.js';
import { bucketStart, COMPACT_AFTER_MS, LATE_AFTER_MS, MetricsStore, type MetricPoint, type Resolution } from '../../../shared/platform/metrics/store.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;

// A table of its own: the local runtime's collector compacts every metric of its table each minute,
// which would race the runs these tests make at chosen times.
const tableName = `compaction-${ulid().toLowerCase()}`;
const store = new Store({ tableName, endpoint: inject('dynamodbEndpoint') });
const metrics = new MetricsStore(store);
beforeAll(() => ensureTable(inject('dynamodbEndpoint'), tableName, { stream: false }));
afterAll(() => store.raw.destroy());

const newMetric = () => `custom.compact_${ulid().toLowerCase().slice(-8)}`;

/** Count, sum, min and max per bucket of a read, for comparing reads. */
async function read(metric: string, resolution: Resolution, start: number, end: number, q: { labels?: Record<string, string>; groupBy?: string[] } = {}) {
  const r = await metrics.readRollups({ metric, resolution, start, end, ...q });
  const groups = r.groups
    .map((g) => ({ labels: g.labels, buckets: [...g.buckets].sort(([a], [b]) => a - b).map(([at, x]) => [new Date(at).toISOString(), x.count, x.sum, x.min, x.max]) }))
    .sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels)));
  return { groups, itemsRead: r.itemsRead };
}

async function storedRollup(metric: string, resolution: Resolution, bucket: number, series = '*') {
  const out = await store.doc.send(new GetCommand({ TableName: store.table, Key: { pk: `MROLL#${resolution}#${metric}#${series}`, sk: new Date(bucket).toISOString() }, ConsistentRead: true }));
  return out.Item;
}

describe('the metrics store: hours and days compacted from minutes', () => {
  // 10:00 three days ago: points over three hours of one day.
  const day = bucketStart(Date.now() - 3 * DAY, 'day');
  const first = day + 10 * HOUR;
  const points = (metric: string): MetricPoint[] =>
    Array.from({ length: 90 }, (_, i) => ({
      metric,
      value: i + 1,
      at: new Date(first + i * 2 * 60_000 + 5_000),
      labels: { shard: i % 3 ? 'a' : 'b', user: `u${i % 2}` },
      sourceId: `compact:${metric}:${i}`,
      fixedTime: true,
    }));

  it('points stored as they happen go to minutes only; reads are the same before and after compaction, which writes the hours and the day', async () => {
    const metric = newMetric();
    const all = points(metric);
    // Each point stored a minute after its time, as the change feed does.
    for (let i = 0; i < all.length; i += 10) await metrics.recordMany(all.slice(i, i + 10), new Date(all[i + 9].at.getTime() + 60_000));
    expect(await storedRollup(metric, 'minute', bucketStart(first, 'minute'))).toMatchObject({ n: 1 });
    expect(await storedRollup(metric, 'hour', first)).toBeUndefined();
    expect(await storedRollup(metric, 'day', day)).toBeUndefined();

    const reads = async () => ({
      hours: await read(metric, 'hour', first - HOUR, first + 4 * HOUR),
      day: await read(metric, 'day', day - DAY, day + DAY),
      filtered: await read(metric, 'hour', first, first + 2 * HOUR, { labels: { shard: 'b' } }),
      grouped: await read(metric, 'day', day, day, { groupBy: ['user'] }),
    });
    const before = await reads();
    expect(before.hours.groups[0].buckets.map((b) => b[1])).toEqual([30, 30, 30]);
    expect(before.day.groups[0].buckets).toEqual([[new Date(day).toISOString(), 90, (90 * 91) / 2, 1, 90]]);
    expect(before.grouped.groups.map((g) => [g.labels.user, g.buckets[0][1]])).toEqual([
      ['u0', 45],
      ['u1', 45],
    ]);

    // An hour is compacted once it ended COMPACT_AFTER_MS ago: not yet at 13:14 for 12:00-13:00.
    let report = await metrics.compact(new Date(first + 3 * HOUR + COMPACT_AFTER_MS - 60_000));
    expect(await storedRollup(metric, 'hour', first)).toMatchObject({ n: 30, s_sum: (30 * 31) / 2, mn: 1, mx: 30 });
    expect(await storedRollup(metric, 'hour', first + 2 * HOUR)).toBeUndefined();
    expect((await metrics.compactionState(metric))!.hoursNext).toBe(first + 2 * HOUR);
    expect(await reads()).toMatchObject({ hours: { groups: before.hours.groups }, day: { groups: before.day.groups } });

    // The next day, an hour after midnight: every hour and then the day are built.
    report = await metrics.compact(new Date(day + DAY + HOUR));
    expect(report.days).toBeGreaterThanOrEqual(1);
    expect(await storedRollup(metric, 'hour', first + 2 * HOUR)).toMatchObject({ n: 30, mn: 61, mx: 90 });
    expect(await storedRollup(metric, 'hour', first, 'L:shard=b')).toMatchObject({ n: 10 });
    expect(await storedRollup(metric, 'day', day)).toMatchObject({ n: 90, s_sum: (90 * 91) / 2, mn: 1, mx: 90 });
    expect(await metrics.compactionState(metric)).toMatchObject({ hoursNext: day + DAY, daysNext: day + DAY });
    const after = await reads();
    expect(after.hours.groups).toEqual(before.hours.groups);
    expect(after.day.groups).toEqual(before.day.groups);
    expect(after.filtered.groups).toEqual(before.filtered.groups);
    expect(after.grouped.groups).toEqual(before.grouped.groups);
    // The same answers from far fewer items: three hour items instead of 90 minute items.
    expect(after.hours.itemsRead).toBe(3);
    expect(before.hours.itemsRead).toBe(90);
    expect(after.day.itemsRead).toBe(1);
  });

  it('a late point is added to its compacted hour and day directly; compacting again changes nothing', async () => {
    const metric = newMetric();
    const all = points(metric);
    await metrics.recordMany(all, new Date(first + 3 * HOUR));
    await metrics.compact(new Date(day + DAY + HOUR));
    expect(await storedRollup(metric, 'day', day)).toMatchObject({ n: 90 });

    // Arrives two days late (a redriven stream record, say): counted in its minute, hour and day at once.
    const late: MetricPoint = { metric, value: 1000, at: new Date(first + 7 * 60_000), labels: { shard: 'a', user: 'u0' }, sourceId: `late:${metric}`, fixedTime: true };
    expect(await metrics.recordMany([late], new Date(day + 3 * DAY))).toEqual([true]);
    expect(await storedRollup(metric, 'hour', first)).toMatchObject({ n: 31, mx: 1000 });
    expect(await storedRollup(metric, 'day', day)).toMatchObject({ n: 91, mx: 1000 });
    const hours = await read(metric, 'hour', first, first + 2 * HOUR);
    expect(hours.groups[0].buckets.map((b) => b[1])).toEqual([31, 30, 30]);

    // A repeated run (the state put back, as if two runs overlapped) rebuilds the same figures from the minutes.
    await store.doc.send(
      new UpdateCommand({ TableName: store.table, Key: { pk: 'MCOMPACT', sk: metric }, UpdateExpression: 'SET hours_next = :h, days_next = :d', ExpressionAttributeValues: { ':h': first, ':d': day } }),
    );
    await metrics.compact(new Date(day + DAY + HOUR));
    expect(await storedRollup(metric, 'hour', first)).toMatchObject({ n: 31, s_sum: (30 * 31) / 2 + 1000, mn: 1, mx: 1000 });
    expect(await storedRollup(metric, 'day', day)).toMatchObject({ n: 91, s_sum: (90 * 91) / 2 + 1000 });
    expect((await read(metric, 'day', day, day)).groups[0].buckets[0][1]).toBe(91);
  });

  it('a point late for its hour but not its day is in the hour at once and in the day once that is built', async () => {
    const metric = newMetric();
    const at = first;
    await metrics.recordMany([{ metric, value: 5, at: new Date(at), labels: {}, sourceId: `a:${metric}`, fixedTime: true }], new Date(at + 60_000));
    // Stored an hour and LATE_AFTER_MS after its hour ended, before any compaction ran.
    const stored = at + 2 * HOUR + LATE_AFTER_MS;
    await metrics.recordMany([{ metric, value: 7, at: new Date(at + 60_000), labels: {}, sourceId: `b:${metric}`, fixedTime: true }], new Date(stored));
    expect(await storedRollup(metric, 'hour', at)).toMatchObject({ n: 1, s_sum: 7 });
    expect(await storedRollup(metric, 'day', day)).toBeUndefined();
    // Not compacted yet: the hour is read from its minutes, which hold both points.
    expect((await read(metric, 'hour', at, at)).groups[0].buckets[0].slice(1)).toEqual([2, 12, 5, 7]);
    await metrics.compact(new Date(day + DAY + HOUR));
    expect(await storedRollup(metric, 'hour', at)).toMatchObject({ n: 2, s_sum: 12, mn: 5, mx: 7 });
    expect(await storedRollup(metric, 'day', day)).toMatchObject({ n: 2, s_sum: 12 });
    expect((await read(metric, 'day', day, day)).groups[0].buckets[0].slice(1)).toEqual([2, 12, 5, 7]);
  });

  it('a metric whose first point is late for its hour but not its day gets a state: the day holds the point before and after compaction', async () => {
    const metric = newMetric();
    const at = first + 30 * 60_000;
    // Stored 1 h 10 min after its time: late for 10:00-11:00, not for the day.
    await metrics.recordMany([{ metric, value: 9, at: new Date(at), labels: { shard: 'a' }, sourceId: `x:${metric}`, fixedTime: true }], new Date(at + 70 * 60_000));
    expect(await metrics.compactionState(metric)).toMatchObject({ daysNext: day });
    expect(await storedRollup(metric, 'hour', first)).toMatchObject({ n: 1 });
    expect(await storedRollup(metric, 'day', day)).toBeUndefined();
    expect((await read(metric, 'day', day, day)).groups[0].buckets[0].slice(1)).toEqual([1, 9, 9, 9]);
    await metrics.compact(new Date(day + DAY + HOUR));
    expect(await storedRollup(metric, 'day', day)).toMatchObject({ n: 1, s_sum: 9 });
    expect((await read(metric, 'day', day, day, { labels: { shard: 'a' } })).groups[0].buckets[0].slice(1)).toEqual([1, 9, 9, 9]);
  });

  it('compaction keeps the bounds already stored in an hour (a minute whose bounds are not settled yet narrows nothing)', async () => {
    const metric = newMetric();
    await metrics.recordMany([{ metric, value: 10, at: new Date(first), labels: {}, sourceId: `p:${metric}`, fixedTime: true }], new Date(first + 60_000));
    // Late for its hour: added to the hour directly, which takes its min and max.
    await metrics.recordMany([{ metric, value: 500, at: new Date(first + 60_000), labels: {}, sourceId: `q:${metric}`, fixedTime: true }], new Date(first + HOUR + LATE_AFTER_MS + 60_000));
    expect(await storedRollup(metric, 'hour', first)).toMatchObject({ n: 1, mn: 500, mx: 500 });
    // As if the late point's minute had not had its bounds settled yet (a crash between its transaction and settleBounds).
    await store.doc.send(
      new UpdateCommand({ TableName: store.table, Key: { pk: `MROLL#minute#${metric}#*`, sk: new Date(first + 60_000).toISOString() }, UpdateExpression: 'SET mx = :v, mn = :v', ExpressionAttributeValues: { ':v': 400 } }),
    );
    await metrics.compact(new Date(first + 2 * HOUR));
    expect(await storedRollup(metric, 'hour', first)).toMatchObject({ n: 2, s_sum: 510, mn: 10, mx: 500 });
  });

  it('reads take the buckets that start within the range, whatever its bounds', async () => {
    const metric = newMetric();
    const all = points(metric);
    await metrics.recordMany(all, new Date(first + 3 * HOUR));
    const whole = await read(metric, 'hour', first, first + 2 * HOUR);
    expect(whole.groups[0].buckets.map((b) => b[1])).toEqual([30, 30, 30]);
    // Not aligned: 10:30 to 12:59:59 holds the buckets of 11:00 and 12:00.
    const part = await read(metric, 'hour', first + 30 * 60_000, first + 3 * HOUR - 1_000);
    expect(part.groups[0].buckets.map((b) => b[0])).toEqual([new Date(first + HOUR).toISOString(), new Date(first + 2 * HOUR).toISOString()]);
    expect((await read(metric, 'hour', first + 10 * 60_000, first + 20 * 60_000)).groups[0].buckets).toEqual([]);
  });

  it('points that are all late need no compaction: every resolution is written at once and read as stored', async () => {
    const metric = newMetric();
    await metrics.recordMany(points(metric), new Date());
    expect(await metrics.compactionState(metric)).toBeNull();
    expect(await storedRollup(metric, 'day', day)).toMatchObject({ n: 90 });
    const hours = await read(metric, 'hour', first, first + 2 * HOUR);
    expect(hours.itemsRead).toBe(3);
    expect(hours.groups[0].buckets.map((b) => b[1])).toEqual([30, 30, 30]);
  });
});
