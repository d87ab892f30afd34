import { createHash } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { LocalQueue, type LocalQueueOptions } from '../../local/queue.js';
import { ManualClock } from '../../shared/platform/local/clock.js';
import { waitUntil } from './support.js';

/**
 * The SQS + Lambda event-source semantics the local queue keeps. Time is the queue's own clock, a
 * manual one: visibility timeouts and delays pass when a test advances it (then `tick()` delivers what
 * is due at once), so no test waits on the wall clock and none can pass or fail by timing. Each test has
 * its own queue and clock, so they run concurrently.
 */
type Ctx = { onTestFinished: (fn: () => Promise<void> | void) => void };

const START = Date.parse('2025-01-01T00:00:00.000Z');

function makeQueue(ctx: Ctx, clock: ManualClock, options: Partial<LocalQueueOptions> & Pick<LocalQueueOptions, 'consumer'>): LocalQueue {
  const queue = new LocalQueue({
    name: 'semantics',
    visibilityTimeoutSeconds: 1,
    maxReceiveCount: 5,
    batchSize: 10,
    maxConcurrency: 1,
    pollIntervalMs: 20,
    clock,
    ...options,
  });
  ctx.onTestFinished(() => queue.stop({ drain: false }));
  return queue;
}

interface Delivery {
  at: number;
  record: SQSRecord;
}

function recorder(clock: ManualClock) {
  const deliveries: Delivery[] = [];
  const batches: SQSEvent[] = [];
  return {
    deliveries,
    batches,
    capture(event: SQSEvent) {
      batches.push(event);
      for (const record of event.Records) deliveries.push({ at: clock.now().getTime(), record });
    },
    of(n: number) {
      return deliveries.filter((d) => (JSON.parse(d.record.body) as { n: number }).n === n);
    },
  };
}

describe.concurrent('LocalQueue semantics', () => {
  it('delivers real SQSRecords and deletes messages of a successful batch', async (ctx) => {
    const clock = new ManualClock(START);
    const rec = recorder(clock);
    const queue = makeQueue(ctx, clock, { consumer: async (e) => rec.capture(e) });
    queue.start();
    clock.advance(5);
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
    expect(Number(r.attributes.SentTimestamp)).toBe(START + 5);
    expect(Number(r.attributes.ApproximateFirstReceiveTimestamp)).toBe(START + 5);
    await waitUntil(() => queue.size() === 0, 2000, 'deletion');
    // Well past the visibility timeout: a deleted message never comes back.
    clock.advance(1300);
    queue.tick();
    expect(rec.deliveries).toHaveLength(1);
  });

  it('partial batch failure: only the failed message comes back, after the visibility timeout', async (ctx) => {
    const clock = new ManualClock(START);
    const rec = recorder(clock);
    const queue = makeQueue(ctx, clock, {
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
    await waitUntil(() => queue.size() === 1, 2000, 'deletion of the successes');
    expect(queue.stats()).toMatchObject({ visible: 0, inFlight: 1 });
    clock.advance(999);
    queue.tick();
    expect(rec.of(2)).toHaveLength(1); // not redelivered before the timeout
    expect(queue.stats()).toMatchObject({ visible: 0, inFlight: 1 });
    clock.advance(1);
    queue.tick();
    expect(rec.of(2)).toHaveLength(2); // redelivered the moment it ends
    const [first, second] = rec.of(2);
    expect(second.at - first.at).toBe(1000);
    expect(second.record.attributes.ApproximateReceiveCount).toBe('2');
    expect(second.record.messageId).toBe(first.record.messageId);
    expect(second.record.receiptHandle).not.toBe(first.record.receiptHandle);
    expect(rec.of(1)).toHaveLength(1);
    expect(rec.of(3)).toHaveLength(1);
    await waitUntil(() => queue.size() === 0);
  });

  it('a consumer that throws fails the whole batch: all of it comes back after the timeout', async (ctx) => {
    const clock = new ManualClock(START);
    const rec = recorder(clock);
    let calls = 0;
    const queue = makeQueue(ctx, clock, {
      consumer: async (event) => {
        rec.capture(event);
        if (++calls === 1) throw new Error('worker crashed');
      },
    });
    await queue.send({ n: 1 });
    await queue.send({ n: 2 });
    queue.start();
    await waitUntil(() => rec.deliveries.length === 2 && queue.stats().batchesInFlight === 0, 2000, 'the failed batch');
    clock.advance(999);
    queue.tick();
    expect(rec.deliveries).toHaveLength(2);
    clock.advance(1);
    queue.tick();
    expect(rec.deliveries).toHaveLength(4);
    expect(rec.deliveries[3].at - rec.deliveries[0].at).toBe(1000);
    expect(rec.deliveries.slice(2).map((d) => d.record.attributes.ApproximateReceiveCount)).toEqual(['2', '2']);
    await waitUntil(() => queue.size() === 0);
  });

  it('an unknown item identifier in batchItemFailures fails the whole batch', async (ctx) => {
    const clock = new ManualClock(START);
    const rec = recorder(clock);
    let calls = 0;
    const queue = makeQueue(ctx, clock, {
      consumer: async (event) => {
        rec.capture(event);
        return ++calls === 1 ? { batchItemFailures: [{ itemIdentifier: 'not-in-this-batch' }] } : undefined;
      },
    });
    await queue.send({ n: 1 });
    await queue.send({ n: 2 });
    queue.start();
    await waitUntil(() => rec.deliveries.length === 2 && queue.stats().batchesInFlight === 0, 2000, 'the first batch');
    expect(queue.size()).toBe(2); // neither message was deleted
    clock.advance(1000);
    queue.tick();
    expect(rec.deliveries).toHaveLength(4);
    await waitUntil(() => queue.size() === 0);
  });

  it('a consumer that never returns (dead worker): redelivered after the timeout, slot freed', async (ctx) => {
    const clock = new ManualClock(START);
    const rec = recorder(clock);
    let calls = 0;
    const queue = makeQueue(ctx, clock, {
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
    clock.advance(999);
    queue.tick();
    expect(rec.deliveries).toHaveLength(1);
    expect(queue.stats().batchesInFlight).toBe(1);
    clock.advance(1);
    queue.tick(); // the hung batch times out, its slot is freed and the message goes out again
    expect(rec.deliveries).toHaveLength(2);
    expect(rec.deliveries[1].at - rec.deliveries[0].at).toBe(1000);
    expect(rec.deliveries[1].record.attributes.ApproximateReceiveCount).toBe('2');
    await waitUntil(() => queue.size() === 0);
    expect(queue.stats().batchesInFlight).toBe(0);
  });

  it('after maxReceiveCount receives the message moves to the dead-letter queue', async (ctx) => {
    const clock = new ManualClock(START);
    const rec = recorder(clock);
    const dlq = new LocalQueue({ name: 'semantics-dlq', visibilityTimeoutSeconds: 1, maxReceiveCount: 1, batchSize: 1, maxConcurrency: 1, clock });
    const queue = makeQueue(ctx, clock, {
      maxReceiveCount: 2,
      deadLetterQueue: dlq,
      consumer: async (event) => {
        rec.capture(event);
        return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
      },
    });
    await queue.send({ n: 1, task_id: 'poison' });
    queue.start();
    const settled = () => waitUntil(() => queue.stats().batchesInFlight === 0, 2000, 'the batch');
    await waitUntil(() => rec.deliveries.length === 1, 2000, 'the first receive');
    await settled();
    clock.advance(1000);
    queue.tick();
    expect(rec.deliveries).toHaveLength(2);
    await settled();
    expect(queue.stats().dlq).toBe(0);
    clock.advance(1000);
    queue.tick(); // received twice: moved to the dead-letter queue instead of a third delivery
    expect(queue.stats().dlq).toBe(1);
    expect(rec.deliveries.map((d) => d.record.attributes.ApproximateReceiveCount)).toEqual(['1', '2']);
    expect(queue.size()).toBe(0);
    const [dead] = dlq.peek();
    expect(dead.body).toEqual({ n: 1, task_id: 'poison' });
    expect(dead.messageId).toBe(rec.deliveries[0].record.messageId);
    clock.advance(5000);
    queue.tick();
    expect(rec.deliveries).toHaveLength(2);
  });

  it('never has more than maxConcurrency batches in flight, nor more than batchSize records per batch', async (ctx) => {
    let inFlight = 0;
    let peak = 0;
    let processed = 0;
    const sizes: number[] = [];
    const gates: Array<() => void> = [];
    const queue = makeQueue(ctx, new ManualClock(START), {
      maxConcurrency: 2,
      batchSize: 2,
      consumer: async (event) => {
        sizes.push(event.Records.length);
        peak = Math.max(peak, ++inFlight);
        await new Promise<void>((open) => gates.push(open)); // holds the batch until the test lets it end
        inFlight--;
        processed += event.Records.length;
      },
    });
    for (let n = 0; n < 10; n++) await queue.send({ n });
    queue.start();
    for (let round = 0; processed < 10; round++) {
      const busy = Math.min(2, Math.ceil((10 - processed) / 2));
      await waitUntil(() => inFlight === busy, 2000, `round ${round}`);
      queue.tick(); // messages are waiting, but both slots are taken
      expect(inFlight).toBe(busy);
      const before = processed;
      gates.splice(0).forEach((open) => open());
      await waitUntil(() => processed > before, 2000, `round ${round} to end`);
    }
    expect(peak).toBe(2);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2);
    expect(queue.size()).toBe(0);
  });

  it('fills slots as the event source does: a trickle gets one-message batches that hold their slot; a freed slot takes up to batchSize of the waiting messages', async (ctx) => {
    // The SQS event source polls the queue (the buffer every slot shares) and invokes with what one poll
    // returns, at most batchSize, while fewer than maxConcurrency invocations run; an invocation holds its
    // batch until it returns. Under a trickle that is one message per slot; once messages wait, a slot
    // that frees takes a full batch.
    const sizes: number[] = [];
    const gates: Array<() => void> = [];
    let inFlight = 0;
    const queue = makeQueue(ctx, new ManualClock(START), {
      maxConcurrency: 2,
      batchSize: 3,
      consumer: async (event) => {
        sizes.push(event.Records.length);
        inFlight++;
        await new Promise<void>((open) => gates.push(open));
        inFlight--;
      },
    });
    queue.start();
    for (let n = 0; n < 2; n++) {
      await queue.send({ n });
      await waitUntil(() => inFlight === n + 1, 2000, `message ${n} delivered alone`);
    }
    for (let n = 2; n < 7; n++) await queue.send({ n });
    queue.tick();
    expect(inFlight).toBe(2); // both slots are held: the five wait in the queue
    expect(queue.stats()).toMatchObject({ visible: 5, batchesInFlight: 2 });
    gates.shift()!();
    await waitUntil(() => sizes.length === 3, 2000, 'the freed slot takes a batch');
    expect(sizes).toEqual([1, 1, 3]);
    gates.shift()!();
    await waitUntil(() => sizes.length === 4, 2000, 'the next freed slot takes the rest');
    expect(sizes).toEqual([1, 1, 3, 2]);
    gates.splice(0).forEach((open) => open());
    await waitUntil(() => queue.size() === 0, 2000, 'all deleted');
  });

  it('stop({ drain: true }) waits for in-flight batches, then refuses new messages', async (ctx) => {
    let finished = false;
    let release: () => void = () => undefined;
    const queue = makeQueue(ctx, new ManualClock(START), {
      consumer: async () => {
        await new Promise<void>((open) => (release = open));
        finished = true;
      },
    });
    await queue.send({ n: 1 });
    queue.start();
    await waitUntil(() => queue.stats().batchesInFlight === 1);
    let stopped = false;
    const stopping = queue.stop({ drain: true, timeoutMs: 60_000 }).then(() => (stopped = true));
    await waitUntil(() => queue.stats().batchesInFlight === 1); // still in flight: stop() is waiting
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(finished).toBe(true);
    expect(queue.size()).toBe(0);
    await expect(queue.send({ n: 2 })).rejects.toThrow(/stopped/);
    await expect(queue.check()).rejects.toThrow(/stopped/);
  });

  it('honours DelaySeconds', async (ctx) => {
    const clock = new ManualClock(START);
    const rec = recorder(clock);
    const queue = makeQueue(ctx, clock, { consumer: async (e) => rec.capture(e) });
    queue.start();
    await queue.send({ n: 1 }, { delaySeconds: 1 });
    await queue.send({ n: 2 });
    await waitUntil(() => rec.of(2).length === 1);
    expect(queue.stats()).toMatchObject({ delayed: 1 });
    clock.advance(999);
    queue.tick();
    expect(rec.of(1)).toHaveLength(0);
    clock.advance(1);
    queue.tick();
    expect(rec.of(1)).toHaveLength(1);
    expect(rec.of(1)[0].at - START).toBe(1000);
  });

  it('messages sent before start() wait for it', async (ctx) => {
    const clock = new ManualClock(START);
    const rec = recorder(clock);
    const queue = makeQueue(ctx, clock, { consumer: async (e) => rec.capture(e) });
    await queue.send({ n: 1 });
    queue.tick();
    expect(rec.deliveries).toHaveLength(0);
    expect(queue.stats()).toMatchObject({ visible: 1 });
    queue.start();
    await waitUntil(() => rec.deliveries.length === 1);
  });
});
