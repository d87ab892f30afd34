/**
 * The cron semantics of schedules, in one place (pure: no AWS imports).
 *
 * The API takes classic 5-field cron (`minute hour day-of-month month day-of-week`) plus an IANA time
 * zone. This module
 * - validates an expression (`parseCron`), accepting exactly what both runtimes can run: anything
 *   EventBridge Scheduler cannot express is rejected here, so the API refuses it up front instead of
 *   the AWS adapter failing later;
 * - converts it to EventBridge Scheduler's 6-field `cron(…)` form (`toScheduleExpression`);
 * - computes the next firings in a time zone (`nextRuns`), used by the local scheduler and by the API
 *   to show `next_run_at`.
 *
 * Daylight saving time follows EventBridge Scheduler's documented rule. The AWS knowledge-center
 * article "How can I adjust my Amazon EventBridge schedule for daylight saving?"
 * (https://repost.aws/knowledge-center/eventbridge-scheduler-adjust-dst, AWS OFFICIAL) states: "When
 * the time shifts forward in Spring, your schedule invocation gets skipped if the cron expression falls
 * on a non-existent date and time. When the time shifts back in the Fall, your schedule runs only once
 * and doesn't repeat its invocation." (The user guide page
 * https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html has a "Daylight savings
 * time on EventBridge Scheduler" section on the same subject.)
 * croner (the library computing the instants) moves a non-existent local time forward instead (a daily
 * 02:30 America/New_York schedule would fire at 03:30 EDT on 2026-03-08), so `nextRuns` drops every
 * candidate whose wall-clock time in the zone does not match the expression — that is exactly the
 * skipped firing. For the repeated hour in the fall croner already answers the first occurrence (the
 * daylight-time one) once, which is the documented "runs only once"; which of the two instants AWS
 * picks is not documented, we use the first.
 */
import { Cron } from 'croner';

export class CronError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CronError';
  }
}

type FieldName = 'minute' | 'hour' | 'day-of-month' | 'month' | 'day-of-week';

interface FieldSpec {
  name: FieldName;
  min: number;
  max: number;
  names?: Record<string, number>;
}

const MONTH_NAMES: Record<string, number> = {
  JAN: 1, FEB: 2, MAR: 3, APR: 4, MAY: 5, JUN: 6, JUL: 7, AUG: 8, SEP: 9, OCT: 10, NOV: 11, DEC: 12,
};
const DAY_NAMES: Record<string, number> = { SUN: 0, MON: 1, TUE: 2, WED: 3, THU: 4, FRI: 5, SAT: 6 };

const FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES },
  // 7 is accepted as Sunday, as in most crons; it is folded to 0.
  { name: 'day-of-week', min: 0, max: 7, names: DAY_NAMES },
];

/** One comma-separated item of a field, numbers resolved (names → numbers), bounds checked. */
type CronItem =
  | { kind: 'any' }
  | { kind: 'value'; value: number }
  | { kind: 'range'; from: number; to: number }
  | { kind: 'step'; from: number; to: number; step: number; fromStar: boolean; openEnded: boolean };

export interface CronField {
  /** The token as written. */
  source: string;
  /** True when the token is `*` (or `?`): no restriction. */
  wildcard: boolean;
  /** Every value the field matches, ascending (day-of-week 0-6, Sunday = 0). */
  values: number[];
  items: CronItem[];
}

export interface ParsedCron {
  source: string;
  minute: CronField;
  hour: CronField;
  dayOfMonth: CronField;
  month: CronField;
  dayOfWeek: CronField;
  /** The expression in numeric form (what croner is given). */
  normalized: string;
}

function parseNumber(raw: string, spec: FieldSpec): number {
  const upper = raw.toUpperCase();
  if (spec.names && upper in spec.names) return spec.names[upper];
  if (!/^\d+$/.test(raw)) {
    if (/^[LW#]|[LW#]$|#/.test(upper)) {
      throw new CronError(`unsupported token '${raw}' in ${spec.name}: L, W and # are not supported`);
    }
    throw new CronError(`invalid value '${raw}' in ${spec.name}`);
  }
  const n = Number(raw);
  if (n < spec.min || n > spec.max) {
    throw new CronError(`${spec.name} value ${n} is out of range ${spec.min}-${spec.max}`);
  }
  return n;
}

function parseItem(raw: string, spec: FieldSpec): CronItem {
  if (raw === '') throw new CronError(`empty list item in ${spec.name}`);
  if (raw === '*' || raw === '?') {
    if (raw === '?' && spec.name !== 'day-of-month' && spec.name !== 'day-of-week') {
      throw new CronError(`'?' is only allowed in day-of-month and day-of-week, not in ${spec.name}`);
    }
    return { kind: 'any' };
  }
  const slash = raw.split('/');
  if (slash.length > 2) throw new CronError(`invalid step '${raw}' in ${spec.name}`);
  const [base, stepRaw] = slash;
  const parseRange = (text: string): { from: number; to: number } => {
    const dash = text.split('-');
    if (dash.length === 1) {
      const v = parseNumber(dash[0], spec);
      return { from: v, to: v };
    }
    if (dash.length !== 2) throw new CronError(`invalid range '${text}' in ${spec.name}`);
    const from = parseNumber(dash[0], spec);
    const to = parseNumber(dash[1], spec);
    if (from > to) throw new CronError(`range '${text}' in ${spec.name} goes backwards (${from} > ${to})`);
    return { from, to };
  };
  if (stepRaw === undefined) {
    const { from, to } = parseRange(base);
    return from === to ? { kind: 'value', value: from } : { kind: 'range', from, to };
  }
  if (!/^\d+$/.test(stepRaw)) throw new CronError(`invalid step '${stepRaw}' in ${spec.name}`);
  const step = Number(stepRaw);
  const span = spec.max - spec.min + 1;
  if (step < 1 || step > span) throw new CronError(`step ${step} in ${spec.name} must be between 1 and ${span}`);
  if (base === '*') return { kind: 'step', from: spec.min, to: spec.max, step, fromStar: true, openEnded: true };
  const { from, to } = parseRange(base);
  const openEnded = !base.includes('-');
  return { kind: 'step', from, to: openEnded ? spec.max : to, step, fromStar: false, openEnded };
}

function itemValues(item: CronItem, spec: FieldSpec): number[] {
  switch (item.kind) {
    case 'any': {
      const out: number[] = [];
      for (let v = spec.min; v <= spec.max; v++) out.push(v);
      return out;
    }
    case 'value':
      return [item.value];
    case 'range': {
      const out: number[] = [];
      for (let v = item.from; v <= item.to; v++) out.push(v);
      return out;
    }
    case 'step': {
      const out: number[] = [];
      for (let v = item.from; v <= item.to; v += item.step) out.push(v);
      return out;
    }
  }
}

function parseField(raw: string, spec: FieldSpec): CronField {
  const items = raw.split(',').map((part) => parseItem(part, spec));
  if (items.length > 1 && items.some((i) => i.kind === 'any')) {
    throw new CronError(`'*' cannot be combined with other values in ${spec.name}`);
  }
  const set = new Set<number>();
  for (const item of items) {
    for (const v of itemValues(item, spec)) set.add(spec.name === 'day-of-week' && v === 7 ? 0 : v);
  }
  return {
    source: raw,
    wildcard: items.length === 1 && items[0].kind === 'any',
    values: [...set].sort((a, b) => a - b),
    items,
  };
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Validates a 5-field cron expression and answers its parsed form. Throws `CronError` naming the
 * problem. Besides syntax it rejects what EventBridge Scheduler cannot run: both day-of-month and
 * day-of-week restricted (EventBridge needs one of them to be `?`), and dates that never occur.
 */
export function parseCron(expr: string): ParsedCron {
  if (typeof expr !== 'string') throw new CronError('cron expression must be a string');
  const trimmed = expr.trim();
  if (trimmed === '') throw new CronError('cron expression is empty');
  if (trimmed.startsWith('@')) throw new CronError(`macros like '${trimmed}' are not supported; write the 5 fields`);
  const parts = trimmed.split(/\s+/);
  if (parts.length !== 5) {
    throw new CronError(
      `cron expression must have 5 fields (minute hour day-of-month month day-of-week), got ${parts.length}`,
    );
  }
  const [minute, hour, dayOfMonth, month, dayOfWeek] = parts.map((p, i) => parseField(p, FIELDS[i]));
  if (!dayOfMonth.wildcard && !dayOfWeek.wildcard) {
    throw new CronError(
      "day-of-month and day-of-week cannot both be restricted (EventBridge Scheduler needs one of them to be '*'); " +
        "restrict one and write '*' in the other",
    );
  }
  if (!dayOfMonth.wildcard) {
    const possible = month.values.some((m) => dayOfMonth.values.some((d) => d <= DAYS_IN_MONTH[m - 1]));
    if (!possible) throw new CronError(`the expression never fires: no month in '${month.source}' has day '${dayOfMonth.source}'`);
  }
  const numeric = (f: CronField, star = '*') => (f.wildcard ? star : f.values.join(','));
  const normalized = [
    numeric(minute),
    numeric(hour),
    numeric(dayOfMonth),
    numeric(month),
    numeric(dayOfWeek),
  ].join(' ');
  return { source: trimmed, minute, hour, dayOfMonth, month, dayOfWeek, normalized };
}

/** True when `tz` is an IANA time zone name the runtime knows (Intl). */
export function isValidTimezone(tz: string): boolean {
  if (typeof tz !== 'string' || tz === '') return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

interface WallTime {
  minute: number;
  hour: number;
  day: number;
  month: number;
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

function wallTime(date: Date, tz: string): WallTime {
  let fmt = formatters.get(tz);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      weekday: 'short',
    });
    formatters.set(tz, fmt);
  }
  const out: Partial<WallTime> = {};
  for (const part of fmt.formatToParts(date)) {
    if (part.type === 'minute') out.minute = Number(part.value);
    else if (part.type === 'hour') out.hour = Number(part.value) % 24;
    else if (part.type === 'day') out.day = Number(part.value);
    else if (part.type === 'month') out.month = Number(part.value);
    else if (part.type === 'weekday') out.weekday = WEEKDAYS[part.value];
  }
  return out as WallTime;
}

/** Whether the wall-clock time of `date` in `tz` is one the expression names. */
export function matchesWallTime(parsed: ParsedCron, date: Date, tz: string): boolean {
  const w = wallTime(date, tz);
  return (
    parsed.minute.values.includes(w.minute) &&
    parsed.hour.values.includes(w.hour) &&
    parsed.month.values.includes(w.month) &&
    parsed.dayOfMonth.values.includes(w.day) &&
    parsed.dayOfWeek.values.includes(w.weekday)
  );
}

/**
 * The next `count` firings strictly after `after`, as UTC instants, of `expr` evaluated in time zone
 * `tz`, with EventBridge Scheduler's DST rule (see the module comment): a local time that does not
 * exist on a spring-forward day is skipped, a repeated local time on a fall-back day fires once.
 */
export function nextRuns(expr: string | ParsedCron, tz: string, after: Date, count: number): Date[] {
  const parsed = typeof expr === 'string' ? parseCron(expr) : expr;
  if (!isValidTimezone(tz)) throw new CronError(`unknown time zone '${tz}' (use an IANA name like Europe/Paris)`);
  if (!(after instanceof Date) || Number.isNaN(after.getTime())) throw new CronError('invalid start date');
  if (!Number.isInteger(count) || count < 0) throw new CronError('count must be a non-negative integer');
  const cron = new Cron(parsed.normalized, { timezone: tz });
  const runs: Date[] = [];
  let previous = after;
  // Every candidate croner returns is either a real firing or a DST-shifted one we drop; shifted ones are
  // at most one per transition, so this bound is never reached for a valid expression.
  let guard = count * 4 + 16;
  while (runs.length < count && guard-- > 0) {
    const next = cron.nextRun(previous);
    if (!next) break;
    if (next.getTime() <= previous.getTime()) {
      previous = new Date(previous.getTime() + 60_000);
      continue;
    }
    previous = next;
    if (matchesWallTime(parsed, next, tz)) runs.push(next);
  }
  return runs;
}

/** The next firing strictly after `after`, or null when there is none. */
export function nextRun(expr: string | ParsedCron, tz: string, after: Date): Date | null {
  return nextRuns(expr, tz, after, 1)[0] ?? null;
}

const SCHEDULE_EXPRESSION_MAX = 256;

function renderItem(item: CronItem, spec: FieldSpec): string {
  switch (item.kind) {
    case 'any':
      return '*';
    case 'value':
      return String(item.value);
    case 'range':
      return `${item.from}-${item.to}`;
    case 'step':
      // EventBridge takes `start/step` (start … max); a bounded range with a step is spelled out.
      if (item.openEnded) return `${item.fromStar ? spec.min : item.from}/${item.step}`;
      return itemValues(item, spec).join(',');
  }
}

/** Compresses sorted values into `a-b` runs: [1,2,3,5] → "1-3,5". */
function compress(values: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < values.length; ) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[j] + 1) j++;
    out.push(j - i >= 2 ? `${values[i]}-${values[j]}` : values.slice(i, j + 1).join(','));
    i = j + 1;
  }
  return out.join(',');
}

function renderField(field: CronField, spec: FieldSpec): string {
  if (field.wildcard) return '*';
  return field.items.map((i) => renderItem(i, spec)).join(',');
}

/**
 * Converts a 5-field expression to EventBridge Scheduler's `cron(minutes hours day-of-month month
 * day-of-week year)`: one of the day fields becomes `?`, day-of-week is renumbered from 0-6 (Sun-Sat)
 * to EventBridge's 1-7 (SUN-SAT), year is `*`. Throws `CronError` for what EventBridge cannot express.
 */
export function toScheduleExpression(expr: string): string {
  const p = parseCron(expr);
  let dom: string;
  let dow: string;
  if (p.dayOfWeek.wildcard) {
    dom = renderField(p.dayOfMonth, FIELDS[2]);
    dow = '?';
  } else {
    dom = '?';
    dow = compress(p.dayOfWeek.values.map((d) => d + 1));
  }
  const out = `cron(${renderField(p.minute, FIELDS[0])} ${renderField(p.hour, FIELDS[1])} ${dom} ${renderField(p.month, FIELDS[3])} ${dow} *)`;
  if (out.length > SCHEDULE_EXPRESSION_MAX) {
    throw new CronError(`the expression is too long for EventBridge Scheduler once converted (${out.length} > ${SCHEDULE_EXPRESSION_MAX} characters); use ranges or steps`);
  }
  return out;
}
