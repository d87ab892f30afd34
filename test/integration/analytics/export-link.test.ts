/**
 * Large exports: an answer above EXPORT_INLINE_MAX_BYTES goes to object storage and the answer carries
 * a link (locally: a file under the runtime's files folder, served with an HMAC-signed, expiring URL).
 * Against a local runtime of this file's own (sharing the suite's DynamoDB Local, its own table) whose
 * environment lowers the threshold to 2 KiB, driven by a ManualClock for the link's expiry.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import ExcelJS from 'exceljs';
import { ulid } from 'ulid';
import '../../../local/quiet-sdk.js';
import { startLocalRuntime, type LocalRuntime } from '../../../local/runtime.js';
import { ManualClock } from '../../../shared/platform/local/clock.js';
import { AuthService } from '../../../shared/auth/service.js';
import { UserRepository } from '../../../shared/auth/repo.js';
import { LoginAttemptRepository, SessionRepository } from '../../../shared/auth/sessions-repo.js';
import { MetricsStore } from '../../../shared/platform/metrics/store.js';
import { SHARED_FILES } from '../../../shared/platform/infra.js';
import { checkResponse } from '../../support/contract.js';

const ADMIN = { username: 'export-link-admin', password: 'export-link-admin-password' };
const POINTS = 60;

let runtime: LocalRuntime;
let clock: ManualClock;
let token: string;
const metric = `exportlink.m${ulid().toLowerCase().slice(-8)}.latency_ms`;

async function api(path: string) {
  const res = await fetch(`${runtime.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  await checkResponse('GET', res.url, res.status, res.headers.get('content-type') ?? undefined, text);
  return { status: res.status, contentType: res.headers.get('content-type'), body: JSON.parse(text) };
}

beforeAll(async () => {
  clock = new ManualClock(Date.now());
  runtime = await startLocalRuntime({
    port: 0,
    dataDir: null,
    log: () => undefined,
    clock,
    changeFeed: false,
    dynamodbEndpoint: inject('dynamodbEndpoint'),
    tableName: `export-link-${ulid().toLowerCase()}`,
    env: { EXPORT_INLINE_MAX_BYTES: '2048' },
  });
  const deps = runtime.deps;
  await new AuthService(deps, { users: new UserRepository(deps.store), sessions: new SessionRepository(deps.store), attempts: new LoginAttemptRepository(deps.store) }).createUser({
    ...ADMIN,
    roles: ['admin'],
  });
  const login = await fetch(`${runtime.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) });
  token = ((await login.json()) as { data: { access_token: string } }).data.access_token;
  const now = clock.now().getTime();
  await new MetricsStore(deps.store).recordMany(
    Array.from({ length: POINTS }, (_, i) => ({ metric, value: 100 + i * 1.5, at: new Date(now - (POINTS - i) * 30_000), labels: { provider: i % 2 ? 'local' : 'openai' }, sourceId: `export-link:${i}` })),
    clock.now(),
  );
});

afterAll(async () => {
  await runtime?.stop();
});

describe('an export above EXPORT_INLINE_MAX_BYTES', () => {
  const q = () => `time_range=1h&metric_types=${metric}`;

  it('JSON, CSV and XLSX each answer a link; each file downloads without a token and holds every point', async () => {
    const json = await api(`/api/v1/analytics/advanced/export?format=json&${q()}`);
    expect(json.status).toBe(200);
    const link = json.body.data;
    expect(link.export_metadata).toMatchObject({ format: 'json', point_count: POINTS, metric_types: [metric] });
    expect(link.download).toMatchObject({ content_type: 'application/json', filename: expect.stringMatching(/^metrics-.*\.json$/) });
    expect(link.download.url.startsWith(`${runtime.url}${SHARED_FILES.localPath}exports/`)).toBe(true);
    // The expiry is in whole seconds: within the second before now + the link's lifetime.
    const lifetime = Date.parse(link.download.expires_at) - clock.now().getTime();
    expect(lifetime).toBeGreaterThan(SHARED_FILES.linkTtlSeconds * 1000 - 1000);
    expect(lifetime).toBeLessThanOrEqual(SHARED_FILES.linkTtlSeconds * 1000);
    const file = await fetch(link.download.url);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-disposition')).toBe(`attachment; filename="${link.download.filename}"`);
    const stored = (await file.json()) as { export_metadata: unknown; points: Array<{ value: number; metric_type: string; point_id: string }> };
    expect(stored.export_metadata).toEqual(link.export_metadata);
    expect(stored.points).toHaveLength(POINTS);
    expect(Buffer.byteLength(JSON.stringify(stored))).toBe(link.download.bytes);
    expect(stored.points.map((p) => p.value)).toEqual(Array.from({ length: POINTS }, (_, i) => 100 + i * 1.5));

    const csv = await api(`/api/v1/analytics/advanced/export?format=csv&${q()}`);
    expect(csv.status).toBe(200);
    expect(csv.contentType).toMatch(/^application\/json/);
    expect(csv.body.data.download).toMatchObject({ content_type: 'text/csv; charset=utf-8' });
    const csvFile = await fetch(csv.body.data.download.url);
    expect(csvFile.status).toBe(200);
    const rows = parse(await csvFile.text(), { columns: true }) as Array<{ value: string; point_id: string }>;
    expect(rows.map((r) => r.point_id)).toEqual(stored.points.map((p) => p.point_id));
    expect(rows.map((r) => Number(r.value))).toEqual(stored.points.map((p) => p.value));

    const xlsx = await api(`/api/v1/analytics/advanced/export?format=xlsx&${q()}`);
    expect(xlsx.status).toBe(200);
    const xlsxFile = await fetch(xlsx.body.data.download.url);
    expect(xlsxFile.status).toBe(200);
    const bytes = Buffer.from(await xlsxFile.arrayBuffer());
    expect(bytes.length).toBe(xlsx.body.data.download.bytes);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(bytes as unknown as ArrayBuffer);
    const sheet = wb.getWorksheet('exportlink')!;
    expect(sheet.rowCount).toBe(POINTS + 1);
  });

  it('a tampered link is refused with 403 in the error format; an expired one too, once the hour has passed', async () => {
    const { body } = await api(`/api/v1/analytics/advanced/export?format=csv&${q()}`);
    const url = new URL(body.data.download.url);
    const signature = url.searchParams.get('signature')!;
    const variants: URL[] = [];
    const flipped = new URL(url);
    flipped.searchParams.set('signature', `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`);
    variants.push(flipped);
    const later = new URL(url);
    later.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 86_400));
    variants.push(later);
    const other = new URL(url);
    other.pathname = other.pathname.replace(/\.csv$/, '.json');
    variants.push(other);
    const unsigned = new URL(url);
    unsigned.search = '';
    variants.push(unsigned);
    for (const v of variants) {
      const res = await fetch(v);
      expect(res.status, v.toString()).toBe(403);
      expect(await res.json()).toMatchObject({ error: 'forbidden', detail: 'This link is not valid', request_id: expect.any(String), timestamp: expect.any(String) });
    }
    expect((await fetch(url)).status).toBe(200);
    clock.advance(SHARED_FILES.linkTtlSeconds * 1000);
    const expired = await fetch(url);
    expect(expired.status).toBe(403);
    expect(await expired.json()).toMatchObject({ error: 'forbidden', detail: expect.stringContaining('expired') });
    clock.advance(-SHARED_FILES.linkTtlSeconds * 1000);
  });

  it('is audited with its size and how it was delivered', async () => {
    const audit = await api('/api/v1/audit-logs?resource_type=analytics_export&limit=100');
    expect(audit.status).toBe(200);
    const entries = audit.body.data.items as Array<{ details: Record<string, unknown> }>;
    expect(entries.length).toBeGreaterThanOrEqual(4);
    expect(entries.every((e) => e.details.delivered === 'link' && e.details.points === POINTS && Number(e.details.bytes) > 2048)).toBe(true);
  });
});
