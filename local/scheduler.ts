/**
 * In-process stand-in for EventBridge Scheduler: named schedules (5-field cron + IANA time zone,
 * validated exactly as the AWS adapter validates them), each fired at the instants
 * `shared/schedules/cron.ts` computes — including EventBridge's DST rule (a non-existent local
 * time is skipped, a repeated one fires once).
 *
 * Firing delivers the schedule's payload to `fire`, after substituting EventBridge Scheduler's context
 * attributes (`<aws.scheduler.scheduled-time>`, `<aws.scheduler.schedule-arn>`,
 * `<aws.scheduler.execution-id>`, `<aws.scheduler.attempt-number>`) as the real service does in
 * Target.Input. A failing firing is retried twice, then recorded as dead-lettered: on AWS the target is
 * invoked asynchronously, so Lambda retries a function error twice (SCHEDULE_FIRE_ASYNC in
 * shared/platform/infra.ts) and then sends the event to the function's dead-letter queue. Firings missed while the process was not
 * running (or the clock jumped) are not replayed one by one: the schedule fires once and moves on.
 *
 * With a `ManualClock` no real timer is armed: call `tick()` after moving the clock. With the system
 * clock a timer is armed for the next due firing and re-armed after each.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, ScheduleDefinition, ScheduleService } from '../shared/platform/ports.js';
import { systemClock } from '../shared/platform/ports.js';
import { nextRun, parseCron, type ParsedCron } from '../shared/platform/cron.js';
import { SCHEDULE_FIRE_ASYNC } from '../shared/platform/infra.js';
import { assertScheduleDefinition, assertScheduleName } from '../shared/platform/service-rules.js';
import { isManualClock } from '../shared/platform/local/clock.js';

export { ManualClock } from '../shared/platform/local/clock.js';

export type FireFn = (payload: Record<string, unknown>) => Promise<void>;

export interface LocalSchedulerOptions {
  clock?: Clock;
  fire: FireFn;
  /** Retries after a failed firing (default SCHEDULE_FIRE_ASYNC.retryAttempts, Lambda's retries on AWS). */
  maxRetries?: number;
  /** Pause before retry n is `retryDelayMs * 2^(n-1)` (default 1000; tests use 0). */
  retryDelayMs?: number;
  /** Schedule group, used in `<aws.scheduler.schedule-arn>` (default `supervisor`). */
  groupName?: string;
  /** Told when a firing is dead-lettered. */
  onDeadLetter?: (entry: DeadLetter) => void;
}

export interface DeadLetter {
  name: string;
  scheduledTime: string;
  payload: Record<string, unknown>;
  attempts: number;
  error: string;
  at: string;
}

export interface FiringRecord {
  name: string;
  scheduledTime: string;
  attempts: number;
  ok: boolean;
}

interface Entry {
  definition: ScheduleDefinition;
  parsed: ParsedCron;
  next: Date | null;
}

/** setTimeout's ceiling (~24.8 days); longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class LocalScheduler implements ScheduleService {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly deadLetters: DeadLetter[] = [];
  private readonly history: FiringRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ticking: Promise<void> = Promise.resolve();

  constructor(private readonly options: LocalSchedulerOptions) {
    this.clock = options.clock ?? systemClock;
  }

  async upsert(schedule: ScheduleDefinition): Promise<void> {
    this.assertRunning();
    assertScheduleDefinition(schedule);
    const definition: ScheduleDefinition = { ...schedule, payload: JSON.parse(JSON.stringify(schedule.payload)) as Record<string, unknown> };
    const parsed = parseCron(definition.cron);
    this.entries.set(definition.name, {
      definition,
      parsed,
      next: definition.enabled ? nextRun(parsed, definition.timezone, this.clock.now()) : null,
    });
    this.arm();
  }

  /** Removing a schedule that does not exist is not an error. */
  async remove(name: string): Promise<void> {
    assertScheduleName(name);
    this.entries.delete(name);
    this.arm();
  }

  async check(): Promise<void> {
    this.assertRunning();
  }

  /** The next firing of `name`; null when disabled, undefined when there is no such schedule. */
  nextRunOf(name: string): Date | null | undefined {
    const entry = this.entries.get(name);
    return entry ? entry.next : undefined;
  }

  get(name: string): ScheduleDefinition | undefined {
    const entry = this.entries.get(name);
    return entry ? structuredClone(entry.definition) : undefined;
  }

  list(): ScheduleDefinition[] {
    return [...this.entries.values()].map((e) => structuredClone(e.definition));
  }

  deadLettered(): DeadLetter[] {
    return [...this.deadLetters];
  }

  /** Recent firings, oldest first (kept: the last 500). */
  firings(): FiringRecord[] {
    return [...this.history];
  }

  /**
   * Fires every enabled schedule due at the clock's current time (each once, whatever it missed) and
   * computes its next firing. Resolves when those deliveries, retries included, are done.
   */
  tick(): Promise<void> {
    const run = this.ticking.then(() => this.fireDue());
    this.ticking = run.catch(() => undefined);
    return run;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private assertRunning(): void {
    if (this.stopped) throw new Error('scheduler is stopped');
  }

  private async fireDue(): Promise<void> {
    if (this.stopped) return;
    const now = this.clock.now();
    const due: Array<{ entry: Entry; scheduled: Date }> = [];
    for (const entry of this.entries.values()) {
      if (!entry.definition.enabled || !entry.next || entry.next.getTime() > now.getTime()) continue;
      due.push({ entry, scheduled: entry.next });
      entry.next = nextRun(entry.parsed, entry.definition.timezone, now);
    }
    await Promise.all(due.map(({ entry, scheduled }) => this.deliver(entry.definition, scheduled)));
    this.arm();
  }

  private async deliver(definition: ScheduleDefinition, scheduled: Date): Promise<void> {
    const maxRetries = this.options.maxRetries ?? SCHEDULE_FIRE_ASYNC.retryAttempts;
    const retryDelayMs = this.options.retryDelayMs ?? 1000;
    const scheduledTime = scheduled.toISOString().replace(/\.\d{3}Z$/, 'Z');
    let lastError: unknown;
    for (let attempt = 1; attempt <= maxRetries + 1; attempt++) {
      if (attempt > 1 && retryDelayMs > 0) await sleep(retryDelayMs * 2 ** (attempt - 2));
      try {
        await this.options.fire(this.render(definition, scheduledTime, attempt));
        this.record({ name: definition.name, scheduledTime, attempts: attempt, ok: true });
        return;
      } catch (err) {
        lastError = err;
      }
    }
    this.record({ name: definition.name, scheduledTime, attempts: maxRetries + 1, ok: false });
    const entry: DeadLetter = {
      name: definition.name,
      scheduledTime,
      payload: definition.payload,
      attempts: maxRetries + 1,
      error: lastError instanceof Error ? lastError.message : String(lastError),
      at: this.clock.now().toISOString(),
    };
    this.deadLetters.push(entry);
    if (this.deadLetters.length > 500) this.deadLetters.shift();
    this.options.onDeadLetter?.(entry);
  }

  /** The payload with the context attributes replaced, as EventBridge Scheduler does in Target.Input. */
  private render(definition: ScheduleDefinition, scheduledTime: string, attempt: number): Record<string, unknown> {
    const group = this.options.groupName ?? 'supervisor';
    const values: Record<string, string> = {
      '<aws.scheduler.schedule-arn>': `arn:aws:scheduler:local:000000000000:schedule/${group}/${definition.name}`,
      '<aws.scheduler.scheduled-time>': scheduledTime,
      '<aws.scheduler.execution-id>': randomBytes(8).toString('hex'),
      '<aws.scheduler.attempt-number>': String(attempt),
    };
    const text = JSON.stringify(definition.payload).replace(/<aws\.scheduler\.[a-z-]+>/g, (m) => values[m] ?? m);
    return JSON.parse(text) as Record<string, unknown>;
  }

  private record(firing: FiringRecord): void {
    this.history.push(firing);
    if (this.history.length > 500) this.history.shift();
  }

  /** Arms one real timer for the earliest due firing (not with a manual clock). */
  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped || isManualClock(this.clock)) return;
    let earliest: number | undefined;
    for (const entry of this.entries.values()) {
      if (entry.definition.enabled && entry.next && (earliest === undefined || entry.next.getTime() < earliest)) {
        earliest = entry.next.getTime();
      }
    }
    if (earliest === undefined) return;
    const wait = Math.min(Math.max(0, earliest - this.clock.now().getTime()), MAX_TIMER_MS);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick().catch(() => undefined);
    }, wait);
    this.timer.unref();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
