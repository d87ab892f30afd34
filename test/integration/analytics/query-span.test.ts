/**
 * A query for one figure over a long range reads the whole days inside it from day rollups and only
 * the edges from hour rollups: the same answer as reading every hour, from far fewer items. Against a
 * local runtime of this file's own (the suite's DynamoDB Local, its own table), with back-dated points
 * recorded through the metrics store.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ulid } from 'ulid';
import '../../../local/quiet-sdk.js';
import { startLocalRuntime, type LocalRuntime } from '../../../local/runtime.js';
import { AuthService } from '../../../shared/auth/service.js';
import { UserRepository } from '../../../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../../../shared/auth/sessions-repo.js';
import { exactQuantile, MetricsStore } from '../../../shared/platform/metrics/store.js';
import { checkResponse } from '../../support/contract.js';

const ADMIN = { username: 'query-span-admin', password: 'query-span-admin-password' };
const HOUR = 3_600_000;
const DAYS = 5;

let runtime: LocalRuntime;
let token: string;
const metric = `queryspan.m${ulid().toLowerCase().slice(-8)}.latency_ms`;
const values: number[] = [];

async function query(body: unknown) {
  const res = await fetch(`${runtime.url}/api/v1/analytics/query`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  await checkResponse('POST', res.url, res.status, res.headers.get('content-type') ?? undefined, text);
  return { status: res.status, body: JSON.parse(text) };
}

beforeAll(async () => {
  runtime = await startLocalRuntime({
    port: 0,
    dataDir: null,
    log: () => undefined,
    changeFeed: false,
    dynamodbEndpoint: inject('dynamodbEndpoint'),
    tableName: `query-span-${ulid().toLowerCase()}`,
  });
  const deps = runtime.deps;
  await new AuthService(deps, { users: new UserRepository(deps.store), sessions: new SessionRepository(deps.store), attempts: new LoginAttemptRepository(deps.store) }).createUser({
    ...ADMIN,
    roles: ['admin'],
  });
  const login = await fetch(`${runtime.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) });
  token = ((await login.json()) as { data: { access_token: string } }).data.access_token;
  // Two points an hour over the last DAYS days (the oldest hour left out so every point is in range).
  const now = Date.now();
  const points = Array.from({ length: DAYS * 24 * 2 - 4 }, (_, i) => {
    const value = 50 + ((i * 37) % 101) + (i % 17 === 0 ? 300 : 0);
    values.push(value);
    return { metric, value, at: new Date(now - (i + 1) * (HOUR / 2) - 1_000), labels: { region: i % 3 ? 'eu' : 'us' }, sourceId: `query-span:${i}` };
  });
  await new MetricsStore(deps.store).recordMany(points, new Date(now));
  values.sort((a, b) => a - b);
});

afterAll(async () => {
  await runtime?.stop();
});

describe(`a ${DAYS}-day query for one figure`, () => {
  it('reads whole days from day rollups and the edges from hours; count, sum and p95 match the points', async () => {
    const count = await query({ metric_type: metric, time_range: `${DAYS}d`, aggregation: 'count' });
    expect(count.status).toBe(200);
    expect(count.body.data.resolution).toBe('hour');
    expect(count.body.data.series[0].value).toBe(values.length);
    // At most DAYS day items plus the two partial days' hours, against DAYS × 24 hour items.
    expect(count.body.data.items_read).toBeLessThanOrEqual(DAYS + 48);
    expect(count.body.data.items_read).toBeLessThan(DAYS * 24);

    const sum = await query({ metric_type: metric, time_range: `${DAYS}d`, aggregation: 'sum' });
    expect(sum.body.data.series[0].value).toBe(values.reduce((a, b) => a + b, 0));
    const p95 = await query({ metric_type: metric, time_range: `${DAYS}d`, aggregation: 'p95' });
    const exact = exactQuantile(values, 0.95)!;
    expect(Math.abs(p95.body.data.series[0].value - exact)).toBeLessThanOrEqual(exact * 0.011);

    // The same figures bucketed by hour (every hour item read) agree.
    const hourly = await query({ metric_type: metric, time_range: `${DAYS}d`, aggregation: 'count', group_by: { bucket: 'hour' } });
    expect(hourly.body.data.items_read).toBeGreaterThan(count.body.data.items_read);
    expect(hourly.body.data.series[0].value).toBe(values.length);
  });

  it('grouped by a label, each group matches its points', async () => {
    const grouped = await query({ metric_type: metric, time_range: `${DAYS}d`, aggregation: 'count', group_by: { labels: ['region'] } });
    expect(grouped.status).toBe(200);
    const byRegion = Object.fromEntries(grouped.body.data.series.map((s: { labels: { region: string }; value: number }) => [s.labels.region, s.value]));
    const us = Array.from({ length: values.length }, (_, i) => i).filter((i) => i % 3 === 0).length;
    expect(byRegion).toEqual({ us, eu: values.length - us });
  });
});
