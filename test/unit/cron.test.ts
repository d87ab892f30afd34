import { describe, expect, it } from 'vitest';
import {
  CronError,
  isValidTimezone,
  nextRun,
  nextRuns,
  parseCron,
  toScheduleExpression,
} from '../../shared/platform/cron.js';

const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe('parseCron', () => {
  it.each([
    '* * * * *',
    '0 9 * * MON-FRI',
    '*/15 * * * *',
    '0 0 1 * *',
    '0 0 1,15 * *',
    '5-10/2 3 * JAN,jul *',
    '0 12 * * sun',
    '0 0 * * 7',
    '0 0 ? * MON',
    '0 0 1 * ?',
    '  30   2  *  *  *  ',
  ])('accepts %j', (expr) => {
    expect(() => parseCron(expr)).not.toThrow();
  });

  it('resolves names, ranges, lists and steps to values', () => {
    const p = parseCron('0,30 8-10 * JAN-MAR,DEC MON-FRI');
    expect(p.minute.values).toEqual([0, 30]);
    expect(p.hour.values).toEqual([8, 9, 10]);
    expect(p.month.values).toEqual([1, 2, 3, 12]);
    expect(p.dayOfWeek.values).toEqual([1, 2, 3, 4, 5]);
    expect(p.dayOfMonth.wildcard).toBe(true);
    expect(parseCron('*/20 * * * *').minute.values).toEqual([0, 20, 40]);
    expect(parseCron('10/20 * * * *').minute.values).toEqual([10, 30, 50]);
    expect(parseCron('0 0 * * 5-7').dayOfWeek.values).toEqual([0, 5, 6]);
  });

  it.each([
    ['', /empty/],
    ['* * * *', /5 fields.*got 4/],
    ['0 0 0 * * *', /5 fields.*got 6/],
    ['60 * * * *', /minute value 60 is out of range 0-59/],
    ['* 24 * * *', /hour value 24 is out of range 0-23/],
    ['* * 0 * *', /day-of-month value 0 is out of range 1-31/],
    ['* * * 13 *', /month value 13 is out of range 1-12/],
    ['* * * * 8', /day-of-week value 8 is out of range 0-7/],
    ['* * * FOO *', /invalid value 'FOO' in month/],
    ['10-5 * * * *', /goes backwards/],
    ['*/0 * * * *', /step 0 in minute/],
    ['*/61 * * * *', /step 61 in minute/],
    ['1,,2 * * * *', /empty list item/],
    ['*,5 * * * *', /cannot be combined/],
    ['? * * * *', /only allowed in day-of-month and day-of-week/],
    ['0 0 L * *', /L, W and # are not supported/],
    ['0 0 15W * *', /L, W and # are not supported/],
    ['0 0 * * MON#2', /L, W and # are not supported/],
    ['@daily', /macros/],
    ['0 0 1 * MON', /day-of-month and day-of-week cannot both be restricted/],
    ['0 0 */2 * 1-5', /cannot both be restricted/],
    ['0 0 30 2 *', /never fires/],
  ])('rejects %j with a message naming the problem', (expr, message) => {
    expect(() => parseCron(expr)).toThrow(CronError);
    expect(() => parseCron(expr)).toThrow(message);
  });

  it('accepts 29 February (fires in leap years)', () => {
    expect(nextRuns('0 0 29 2 *', 'UTC', new Date('2026-01-01T00:00:00Z'), 1)).toEqual([new Date('2028-02-29T00:00:00Z')]);
  });
});

describe('isValidTimezone', () => {
  it('knows IANA names and refuses the rest', () => {
    expect(isValidTimezone('UTC')).toBe(true);
    expect(isValidTimezone('America/New_York')).toBe(true);
    expect(isValidTimezone('Asia/Kolkata')).toBe(true);
    expect(isValidTimezone('Mars/Olympus_Mons')).toBe(false);
    expect(isValidTimezone('')).toBe(false);
  });
});

describe('nextRuns', () => {
  it('answers UTC instants strictly after the start', () => {
    expect(iso(nextRuns('0 0 * * *', 'UTC', new Date('2026-03-06T00:00:00Z'), 2))).toEqual([
      '2026-03-07T00:00:00.000Z',
      '2026-03-08T00:00:00.000Z',
    ]);
    expect(iso(nextRuns('*/15 * * * *', 'UTC', new Date('2026-03-06T10:07:31Z'), 3))).toEqual([
      '2026-03-06T10:15:00.000Z',
      '2026-03-06T10:30:00.000Z',
      '2026-03-06T10:45:00.000Z',
    ]);
  });

  it('evaluates the expression in the time zone', () => {
    // 09:00 on weekdays in Paris: CET (UTC+1) in winter; 2026-03-06 is a Friday.
    expect(iso(nextRuns('0 9 * * MON-FRI', 'Europe/Paris', new Date('2026-03-06T12:00:00Z'), 2))).toEqual([
      '2026-03-09T08:00:00.000Z',
      '2026-03-10T08:00:00.000Z',
    ]);
    // Half-hour offset zone.
    expect(iso(nextRuns('30 9 * * *', 'Asia/Kolkata', new Date('2026-01-01T00:00:00Z'), 1))).toEqual(['2026-01-01T04:00:00.000Z']);
    // Day-of-month / month in local terms: 00:30 on the 1st in Tokyo is the previous day in UTC.
    expect(iso(nextRuns('30 0 1 * *', 'Asia/Tokyo', new Date('2026-01-15T00:00:00Z'), 1))).toEqual(['2026-01-31T15:30:00.000Z']);
  });

  it('follows DST changes in the zone (08:00 New York is 13:00Z in winter, 12:00Z in summer)', () => {
    expect(iso(nextRuns('0 8 * * *', 'America/New_York', new Date('2026-03-07T00:00:00Z'), 3))).toEqual([
      '2026-03-07T13:00:00.000Z',
      '2026-03-08T12:00:00.000Z',
      '2026-03-09T12:00:00.000Z',
    ]);
  });

  describe('DST, as EventBridge Scheduler documents it', () => {
    it('spring forward: a daily 02:30 America/New_York schedule is skipped on 2026-03-08 (02:30 does not exist)', () => {
      expect(iso(nextRuns('30 2 * * *', 'America/New_York', new Date('2026-03-06T12:00:00Z'), 3))).toEqual([
        '2026-03-07T07:30:00.000Z', // 02:30 EST
        // 2026-03-08: clocks go 01:59:59 → 03:00:00, no 02:30, no firing (croner alone would say 03:30 EDT)
        '2026-03-09T06:30:00.000Z', // 02:30 EDT
        '2026-03-10T06:30:00.000Z',
      ]);
    });

    it('spring forward: every-30-minutes skips the missing hour without duplicates', () => {
      expect(iso(nextRuns('*/30 * * * *', 'America/New_York', new Date('2026-03-08T06:00:00Z'), 4))).toEqual([
        '2026-03-08T06:30:00.000Z', // 01:30 EST
        '2026-03-08T07:00:00.000Z', // 03:00 EDT
        '2026-03-08T07:30:00.000Z', // 03:30 EDT
        '2026-03-08T08:00:00.000Z',
      ]);
    });

    it('spring forward: an hour list keeps its valid hours (02:30 skipped, 03:30 kept)', () => {
      expect(iso(nextRuns('30 2,3 * * *', 'America/New_York', new Date('2026-03-08T05:00:00Z'), 2))).toEqual([
        '2026-03-08T07:30:00.000Z', // 03:30 EDT (the only one that day)
        '2026-03-09T06:30:00.000Z', // 02:30 EDT next day
      ]);
    });

    it('fall back: a daily 01:30 America/New_York schedule runs ONCE on 2026-11-01 (the first, EDT, 01:30)', () => {
      const runs = nextRuns('30 1 * * *', 'America/New_York', new Date('2026-10-31T12:00:00Z'), 3);
      expect(iso(runs)).toEqual([
        '2026-11-01T05:30:00.000Z', // 01:30 EDT; 01:30 EST (06:30Z) does not fire
        '2026-11-02T06:30:00.000Z', // 01:30 EST
        '2026-11-03T06:30:00.000Z',
      ]);
    });

    it('fall back: every-30-minutes does not repeat the repeated hour', () => {
      expect(iso(nextRuns('*/30 * * * *', 'America/New_York', new Date('2026-11-01T04:00:00Z'), 5))).toEqual([
        '2026-11-01T04:30:00.000Z', // 00:30 EDT
        '2026-11-01T05:00:00.000Z', // 01:00 EDT
        '2026-11-01T05:30:00.000Z', // 01:30 EDT
        '2026-11-01T07:00:00.000Z', // 02:00 EST (01:00/01:30 EST not repeated)
        '2026-11-01T07:30:00.000Z',
      ]);
    });

    it('Europe/London spring forward at 01:00: a 01:15 schedule is skipped on 2026-03-29', () => {
      expect(iso(nextRuns('15 1 * * *', 'Europe/London', new Date('2026-03-28T00:00:00Z'), 2))).toEqual([
        '2026-03-28T01:15:00.000Z', // GMT
        '2026-03-30T00:15:00.000Z', // BST
      ]);
    });
  });

  it('rejects an unknown time zone', () => {
    expect(() => nextRuns('* * * * *', 'Nowhere/Land', new Date(), 1)).toThrow(/unknown time zone 'Nowhere\/Land'/);
  });

  it('nextRun answers the first one', () => {
    expect(nextRun('0 12 * * *', 'UTC', new Date('2026-05-05T12:00:00Z'))).toEqual(new Date('2026-05-06T12:00:00Z'));
  });

  it('accepts a parsed expression', () => {
    expect(nextRuns(parseCron('0 * * * *'), 'UTC', new Date('2026-05-05T12:00:00Z'), 1)).toEqual([new Date('2026-05-05T13:00:00Z')]);
  });
});

describe('toScheduleExpression', () => {
  it.each([
    ['* * * * *', 'cron(* * * * ? *)'],
    ['*/15 * * * *', 'cron(0/15 * * * ? *)'],
    ['5/10 * * * *', 'cron(5/10 * * * ? *)'],
    ['0 */2 * * *', 'cron(0 0/2 * * ? *)'],
    ['0 9 * * MON-FRI', 'cron(0 9 ? * 2-6 *)'],
    ['0 9 * * 1-5', 'cron(0 9 ? * 2-6 *)'],
    ['0 0 * * SUN', 'cron(0 0 ? * 1 *)'],
    ['0 0 * * 0', 'cron(0 0 ? * 1 *)'],
    ['0 0 * * 7', 'cron(0 0 ? * 1 *)'],
    ['0 0 * * 6', 'cron(0 0 ? * 7 *)'],
    ['0 0 * * SAT,SUN', 'cron(0 0 ? * 1,7 *)'],
    ['0 0 * * 5-7', 'cron(0 0 ? * 1,6,7 *)'],
    ['0 0 * * */2', 'cron(0 0 ? * 1,3,5,7 *)'],
    ['0 0 1 * *', 'cron(0 0 1 * ? *)'],
    ['0 0 1,15 * ?', 'cron(0 0 1,15 * ? *)'],
    ['0 0 */2 * *', 'cron(0 0 1/2 * ? *)'],
    ['30 2 * JAN-MAR *', 'cron(30 2 * 1-3 ? *)'],
    ['0 0 1 */3 *', 'cron(0 0 1 1/3 ? *)'],
    ['0 8-18/2 * * *', 'cron(0 8,10,12,14,16,18 * * ? *)'],
    ['0 0 ? * MON', 'cron(0 0 ? * 2 *)'],
  ])('%j → %s', (expr, expected) => {
    expect(toScheduleExpression(expr)).toBe(expected);
  });

  it('rejects what EventBridge cannot express, with a clear message', () => {
    expect(() => toScheduleExpression('0 0 1 * MON')).toThrow(/cannot both be restricted/);
    expect(() => toScheduleExpression('0 0 L * *')).toThrow(CronError);
  });

  it('keeps the expression within EventBridge length limits', () => {
    const long = `${Array.from({ length: 30 }, (_, i) => i * 2).join(',')} ${Array.from({ length: 24 }, (_, i) => i).join(',')} * * *`;
    const out = toScheduleExpression(long);
    expect(out.length).toBeLessThanOrEqual(256);
  });
});
