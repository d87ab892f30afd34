/**
 * In-process stand-in for the SQS task queue and its Lambda event source mapping, keeping the
 * semantics production code relies on:
 * - at-least-once: a received message is invisible for the visibility timeout and deleted only when
 *   its batch succeeds;
 * - partial batch failure (`batchItemFailures`, ReportBatchItemFailures): the failed messages become
 *   visible again when their visibility timeout ends (not immediately); a consumer that throws, or
 *   answers an unknown/empty item identifier, fails the whole batch;
 * - a consumer that never returns (a dead worker) loses its batch at the visibility timeout: the
 *   messages are delivered again with ApproximateReceiveCount incremented, and the stuck batch no
 *   longer holds a concurrency slot;
 * - with a dead-letter queue, a message received `maxReceiveCount` times moves to it on its next
 *   receive instead of being delivered (without one, as in SQS, it keeps being redelivered);
 * - DelaySeconds (clamped to 0..900 like the AWS adapter), batches of at most `batchSize`, at most
 *   `maxConcurrency` batches in flight.
 *
 * Messages are held in memory: a local restart loses queued messages. That is by design — tasks are
 * stored in DynamoDB first and the sweeper re-enqueues tasks stuck in pending/queued, exactly the path
 * that covers a lost send on AWS.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Clock, SendOptions, TaskQueue, WorkerScaling } from '../shared/platform/ports.js';
import { workerInvocationsFor } from '../shared/platform/infra.js';
import { systemClock } from '../shared/platform/ports.js';

export type QueueConsumer = (event: SQSEvent) => Promise<SQSBatchResponse | void>;

export interface LocalQueueOptions {
  name: string;
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
  batchSize: number;
  maxConcurrency: number;
  deadLetterQueue?: LocalQueue;
  consumer?: QueueConsumer;
  /** Time source for visibility, delays and timestamps (default: system clock). */
  clock?: Clock;
  /** How often the queue looks for visible messages and expired batches (default 50 ms). */
  pollIntervalMs?: number;
  /** Told about consumer failures (default: ignored; the failure is the redelivery). */
  onConsumerError?: (err: unknown, event: SQSEvent) => void;
}

export interface QueueStats {
  /** Ready to be received. */
  visible: number;
  /** Received and not yet deleted nor visible again. */
  inFlight: number;
  /** Sent with a delay that has not elapsed. */
  delayed: number;
  /** Messages in the dead-letter queue. */
  dlq: number;
  /** Batches being processed. */
  batchesInFlight: number;
}

export interface QueuedMessage {
  messageId: string;
  body: unknown;
  receiveCount: number;
  sentAt: Date;
  visibleAt: Date;
}

export interface StopOptions {
  /** Wait for the batches in flight to finish (default true). */
  drain?: boolean;
  /** Longest wait for the drain (default: the visibility timeout). */
  timeoutMs?: number;
}

interface StoredMessage {
  messageId: string;
  body: string;
  md5OfBody: string;
  sentAt: number;
  visibleAt: number;
  receiveCount: number;
  firstReceiveAt?: number;
  receiptHandle?: string;
}

interface Batch {
  handles: Map<string, string>;
  deadline: number;
  abandoned: boolean;
  done: Promise<void>;
}

/** The lowest maximum concurrency an SQS event source mapping takes. */
export const EVENT_SOURCE_MIN_CONCURRENCY = 2;

/** SQS's long-standing message size limit (256 KiB). */
export const MAX_MESSAGE_BYTES = 262144;

export class LocalQueue implements TaskQueue {
  readonly arn: string;
  private readonly messages = new Map<string, StoredMessage>();
  private readonly batches = new Set<Batch>();
  private readonly clock: Clock;
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private timer: NodeJS.Timeout | undefined;
  private wakeScheduled = false;

  private options: LocalQueueOptions;

  constructor(options: LocalQueueOptions) {
    for (const key of ['visibilityTimeoutSeconds', 'maxReceiveCount', 'batchSize', 'maxConcurrency'] as const) {
      const v = options[key];
      if (!Number.isFinite(v) || v <= 0) throw new Error(`LocalQueue ${options.name}: ${key} must be a positive number`);
    }
    this.clock = options.clock ?? systemClock;
    this.options = { ...options };
    this.arn = `arn:aws:sqs:local:000000000000:${options.name}`;
  }

  get name(): string {
    return this.options.name;
  }

  async send(body: Record<string, unknown>, options: SendOptions = {}): Promise<void> {
    if (this.state === 'stopped') throw new Error(`queue ${this.options.name} is stopped`);
    if (typeof body !== 'object' || body === null) throw new Error('message body must be a JSON object');
    const text = JSON.stringify(body);
    if (Buffer.byteLength(text) > MAX_MESSAGE_BYTES) throw new Error(`message exceeds ${MAX_MESSAGE_BYTES} bytes`);
    const now = this.now();
    const delay = clampDelay(options.delaySeconds);
    const messageId = randomUUID();
    this.messages.set(messageId, {
      messageId,
      body: text,
      md5OfBody: createHash('md5').update(text).digest('hex'),
      sentAt: now,
      visibleAt: now + delay * 1000,
      receiveCount: 0,
    });
    this.wake();
  }

  /** Starts delivering to the consumer (a queue without a consumer, like a DLQ, just holds messages). */
  start(): void {
    if (this.state === 'running') return;
    this.state = 'running';
    if (this.options.consumer) {
      this.timer = setInterval(() => this.pump(), this.options.pollIntervalMs ?? 50);
      this.timer.unref();
      this.wake();
    }
  }

  /**
   * Stops delivering and keeps taking messages, as disabling the event source mapping does
   * (`Enabled: false`); `start()` delivers again. Batches in flight go on.
   */
  pause(): void {
    if (this.state !== 'running') return;
    this.state = 'idle';
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Stops receiving and refuses new messages; by default waits for the batches in flight (see `busy`). */
  async stop(options: StopOptions = {}): Promise<void> {
    this.state = 'stopped';
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (options.drain === false) return;
    await this.settle(options.timeoutMs ?? this.options.visibilityTimeoutSeconds * 1000);
  }

  /** Messages in the batches being processed (a stop's drain waits for them). */
  busy(): number {
    return [...this.batches].filter((b) => !b.abandoned).reduce((n, b) => n + b.handles.size, 0);
  }

  /** Waits (at most `timeoutMs`) for the batches still being processed. */
  async settle(timeoutMs: number): Promise<void> {
    const pending = [...this.batches].filter((b) => !b.abandoned).map((b) => b.done);
    if (pending.length === 0) return;
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(pending),
      new Promise<void>((resolve) => {
        timeout = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timeout);
  }

  stats(): QueueStats {
    const now = this.now();
    let visible = 0;
    let inFlight = 0;
    let delayed = 0;
    for (const m of this.messages.values()) {
      if (m.visibleAt <= now) visible++;
      else if (m.receiveCount > 0) inFlight++;
      else delayed++;
    }
    return {
      visible,
      inFlight,
      delayed,
      dlq: this.options.deadLetterQueue?.size() ?? 0,
      batchesInFlight: [...this.batches].filter((b) => !b.abandoned).length,
    };
  }

  /**
   * Delivers what is due at the clock's current time, at once (the poll timer does the same every
   * `pollIntervalMs`): on a manual clock, a test advances the clock and then ticks.
   */
  tick(): void {
    this.pump();
  }

  /**
   * Changes how many batches are processed at once, as the event source mapping's maximum concurrency
   * does on AWS (concurrent invocations, each a batch; its floor is 2). Batches in flight finish; new
   * ones follow the new limit. Answers the concurrency applied.
   */
  setMaxConcurrency(invocations: number): number {
    if (!Number.isInteger(invocations) || invocations < 1) throw new Error(`LocalQueue ${this.options.name}: concurrency must be a positive integer`);
    this.options.maxConcurrency = Math.max(EVENT_SOURCE_MIN_CONCURRENCY, invocations);
    this.wake();
    return this.options.maxConcurrency;
  }

  /** Number of messages held (any state). */
  size(): number {
    return this.messages.size;
  }

  /** The messages held, oldest first (for tests and the operator's view). */
  peek(): QueuedMessage[] {
    return [...this.messages.values()].map((m) => ({
      messageId: m.messageId,
      body: JSON.parse(m.body) as unknown,
      receiveCount: m.receiveCount,
      sentAt: new Date(m.sentAt),
      visibleAt: new Date(m.visibleAt),
    }));
  }

  async check(): Promise<void> {
    if (this.state === 'stopped') throw new Error(`queue ${this.options.name} is stopped`);
  }

  /** Takes a message moved from a source queue's redrive (keeps its id, body and sent time). */
  private acceptDeadLetter(message: StoredMessage): void {
    const now = this.now();
    this.messages.set(message.messageId, {
      messageId: message.messageId,
      body: message.body,
      md5OfBody: message.md5OfBody,
      sentAt: message.sentAt,
      visibleAt: now,
      receiveCount: 0,
    });
    this.wake();
  }

  private now(): number {
    return this.clock.now().getTime();
  }

  private wake(): void {
    if (this.wakeScheduled || this.state !== 'running' || !this.options.consumer) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.pump();
    });
  }

  /** Expires stuck batches and dispatches visible messages while there is a free slot. */
  private pump(): void {
    if (this.state !== 'running' || !this.options.consumer) return;
    const now = this.now();
    for (const batch of this.batches) {
      if (now >= batch.deadline) {
        // Like a Lambda timing out: the slot is freed, the messages come back when their timeout ends.
        batch.abandoned = true;
        this.batches.delete(batch);
      }
    }
    while (this.batches.size < this.options.maxConcurrency) {
      const picked: StoredMessage[] = [];
      for (const m of this.messages.values()) {
        if (picked.length >= this.options.batchSize) break;
        if (m.visibleAt > now) continue;
        const dlq = this.options.deadLetterQueue;
        if (dlq && m.receiveCount >= this.options.maxReceiveCount) {
          this.messages.delete(m.messageId);
          dlq.acceptDeadLetter(m);
          continue;
        }
        picked.push(m);
      }
      if (picked.length === 0) return;
      this.dispatch(picked, now);
    }
  }

  private dispatch(picked: StoredMessage[], now: number): void {
    const visibilityMs = this.options.visibilityTimeoutSeconds * 1000;
    const records: SQSRecord[] = [];
    const handles = new Map<string, string>();
    for (const m of picked) {
      m.receiveCount++;
      m.firstReceiveAt ??= now;
      m.visibleAt = now + visibilityMs;
      m.receiptHandle = randomBytes(24).toString('base64');
      handles.set(m.messageId, m.receiptHandle);
      records.push({
        messageId: m.messageId,
        receiptHandle: m.receiptHandle,
        body: m.body,
        attributes: {
          ApproximateReceiveCount: String(m.receiveCount),
          SentTimestamp: String(m.sentAt),
          SenderId: 'local',
          ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt),
        },
        messageAttributes: {},
        md5OfBody: m.md5OfBody,
        eventSource: 'aws:sqs',
        eventSourceARN: this.arn,
        awsRegion: 'local',
      });
    }
    const event: SQSEvent = { Records: records };
    const batch: Batch = { handles, deadline: now + visibilityMs, abandoned: false, done: Promise.resolve() };
    this.batches.add(batch);
    batch.done = this.run(batch, event);
  }

  private async run(batch: Batch, event: SQSEvent): Promise<void> {
    let failed: Set<string>;
    try {
      const response = await this.options.consumer!(event);
      failed = failedIds(response, batch.handles);
    } catch (err) {
      this.options.onConsumerError?.(err, event);
      failed = new Set(batch.handles.keys());
    }
    if (batch.abandoned) return; // its messages were (or will be) delivered again
    this.batches.delete(batch);
    for (const [messageId, handle] of batch.handles) {
      if (failed.has(messageId)) continue; // visible again when its visibility timeout ends
      const current = this.messages.get(messageId);
      if (current && current.receiptHandle === handle) this.messages.delete(messageId);
    }
    this.wake();
  }
}

/** Ids to retry from a batch response; an empty or unknown identifier fails the whole batch (as Lambda does). */
function failedIds(response: SQSBatchResponse | void, handles: Map<string, string>): Set<string> {
  const failures = response && Array.isArray(response.batchItemFailures) ? response.batchItemFailures : [];
  const ids = new Set<string>();
  for (const f of failures) {
    const id = f?.itemIdentifier;
    if (typeof id !== 'string' || !handles.has(id)) return new Set(handles.keys());
    ids.add(id);
  }
  return ids;
}

function clampDelay(delay: number | undefined): number {
  if (delay === undefined || !Number.isFinite(delay)) return 0;
  return Math.min(900, Math.max(0, Math.floor(delay)));
}

/**
 * `WorkerScaling` locally: the in-process worker's queue runs `workerInvocationsFor(tasks)` batches at
 * once, as the SQS event source mapping's maximum concurrency does on AWS.
 */
export function queueWorkerScaling(queue: Pick<LocalQueue, 'setMaxConcurrency'>): WorkerScaling {
  return { setMaxConcurrency: async (tasks) => queue.setMaxConcurrency(workerInvocationsFor(tasks)) };
}
