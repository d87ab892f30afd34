import { describe, expect, it, beforeAll } from 'vitest';
import { ulid } from 'ulid';
import { parse } from 'csv-parse/sync';
import ExcelJS from 'exceljs';
import { baseUrl, call, adminSession, type Session } from '../../support/client.js';
import { sessionAs } from '../tasks/helpers.js';

const MIN = 60_000;
const suffix = () => ulid().toLowerCase().slice(-10).replace(/[^a-z0-9]/g, 'x');
const noise = (i: number) => (((i * 7919) % 11) - 5) * 0.1;

async function collectAll(s: Session, metric: string, points: { at: number; value: number; labels?: Record<string, string> }[]) {
  for (let i = 0; i < points.length; i += 8) {
    await Promise.all(
      points.slice(i, i + 8).map(async (p, j) => {
        const res = await call('POST', '/api/v1/analytics/collect', {
          token: s.token,
          body: { event_id: `${metric}-${i + j}`, metric_type: metric, value: p.value, timestamp: new Date(p.at).toISOString(), labels: p.labels ?? {} },
        });
        if (res.status !== 201) throw new Error(`collect ${res.status} ${JSON.stringify(res.body)}`);
      }),
    );
  }
}

describe('advanced analytics', () => {
  let admin: Session;
  const flat = `adv.flat_${suffix()}`;
  const spiked = `adv.spike_${suffix()}`;
  const stepA = `adv.step_${suffix()}`;
  const stepB = `bdv.twice_${suffix()}`;
  const M = 60;

  beforeAll(async () => {
    admin = await adminSession();
    const minute = Math.floor(Date.now() / MIN) * MIN;
    // Oldest first: i = 0 … 59 are the complete minutes before the current one.
    const at = (i: number) => minute - (M - i) * MIN + 1000;
    await collectAll(admin, flat, Array.from({ length: M }, (_, i) => ({ at: at(i), value: 10 + noise(i) })));
    await collectAll(admin, spiked, Array.from({ length: M }, (_, i) => ({ at: at(i), value: i === M - 1 ? 100 : 10 + noise(i) })));
    const step = (i: number) => (i < 30 ? 10 : 20) + noise(i);
    await collectAll(admin, stepA, Array.from({ length: M }, (_, i) => ({ at: at(i), value: step(i), labels: { kind: 'a' } })));
    await collectAll(admin, stepB, Array.from({ length: M }, (_, i) => ({ at: at(i), value: 2 * step(i) + noise(i + 3) })));
  }, 240_000);

  it('real-time: a spike is flagged with its value, band and score; a flat series gives none', async () => {
    const res = await call('GET', `/api/v1/analytics/advanced/metrics/real-time?metric_types=${flat}:avg,${spiked}:avg&window_minutes=90&prediction_minutes=10`, { token: admin.token });
    expect(res.status).toBe(200);
    const [f, s] = res.body.data.metrics;
    expect(f.metric_type).toBe(flat);
    expect(f.anomalies).toEqual([]);
    expect(f.points).toBeGreaterThanOrEqual(M - 1);
    expect(f.prediction.status).toBe('ok');
    expect(f.prediction.values).toHaveLength(10);
    for (const p of f.prediction.values) {
      expect(p.lower).toBeLessThanOrEqual(10.5);
      expect(p.upper).toBeGreaterThanOrEqual(9.5);
    }
    const flag = s.anomalies.find((a: any) => a.value === 100);
    expect(flag).toBeDefined();
    expect(flag.score).toBeGreaterThan(3.5);
    expect(flag.band.upper).toBeLessThan(100);
    expect(flag.band.median).toBeCloseTo(10, 0);
    expect(flag.baseline_size).toBeGreaterThanOrEqual(10);
    expect(s.latest.value).toBe(100);
  });

  it('insights: the step is a change point, the doubled series correlates, the spike is an anomaly; the flat series has none', async () => {
    const res = await call('GET', `/api/v1/analytics/advanced/insights?time_range=3h&metric_types=${flat}:avg,${spiked}:avg,${stepA}:avg,${stepB}:avg`, { token: admin.token });
    expect(res.status).toBe(200);
    const d = res.body.data;
    expect(d.bucket).toBe('minute');
    const cp = d.change_points.find((c: any) => c.metric_type === stepA);
    expect(cp).toBeDefined();
    expect(cp.after_mean - cp.before_mean).toBeCloseTo(10, 0);
    expect(cp.confidence).toBeGreaterThan(0.99);
    expect(cp.sample_size).toBeGreaterThanOrEqual(M - 1);
    expect(d.change_points.some((c: any) => c.metric_type === flat)).toBe(false);
    const corr = d.correlations.find((c: any) => c.metrics.join() === `${stepA}:avg,${stepB}:avg`);
    expect(corr.r).toBeGreaterThan(0.95);
    expect(corr.sample_size).toBeGreaterThanOrEqual(M - 1);
    expect(corr.p_value).toBeLessThan(0.01);
    expect(d.anomalies.some((a: any) => a.metric_type === spiked && a.value === 100)).toBe(true);
    expect(d.anomalies.some((a: any) => a.metric_type === flat)).toBe(false);
  });

  it('export: CSV and XLSX read back match the JSON export; each export is audited', async () => {
    const q = `time_range=2h&metric_types=${stepA},${stepB}`;
    const json = await call('GET', `/api/v1/analytics/advanced/export?format=json&${q}`, { token: admin.token });
    expect(json.status).toBe(200);
    const meta = json.body.data.export_metadata;
    const points = json.body.data.points;
    expect(meta.point_count).toBe(2 * M);
    expect(points).toHaveLength(2 * M);
    expect(meta.metric_types).toEqual([stepA, stepB]);
    expect(meta.categories).toEqual({ adv: M, bdv: M });

    const csv = await call('GET', `/api/v1/analytics/advanced/export?format=csv&${q}`, { token: admin.token });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toContain('text/csv');
    expect(csv.headers.get('content-disposition')).toMatch(/attachment; filename="metrics-.*\.csv"/);
    const rows = parse(csv.body as string, { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => ({ timestamp: r.timestamp, metric_type: r.metric_type, value: Number(r.value), labels: JSON.parse(r.labels), point_id: r.point_id, recorded_at: r.recorded_at }))).toEqual(points);

    const xres = await fetch(new URL(`/api/v1/analytics/advanced/export?format=xlsx&${q}`, baseUrl()), { headers: { authorization: `Bearer ${admin.token}` } });
    expect(xres.status).toBe(200);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(await xres.arrayBuffer());
    expect(wb.worksheets.map((w) => w.name)).toEqual(['Metadata', 'adv', 'bdv']);
    const metaRows = new Map<string, string>();
    wb.getWorksheet('Metadata')!.eachRow((row, n) => n > 1 && metaRows.set(String(row.getCell(1).value), String(row.getCell(2).value)));
    expect(Number(metaRows.get('point_count'))).toBe(2 * M);
    const fromSheets: any[] = [];
    for (const name of ['adv', 'bdv']) {
      const ws = wb.getWorksheet(name)!;
      const header = (ws.getRow(1).values as string[]).slice(1);
      ws.eachRow((row, n) => {
        if (n === 1) return;
        const v = Object.fromEntries(header.map((h, i) => [h, row.getCell(i + 1).value]));
        fromSheets.push({ ...v, value: Number(v.value), labels: JSON.parse(String(v.labels)) });
      });
    }
    const order = (a: any, b: any) => a.point_id.localeCompare(b.point_id);
    expect(fromSheets.sort(order)).toEqual([...points].sort(order));

    const audit = await call('GET', `/api/v1/audit-logs?resource_type=analytics_export&limit=100`, { token: admin.token });
    expect(audit.status).toBe(200);
    const formats = audit.body.data.items.filter((e: any) => e.actor_id === admin.userId && e.details?.points === 2 * M).map((e: any) => e.details.format);
    expect(formats).toEqual(expect.arrayContaining(['json', 'csv', 'xlsx']));
  });

  it('export needs analytics:export; a user without it is refused', async () => {
    const user = await sessionAs('user');
    const res = await call('GET', '/api/v1/analytics/advanced/export?format=csv', { token: user.token });
    expect(res.status).toBe(403);
  });

  it('dashboard data: series, trends against the previous period, failing types and providers, consistent with the query endpoint', async () => {
    const res = await call('GET', '/api/v1/analytics/advanced/dashboard/data?time_range=6h', { token: admin.token });
    expect(res.status).toBe(200);
    const d = res.body.data;
    expect(d.bucket).toBe('minute');
    expect(d.series.map((s: any) => s.key)).toEqual(['tasks_finished', 'task_duration_p95_ms', 'cost_usd', 'provider_calls']);
    expect(d.trends.map((t: any) => t.key)).toEqual(['tasks_finished', 'task_duration_p95_ms', 'cost_usd', 'provider_calls']);
    for (const t of d.trends) if (t.current !== null && t.previous !== null) expect(t.change).toBeCloseTo(t.current - t.previous, 9);
    // Other test files finish tasks on this runtime meanwhile, and counts only grow: when the dashboard
    // reads the same before and after the query, the query must read that too.
    const finishedOf = (points: any[]) => points.reduce((a: number, p: any) => a + p.count, 0);
    for (let attempt = 1; ; attempt++) {
      const before = finishedOf(d.series[0].points);
      const q = await call('POST', '/api/v1/analytics/query', { token: admin.token, body: { metric_type: 'task.finished', time_range: '6h', group_by: { bucket: 'minute' } } });
      const again = await call('GET', '/api/v1/analytics/advanced/dashboard/data?time_range=6h', { token: admin.token });
      const after = finishedOf(again.body.data.series[0].points);
      const queried = finishedOf(q.body.data.series[0].points);
      expect(queried).toBeGreaterThanOrEqual(before);
      expect(queried).toBeLessThanOrEqual(after);
      if (before === after) {
        expect(queried).toBe(before);
        break;
      }
      if (attempt === 50) break;
      d.series = again.body.data.series;
    }
    expect(d.summary.scope).toBe('all');
    expect(Array.isArray(d.providers.table)).toBe(true);
    expect(d.open_alerts).toBeNull();
    for (const f of d.top_failing_task_types) expect(f.failure_rate).toBeCloseTo(f.failed / f.finished, 9);
    expect((await call('GET', '/api/v1/analytics/advanced/dashboard/data?time_range=1y', { token: admin.token })).status).toBe(422);
  });

  it('bad queries are 422 naming the field', async () => {
    for (const [path, field] of [
      ['/api/v1/analytics/advanced/export?format=pdf', 'format'],
      ['/api/v1/analytics/advanced/export?time_range=30d', 'time_range'],
      ['/api/v1/analytics/advanced/export?metric_types=Bad-Name', 'metric_types'],
      ['/api/v1/analytics/advanced/metrics/real-time?window_minutes=5', 'window_minutes'],
      ['/api/v1/analytics/advanced/metrics/real-time?metric_types=task.finished:median', 'metric_types'],
      ['/api/v1/analytics/advanced/metrics/real-time?z_threshold=1', 'z_threshold'],
      ['/api/v1/analytics/advanced/insights?time_range=90d', 'time_range'],
      ['/api/v1/analytics/advanced/insights?alpha=0.5', 'alpha'],
      ['/api/v1/analytics/advanced/insights?other=1', 'other'],
    ] as const) {
      const res = await call('GET', path, { token: admin.token });
      expect(res.status, path).toBe(422);
      expect(JSON.stringify(res.body), path).toContain(field);
    }
  });
});
