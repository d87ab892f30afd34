/**
 * The audit retry queue of the local runtime: the `LocalQueue` stand-in for SQS (and its dead-letter
 * queue), made as durable as SQS is by a journal. Each entry sent is appended to
 * `<dataDir>/audit-retry.jsonl` before it is queued; a start sends the journal's entries again (their
 * writes are idempotent by audit id), and a stop that leaves both queues empty clears it. In memory
 * (no data directory) there is no journal: nothing survives the process anyway.
 */
import { appendFile, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { Clock, SendOptions, TaskQueue } from '../shared/platform/ports.js';
import { AUDIT_QUEUE } from '../shared/platform/infra.js';
import { LocalQueue } from './queue.js';

export interface LocalAuditQueueOptions {
  dataDir: string | null;
  clock: Clock;
  consumer: (event: SQSEvent) => Promise<SQSBatchResponse | void>;
  log: (line: string) => void;
}

export class LocalAuditQueue implements TaskQueue {
  readonly deadLetterQueue: LocalQueue;
  readonly queue: LocalQueue;
  private readonly journal: string | undefined;

  constructor(options: LocalAuditQueueOptions) {
    this.journal = options.dataDir ? path.join(options.dataDir, 'audit-retry.jsonl') : undefined;
    this.deadLetterQueue = new LocalQueue({
      name: 'supervisor-audit-retry-dlq',
      visibilityTimeoutSeconds: AUDIT_QUEUE.visibilityTimeoutSeconds,
      maxReceiveCount: AUDIT_QUEUE.maxReceiveCount,
      batchSize: AUDIT_QUEUE.batchSize,
      maxConcurrency: 1,
      clock: options.clock,
    });
    this.queue = new LocalQueue({
      name: 'supervisor-audit-retry',
      visibilityTimeoutSeconds: AUDIT_QUEUE.visibilityTimeoutSeconds,
      maxReceiveCount: AUDIT_QUEUE.maxReceiveCount,
      batchSize: AUDIT_QUEUE.batchSize,
      maxConcurrency: 1,
      deadLetterQueue: this.deadLetterQueue,
      clock: options.clock,
      consumer: options.consumer,
      onConsumerError: (err) => options.log(`audit retry batch failed: ${(err as Error).message}`),
    });
  }

  async send(body: Record<string, unknown>, options?: SendOptions): Promise<void> {
    if (this.journal) {
      await mkdir(path.dirname(this.journal), { recursive: true, mode: 0o700 });
      await appendFile(this.journal, `${JSON.stringify(body)}\n`, { mode: 0o600 });
    }
    await this.queue.send(body, options);
  }

  async check(): Promise<void> {
    await this.queue.check();
  }

  /** Starts delivering, after sending again what the journal holds from a previous run. Answers how many. */
  async start(): Promise<number> {
    let resent = 0;
    if (this.journal) {
      const text = await readFile(this.journal, 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return '';
        throw err;
      });
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        try {
          await this.queue.send(JSON.parse(line) as Record<string, unknown>);
          resent++;
        } catch {
          // A line cut short by a crash mid-append: its entry was never acknowledged as deferred.
        }
      }
    }
    this.queue.start();
    this.deadLetterQueue.start();
    return resent;
  }

  /** Stops; the journal is cleared only when nothing is left to write (otherwise the next start resends). */
  async stop(): Promise<void> {
    await this.queue.stop({ drain: true, timeoutMs: 5_000 });
    await this.deadLetterQueue.stop({ drain: false });
    if (this.journal && this.queue.size() === 0 && this.deadLetterQueue.size() === 0) await rm(this.journal, { force: true });
  }
}
