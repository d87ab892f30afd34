import { AsyncResource } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Clock, EventBus } from '../shared/platform/ports.js';
import { systemClock } from '../shared/platform/ports.js';

export interface LocalEvent {
  id: string;
  source: 'supervisor';
  detailType: string;
  detail: Record<string, unknown>;
  time: string;
}

export type EventListener = (event: LocalEvent) => void | Promise<void>;

export interface LocalEventBusOptions {
  /** How many recent events to keep (default 200). */
  keep?: number;
  clock?: Clock;
  /** Called when a listener throws (default: ignored; a listener failure never fails `publish`). */
  onListenerError?: (err: unknown, event: LocalEvent) => void;
}

/** EventBridge's PutEvents limit on one entry (256 KiB). */
const MAX_ENTRY_BYTES = 262144;

/**
 * In-process stand-in for the EventBridge bus: keeps the last N events and delivers each to the
 * subscribers asynchronously (like EventBridge, delivery is decoupled from `publish`).
 */
export class LocalEventBus implements EventBus {
  private readonly recent: LocalEvent[] = [];
  private readonly listeners = new Set<EventListener>();
  private readonly keep: number;
  private readonly clock: Clock;

  constructor(private readonly options: LocalEventBusOptions = {}) {
    this.keep = options.keep ?? 200;
    this.clock = options.clock ?? systemClock;
  }

  async publish(detailType: string, detail: Record<string, unknown>): Promise<void> {
    if (typeof detailType !== 'string' || detailType.length < 1 || detailType.length > 128) {
      throw new Error('detail type must be 1-128 characters');
    }
    if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) throw new Error('detail must be a JSON object');
    const json = JSON.stringify(detail);
    if (Buffer.byteLength(json) + Buffer.byteLength(detailType) + 'supervisor'.length > MAX_ENTRY_BYTES) {
      throw new Error('event exceeds the 256 KiB EventBridge entry limit');
    }
    const event: LocalEvent = {
      id: randomUUID(),
      source: 'supervisor',
      detailType,
      detail: JSON.parse(json) as Record<string, unknown>,
      time: this.clock.now().toISOString(),
    };
    this.recent.push(event);
    if (this.recent.length > this.keep) this.recent.splice(0, this.recent.length - this.keep);
    for (const listener of this.listeners) {
      queueMicrotask(() => {
        Promise.resolve()
          .then(() => listener(event))
          .catch((err: unknown) => this.options.onListenerError?.(err, event));
      });
    }
  }

  /**
   * Adds a listener; answers the function that removes it. The listener runs in the context it was
   * added in, not in the publisher's: on AWS a rule's target is an invocation of its own, so its work
   * and its log lines are not the publishing request's.
   */
  subscribe(listener: EventListener): () => void {
    const bound = AsyncResource.bind(listener);
    this.listeners.add(bound);
    return () => {
      this.listeners.delete(bound);
    };
  }

  /** The kept events, oldest first. */
  events(): LocalEvent[] {
    return [...this.recent];
  }

  async check(): Promise<void> {}
}
