/**
 * At most `limit` calls in flight per key in this process; the others wait their turn, first come first
 * served. A Lambda instance runs one request at a time, so on AWS this never waits. The local runtime
 * runs every request in one process, where a burst on one hot item (a resource pool) would otherwise
 * reach DynamoDB Local all at once: it queues transactions on a locked item, each holding one of its
 * server threads, where DynamoDB answers a conflict at once.
 */
export class KeyedLimiter {
  private readonly queues = new Map<string, { running: number; waiting: (() => void)[] }>();

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error('limit must be a positive integer');
  }

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const q = this.queues.get(key) ?? { running: 0, waiting: [] };
    this.queues.set(key, q);
    if (q.running >= this.limit) await new Promise<void>((resolve) => q.waiting.push(resolve));
    else q.running++;
    try {
      return await fn();
    } finally {
      const next = q.waiting.shift();
      if (next) next();
      else if (--q.running === 0) this.queues.delete(key);
    }
  }
}
