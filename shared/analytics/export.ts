/**
 * Export of raw metric points as JSON (with export_metadata), CSV (csv-stringify) or XLSX (exceljs: a
 * Metadata sheet and one sheet per metric namespace). An export whose answer would be larger than
 * EXPORT_INLINE_MAX_BYTES (a Lambda answer is at most 6 MB) goes to object storage through the `files`
 * port and the answer carries its link; nothing is cut silently.
 */
import { stringify } from 'csv-stringify/sync';
import { PassThrough } from 'node:stream';
import type { Deps } from '../platform/runtime.js';
import type { Principal } from '../platform/principal.js';
import { validationError } from '../platform/errors.js';
import type { StoredPoint } from '../platform/metrics/store.js';
import { metricsStore } from './repo.js';
import { rangeMs, SYSTEM_NAMESPACE } from './model.js';
import { MAX_EXPORT_POINTS, type ExportLinkView, type ExportView } from './advanced-model.js';
import { fileShare } from '../platform/use/files.js';
import { SHARED_FILES } from '../platform/infra.js';
import { newUlid } from '../platform/ids.js';

type ExportQuery = { format: 'json' | 'csv' | 'xlsx'; time_range: string; metric_types?: string[] };

const DAY_MS = 86_400_000;
const COLUMNS = ['timestamp', 'metric_type', 'value', 'labels', 'point_id', 'recorded_at'];
const readsAll = (p: Pick<Principal, 'permissions'>) => p.permissions.includes('tasks:read_all');

export interface ExportFile {
  contentType: string;
  body: Buffer;
  filename: string;
  points: number;
  bytes: number;
}

async function collectPoints(deps: Deps, principal: Principal, q: { time_range: string; metric_types?: string[] }, now: number) {
  const from = new Date(now - rangeMs(q.time_range));
  const to = new Date(now);
  if (from.getTime() < now - deps.config.metricsRetentionDays * DAY_MS) {
    throw validationError([{ path: 'time_range', message: `raw points are kept ${deps.config.metricsRetentionDays} days; choose a shorter range` }]);
  }
  const own = !readsAll(principal);
  const reads: { metric?: string; user?: string }[] = q.metric_types
    ? q.metric_types.map((metric) => ({ metric, user: own && metric.split('.')[0] !== SYSTEM_NAMESPACE ? principal.userId : undefined }))
    : [own ? { user: principal.userId } : {}];
  const store = metricsStore(deps);
  const points: StoredPoint[] = [];
  for (const r of reads) {
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await store.listPoints({ ...r, from, to, limit: 1000, startKey, ascending: true });
      points.push(...page.items.filter((p) => !r.metric || p.metric === r.metric));
      startKey = page.lastKey;
      if (points.length > MAX_EXPORT_POINTS) {
        throw validationError([{ path: 'time_range', message: `more than ${MAX_EXPORT_POINTS} points; narrow time_range or metric_types` }]);
      }
    } while (startKey);
  }
  points.sort((a, b) => a.at.localeCompare(b.at) || a.metric.localeCompare(b.metric));
  return { points, from, to, scope: own ? ('own' as const) : ('all' as const) };
}

export async function exportJson(deps: Deps, principal: Principal, q: ExportQuery): Promise<ExportView> {
  const now = deps.clock.now().getTime();
  const { points, from, to, scope } = await collectPoints(deps, principal, q, now);
  const categories: Record<string, number> = {};
  for (const p of points) categories[p.metric.split('.')[0]] = (categories[p.metric.split('.')[0]] ?? 0) + 1;
  return {
    export_metadata: {
      generated_at: new Date(now).toISOString(),
      generated_by: principal.userId,
      format: q.format,
      time_range: q.time_range,
      start: from.toISOString(),
      end: to.toISOString(),
      metric_types: q.metric_types ?? null,
      scope,
      point_count: points.length,
      categories,
      columns: COLUMNS,
    },
    points: points.map((p) => ({ timestamp: p.at, metric_type: p.metric, value: p.value, labels: p.labels, point_id: p.point_id, recorded_at: p.recorded_at })),
  };
}

/** A file of the export: CSV text or the XLSX workbook's bytes. */
export async function exportFile(view: ExportView): Promise<ExportFile> {
  const m = view.export_metadata;
  const stamp = m.generated_at.replace(/[:.]/g, '-');
  if (m.format === 'csv') {
    const body = Buffer.from(
      stringify(
        view.points.map((p) => [p.timestamp, p.metric_type, p.value, JSON.stringify(p.labels), p.point_id, p.recorded_at]),
        { header: true, columns: COLUMNS },
      ),
    );
    return { contentType: 'text/csv; charset=utf-8', body, filename: `metrics-${stamp}.csv`, points: view.points.length, bytes: body.length };
  }
  const body = await xlsxOf(view);
  return {
    contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    body,
    filename: `metrics-${stamp}.xlsx`,
    points: view.points.length,
    bytes: body.length,
  };
}

/**
 * The workbook, written as a stream (exceljs' WorkbookWriter): rows are committed as they are added, so
 * memory holds the zip being built rather than a cell model of every point. Sheets are written one
 * after the other (the zip takes one entry at a time): the Metadata sheet, then one per namespace.
 */
async function xlsxOf(view: ExportView): Promise<Buffer> {
  const m = view.export_metadata;
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    sink.on('end', resolve);
    sink.on('error', reject);
  });
  // Loaded on the first XLSX export only: evaluated at init, exceljs added about 100 ms to every cold start of the function.
  const { default: ExcelJS } = await import('exceljs');
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: sink, useStyles: false, useSharedStrings: false });
  wb.created = new Date(m.generated_at);
  const meta = wb.addWorksheet('Metadata');
  meta.columns = [
    { header: 'key', key: 'key', width: 20 },
    { header: 'value', key: 'value', width: 60 },
  ];
  for (const [key, value] of Object.entries(m)) meta.addRow({ key, value: typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value ?? '') }).commit();
  meta.commit();
  const byCategory = new Map<string, ExportView['points']>();
  for (const p of view.points) {
    const category = p.metric_type.split('.')[0];
    const list = byCategory.get(category) ?? [];
    list.push(p);
    byCategory.set(category, list);
  }
  for (const category of Object.keys(m.categories).sort()) {
    const ws = wb.addWorksheet(category.slice(0, 31));
    ws.columns = COLUMNS.map((c) => ({ header: c, key: c, width: c === 'labels' ? 60 : 26 }));
    for (const p of byCategory.get(category) ?? []) ws.addRow({ ...p, labels: JSON.stringify(p.labels) }).commit();
    ws.commit();
  }
  await wb.commit();
  await ended;
  return Buffer.concat(chunks);
}

/** What an export answers: the JSON view, a file in the answer, or a link to the file in object storage. */
export type ExportOutcome = { points: number; bytes: number } & (
  | { kind: 'json'; view: ExportView }
  | { kind: 'file'; file: ExportFile; base64: boolean }
  | { kind: 'stored'; link: ExportLinkView }
);

/**
 * The export use case: the points, the file in the requested format, and where it goes. An answer
 * (the JSON envelope, the CSV text, the XLSX in base64 as API Gateway carries it) larger than
 * EXPORT_INLINE_MAX_BYTES is stored through the `files` port and answered with its link instead.
 */
export async function exportAnalytics(deps: Deps, principal: Principal, q: ExportQuery): Promise<ExportOutcome> {
  const view = await exportJson(deps, principal, q);
  const limit = deps.config.exportInlineMaxBytes;
  const points = view.points.length;
  let file: ExportFile;
  if (q.format === 'json') {
    const text = JSON.stringify(view);
    const bytes = Buffer.byteLength(text);
    // The envelope adds `{"data":…,"message":"…","timestamp":"…"}`: well under a kilobyte.
    if (bytes + 1024 <= limit) return { kind: 'json', view, points, bytes };
    file = { contentType: 'application/json', body: Buffer.from(text), filename: `metrics-${view.export_metadata.generated_at.replace(/[:.]/g, '-')}.json`, points, bytes };
  } else {
    file = await exportFile(view);
    const base64 = q.format === 'xlsx';
    const answerBytes = base64 ? Math.ceil(file.bytes / 3) * 4 : file.bytes;
    if (answerBytes <= limit) return { kind: 'file', file, base64, points, bytes: file.bytes };
  }
  const stored = await fileShare(deps).put({
    key: `exports/${newUlid()}/${file.filename}`,
    body: file.body,
    contentType: file.contentType,
    filename: file.filename,
    expiresInSeconds: SHARED_FILES.linkTtlSeconds,
  });
  return {
    kind: 'stored',
    points,
    bytes: file.bytes,
    link: {
      export_metadata: view.export_metadata,
      download: { url: stored.url, expires_at: stored.expiresAt.toISOString(), content_type: file.contentType, filename: file.filename, bytes: file.bytes },
    },
  };
}
