import type { Clock } from '../ports.js';

/**
 * A clock that only moves when told to. Local stand-ins that take a clock (the scheduler, the queue)
 * recognise it by `manual === true` and then arm no real timers: the test or the runtime drives them
 * (`scheduler.tick()`).
 */
export class ManualClock implements Clock {
  readonly manual = true as const;
  private current: number;

  constructor(start: Date | string | number = Date.now()) {
    this.current = new Date(start).getTime();
    if (Number.isNaN(this.current)) throw new Error(`ManualClock: invalid start ${String(start)}`);
  }

  now(): Date {
    return new Date(this.current);
  }

  set(date: Date | string | number): void {
    const t = new Date(date).getTime();
    if (Number.isNaN(t)) throw new Error(`ManualClock: invalid date ${String(date)}`);
    this.current = t;
  }

  advance(ms: number): Date {
    if (!Number.isFinite(ms)) throw new Error(`ManualClock: invalid advance ${ms}`);
    this.current += ms;
    return this.now();
  }
}

export function isManualClock(clock: Clock): clock is ManualClock {
  return (clock as { manual?: unknown }).manual === true;
}
