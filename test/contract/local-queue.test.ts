import { createHash } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { LocalQueue, type LocalQueueOptions } from '../../local/queue.js';
import { sleep, waitUntil } from './support.js';

/**
 * The SQS + Lambda event-source semantics the local queue keeps (visibility timeout 1 s to stay fast).
 * Each test has its own queue, so they run concurrently.
 */
type Ctx = { onTestFinished: (fn: () => Promise<void> | void) => void };

function makeQueue(ctx: Ctx, options: Partial<LocalQueueOptions> & Pick<LocalQueueOptions, 'consumer'>): LocalQueue {
  const queue = new LocalQueue({
    name: 'semantics',
    visibilityTimeoutSeconds: 1,
    maxReceiveCount: 5,
    batchSize: 10,
    maxConcurrency: 1,
    pollIntervalMs: 20,
    ...options,
  });
  ctx.onTestFinished(() => queue.stop({ drain: false }));
  return queue;
}

interface Delivery {
  at: number;
  record: SQSRecord;
}

function recorder() {
  const deliveries: Delivery[] = [];
  const batches: SQSEvent[] = [];
  return {
    deliveries,
    batches,
    capture(event: SQSEvent) {
      batches.push(event);
      for (const record of event.Records) deliveries.push({ at: Date.now(), record });
    },
    of(n: number) {
      return deliveries.filter((d) => (JSON.parse(d.record.body) as { n: number }).n === n);
    },
  };
}

describe.concurrent('LocalQueue semantics', () => {
  it('delivers real SQSRecords and deletes messages of a successful batch', async (ctx) => {
    const rec = recorder();
    const queue = makeQueue(ctx, { consumer: async (e) => rec.capture(e) });
    queue.start();
    const before = Date.now();
    await queue.send({ n: 1, task_id: 't-1' });
    await waitUntil(() => rec.deliveries.length === 1);
    const r = rec.deliveries[0].record;
    expect(r.body).toBe('{"n":1,"task_id":"t-1"}');
    expect(r.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.receiptHandle.length).toBeGreaterThan(10);
    expect(r.md5OfBody).toBe(createHash('md5').update(r.body).digest('hex'));
    expect(r.eventSource).toBe('aws:sqs');
    expect(r.eventSourceARN).toBe('arn:aws:sqs:local:000000000000:semantics');
    expect(r.attributes.ApproximateReceiveCount).toBe('1');
    expect(Number(r.attributes.SentTimestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(r.attributes.ApproximateFirstReceiveTimestamp)).toBeGreaterThanOrEqual(Number(r.attributes.SentTimestamp));
    await waitUntil(() => queue.size() === 0, 2000, 'deletion');
    await sleep(1300);
    expect(rec.deliveries).toHaveLength(1);
  });

  it('partial batch failure: only the failed message comes back, after the visibility timeout', async (ctx) => {
    const rec = recorder();
    const queue = makeQueue(ctx, {
      consumer: async (event): Promise<SQSBatchResponse> => {
        rec.capture(event);
        const failures = event.Records.filter((r) => (JSON.parse(r.body) as { n: number }).n === 2 && r.attributes.ApproximateReceiveCount === '1');
        return { batchItemFailures: failures.map((r) => ({ itemIdentifier: r.messageId })) };
      },
    });
    await queue.send({ n: 1 });
    await queue.send({ n: 2 });
    await queue.send({ n: 3 });
    queue.start();
    await waitUntil(() => rec.deliveries.length === 3);
    expect(rec.batches[0].Records).toHaveLength(3);
    expect(queue.stats()).toMatchObject({ visible: 0, inFlight: 1 });
    await sleep(600);
    expect(rec.of(2)).toHaveLength(1); // not redelivered before the timeout
    await waitUntil(() => rec.of(2).length === 2, 2000, 'redelivery');
    const [first, second] = rec.of(2);
    expect(second.at - first.at).toBeGreaterThanOrEqual(950);
    expect(second.record.attributes.ApproximateReceiveCount).toBe('2');
    expect(second.record.messageId).toBe(first.record.messageId);
    expect(second.record.receiptHandle).not.toBe(first.record.receiptHandle);
    expect(rec.of(1)).toHaveLength(1);
    expect(rec.of(3)).toHaveLength(1);
    await waitUntil(() => queue.size() === 0);
  });

  it('a consumer that throws fails the whole batch: all of it comes back after the timeout', async (ctx) => {
    const rec = recorder();
    let calls = 0;
    const queue = makeQueue(ctx, {
      consumer: async (event) => {
        rec.capture(event);
        if (++calls === 1) throw new Error('worker crashed');
      },
    });
    await queue.send({ n: 1 });
    await queue.send({ n: 2 });
    queue.start();
    await waitUntil(() => rec.deliveries.length === 4, 3000, 'redelivery of both');
    expect(rec.deliveries[3].at - rec.deliveries[0].at).toBeGreaterThanOrEqual(950);
    expect(rec.deliveries.slice(2).map((d) => d.record.attributes.ApproximateReceiveCount)).toEqual(['2', '2']);
    await waitUntil(() => queue.size() === 0);
  });

  it('an unknown item identifier in batchItemFailures fails the whole batch', async (ctx) => {
    const rec = recorder();
    let calls = 0;
    const queue = makeQueue(ctx, {
      consumer: async (event) => {
        rec.capture(event);
        return ++calls === 1 ? { batchItemFailures: [{ itemIdentifier: 'not-in-this-batch' }] } : undefined;
      },
    });
    await queue.send({ n: 1 });
    await queue.send({ n: 2 });
    queue.start();
    await waitUntil(() => rec.deliveries.length === 4, 3000);
    await waitUntil(() => queue.size() === 0);
  });

  it('a consumer that never returns (dead worker): redelivered after the timeout, slot freed', async (ctx) => {
    const rec = recorder();
    let calls = 0;
    const queue = makeQueue(ctx, {
      maxConcurrency: 1,
      consumer: async (event) => {
        rec.capture(event);
        if (++calls === 1) await new Promise(() => undefined); // hangs forever
      },
    });
    await queue.send({ n: 1 });
    queue.start();
    await waitUntil(() => rec.deliveries.length === 1);
    expect(queue.stats().batchesInFlight).toBe(1);
    await waitUntil(() => rec.deliveries.length === 2, 3000, 'redelivery');
    expect(rec.deliveries[1].at - rec.deliveries[0].at).toBeGreaterThanOrEqual(950);
    expect(rec.deliveries[1].record.attributes.ApproximateReceiveCount).toBe('2');
    await waitUntil(() => queue.size() === 0);
    expect(queue.stats().batchesInFlight).toBe(0);
  });

  it('after maxReceiveCount receives the message moves to the dead-letter queue', async (ctx) => {
    const rec = recorder();
    const dlq = new LocalQueue({ name: 'semantics-dlq', visibilityTimeoutSeconds: 1, maxReceiveCount: 1, batchSize: 1, maxConcurrency: 1 });
    const queue = makeQueue(ctx, {
      maxReceiveCount: 2,
      deadLetterQueue: dlq,
      consumer: async (event) => {
        rec.capture(event);
        return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
      },
    });
    await queue.send({ n: 1, task_id: 'poison' });
    queue.start();
    await waitUntil(() => queue.stats().dlq === 1, 4000, 'dead-lettering');
    expect(rec.deliveries.map((d) => d.record.attributes.ApproximateReceiveCount)).toEqual(['1', '2']);
    expect(queue.size()).toBe(0);
    const [dead] = dlq.peek();
    expect(dead.body).toEqual({ n: 1, task_id: 'poison' });
    expect(dead.messageId).toBe(rec.deliveries[0].record.messageId);
    await sleep(300);
    expect(rec.deliveries).toHaveLength(2);
  });

  it('never has more than maxConcurrency batches in flight, nor more than batchSize records per batch', async (ctx) => {
    let inFlight = 0;
    let peak = 0;
    let processed = 0;
    const sizes: number[] = [];
    const queue = makeQueue(ctx, {
      maxConcurrency: 2,
      batchSize: 2,
      consumer: async (event) => {
        sizes.push(event.Records.length);
        peak = Math.max(peak, ++inFlight);
        await sleep(80);
        inFlight--;
        processed += event.Records.length;
      },
    });
    for (let n = 0; n < 10; n++) await queue.send({ n });
    queue.start();
    await waitUntil(() => processed === 10, 3000);
    expect(peak).toBe(2);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2);
    expect(queue.size()).toBe(0);
  });

  it('stop({ drain: true }) waits for in-flight batches, then refuses new messages', async (ctx) => {
    let finished = false;
    const queue = makeQueue(ctx, {
      consumer: async () => {
        await sleep(300);
        finished = true;
      },
    });
    await queue.send({ n: 1 });
    queue.start();
    await waitUntil(() => queue.stats().batchesInFlight === 1);
    await queue.stop({ drain: true });
    expect(finished).toBe(true);
    expect(queue.size()).toBe(0);
    await expect(queue.send({ n: 2 })).rejects.toThrow(/stopped/);
    await expect(queue.check()).rejects.toThrow(/stopped/);
  });

  it('honours DelaySeconds', async (ctx) => {
    const rec = recorder();
    const queue = makeQueue(ctx, { consumer: async (e) => rec.capture(e) });
    queue.start();
    const sentAt = Date.now();
    await queue.send({ n: 1 }, { delaySeconds: 1 });
    await queue.send({ n: 2 });
    await waitUntil(() => rec.of(2).length === 1);
    expect(queue.stats()).toMatchObject({ delayed: 1 });
    await waitUntil(() => rec.of(1).length === 1, 3000);
    expect(rec.of(1)[0].at - sentAt).toBeGreaterThanOrEqual(950);
  });

  it('messages sent before start() wait for it', async (ctx) => {
    const rec = recorder();
    const queue = makeQueue(ctx, { consumer: async (e) => rec.capture(e) });
    await queue.send({ n: 1 });
    await sleep(100);
    expect(rec.deliveries).toHaveLength(0);
    expect(queue.stats()).toMatchObject({ visible: 1 });
    queue.start();
    await waitUntil(() => rec.deliveries.length === 1);
  });
});
