import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ulid } from 'ulid';
import { adminSession, openSocket, type Session } from '../../support/client.js';
import { sessionAs } from '../tasks/helpers.js';
import { testStore } from '../auth/fixtures.js';
import { MetricsStore } from '../../../shared/platform/metrics/store.js';

/**
 * The analytics stream over a real WebSocket in the local runtime: preferences choose the metric
 * types, the refresh interval and the anomaly threshold; updates are coalesced to the interval and
 * skipped when nothing changed; an injected spike arrives once as an `anomaly`; each subscriber sees
 * only what the HTTP endpoints let it see.
 */

const MIN = 60_000;
const suffix = () => ulid().toLowerCase().slice(-10).replace(/[^a-z0-9]/g, 'x');
const noise = (i: number) => (((i * 7919) % 11) - 5) * 0.1;
type Socket = Awaited<ReturnType<typeof openSocket>>;

/**
 * A point of the user's own, as their tasks make them (labelled `user`): a `user` may not POST
 * /collect, so it is written through the metrics store, which the change feed then reads like any other write.
 */
async function collect(s: Session, metric: string, eventId: string, at: number, value: number) {
  await new MetricsStore(testStore()).record({ metric, value, at: new Date(at), labels: { user: s.userId }, sourceId: `stream-test:${metric}:${eventId}` });
}

describe('analytics stream', () => {
  const metric = `stream.spike_${suffix()}`;
  const INTERVAL = 2;
  let admin: Session;
  let owner: Session;
  let other: Session;
  const sockets: Socket[] = [];
  let adminWs: Socket;
  let ownerWs: Socket;
  let otherWs: Socket;

  const open = async (s: Session) => {
    const ws = await openSocket('/api/v1/analytics/advanced/stream', s.token);
    sockets.push(ws);
    ws.send({ action: 'update_preferences', preferences: { metric_types: [`${metric}:avg`], refresh_interval_seconds: INTERVAL, anomaly_z_threshold: 3.5 } });
    await ws.waitFor((m) => m.type === 'preferences_updated', 30_000);
    return ws;
  };

  beforeAll(async () => {
    [admin, owner, other] = await Promise.all([adminSession(), sessionAs('user'), sessionAs('user')]);
    [adminWs, ownerWs, otherWs] = await Promise.all([open(admin), open(owner), open(other)]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(sockets.map((s) => s.close()));
  });

  it('sends the current figures at once when preferences change, on the analytics channel', async () => {
    // The stream path starts subscribed with the default preferences; the update that follows new preferences carries them.
    const first = await adminWs.waitFor((m) => m.type === 'metrics.update' && m.data.refresh_interval_seconds === INTERVAL);
    expect(first.channel).toBe('analytics');
    expect(first.data.refresh_interval_seconds).toBe(INTERVAL);
    expect(first.data.metrics).toHaveLength(1);
    expect(first.data.metrics[0]).toMatchObject({ metric_type: metric, aggregation: 'avg', scope: 'all', latest: null, current: null, points: 0 });
    expect((await otherWs.waitFor((m) => m.type === 'metrics.update' && m.data.refresh_interval_seconds === INTERVAL)).data.metrics[0].scope).toBe('own');
  });

  it('refuses metric types that are not metric[:aggregation]', async () => {
    adminWs.send({ action: 'update_preferences', preferences: { metric_types: ['Bad Name', `${metric}:median`] } });
    const invalid = await adminWs.waitFor((m) => m.type === 'error' && m.data.error === 'validation_error');
    expect(invalid.data.errors.map((e: { path: string }) => e.path).sort()).toEqual(['preferences.metric_types.0', 'preferences.metric_types.1']);
  });

  it('pushes the owner’s spike as one anomaly to those who may read it, coalesced updates, nothing to another user', async () => {
    const minute = Math.floor(Date.now() / MIN) * MIN;
    const N = 20;
    // Oldest first: N complete minutes before the current one, the last a spike.
    const at = (i: number) => minute - (N - i) * MIN + 1000;
    for (let i = 0; i < N; i += 5) {
      await Promise.all(Array.from({ length: Math.min(5, N - i) }, (_, j) => collect(owner, metric, `p${i + j}`, at(i + j), i + j === N - 1 ? 100 : 10 + noise(i + j))));
    }

    for (const ws of [adminWs, ownerWs]) {
      const anomaly = await ws.waitFor((m) => m.type === 'anomaly', 60_000);
      expect(anomaly.channel).toBe('analytics');
      expect(anomaly.data).toMatchObject({ metric_type: metric, aggregation: 'avg', value: 100, timestamp: new Date(at(N - 1) - 1000).toISOString(), method: 'robust_z_score', z_threshold: 3.5 });
      expect(anomaly.data.score).toBeGreaterThan(3.5);
      expect(anomaly.data.band.median).toBeCloseTo(10, 0);
      expect(anomaly.data.band.upper).toBeLessThan(100);
      expect(anomaly.data.baseline_size).toBeGreaterThanOrEqual(10);
      const update = await ws.waitFor((m) => m.type === 'metrics.update' && m.data.metrics[0].latest?.value === 100, 30_000);
      expect(update.data.metrics[0].points).toBe(N);
    }
    expect(ownerWs.messages.find((m) => m.type === 'anomaly').data.scope).toBe('own');

    // A point in the minute in progress: a new update carries it; the anomaly is not sent again.
    await collect(owner, metric, 'now', Date.now(), 10); // an ordinary value: when its minute completes, it is no anomaly
    const current = await adminWs.waitFor((m) => m.type === 'metrics.update' && m.data.metrics[0].current?.count >= 1, 30_000);
    expect(current.data.metrics[0].current.value).toBeCloseTo(10, 6);
    await new Promise((r) => setTimeout(r, (INTERVAL + 1) * 1000));

    for (const ws of [adminWs, ownerWs]) {
      expect(ws.messages.filter((m) => m.type === 'anomaly')).toHaveLength(1);
      // At most one update per interval (after the one new preferences asked for at once).
      const times = ws.messages.filter((m) => m.type === 'metrics.update' && m.data.refresh_interval_seconds === INTERVAL).map((m) => Date.parse(m.data.pushed_at));
      for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeGreaterThanOrEqual(INTERVAL * 1000);
    }
    // Another user reads only their own points: nothing changed for them, so nothing more was sent.
    expect(otherWs.messages.filter((m) => m.type === 'anomaly')).toEqual([]);
    const updates = otherWs.messages.filter((m) => m.type === 'metrics.update' && m.data.refresh_interval_seconds === INTERVAL);
    expect(updates).toHaveLength(1);
    expect(updates[0].data.metrics[0]).toMatchObject({ latest: null, current: null, points: 0 });
  }, 180_000);
});
