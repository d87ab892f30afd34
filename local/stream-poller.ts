import { existsSync, readFileSync, renameSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type GetRecordsCommandOutput,
  type _Record as StreamRecord,
  type Shard,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { CHANGE_FEED, type FeedSettings } from '../shared/platform/infra.js';
import { localEndpoint } from '../shared/platform/aws/util.js';

/** Where the poller keeps its position: per shard, the last sequence number handled, and whether the shard is done. */
interface Checkpoints {
  streamArn?: string;
  shards: Record<string, { after?: string; done?: boolean }>;
}

export interface StreamPollerOptions {
  /** Names its checkpoint and failure files (`<name>.json`, `<name>-failures.jsonl`) and its log lines (default `change-feed`). */
  name?: string;
  /** Batch size, batching window, retries and local polling (default `CHANGE_FEED`; the live feed's are `LIVE_FEED`). */
  settings?: FeedSettings;
  endpoint: string;
  tableName: string;
  /** The change-feed function (the handler the event source mapping invokes on AWS). */
  handler: (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse>;
  /** Checkpoints and failures are kept here; null keeps the checkpoints in memory. */
  dataDir: string | null;
  log: (line: string) => void;
  idlePollMs?: number;
  /** How long to wait for a write when nothing is being written (default `CHANGE_FEED.localQuietPollMs`). */
  quietPollMs?: number;
  /**
   * Partition key prefixes of the records handed to the handler, as the event source mapping's filter
   * on AWS: the others are passed over (and checkpointed) without a call. All records when absent.
   */
  keyPrefixes?: readonly string[];
  /**
   * How long records are gathered into one batch before the handler gets them (default
   * `CHANGE_FEED.maxBatchingWindowSeconds`, the event source mapping's MaximumBatchingWindowInSeconds).
   */
  batchingWindowMs?: number;
}

/**
 * The local stand-in for Lambda's DynamoDB Streams event source mapping: it reads every shard of the
 * table's stream on DynamoDB Local (parents before children), hands batches of up to
 * `CHANGE_FEED.batchSize` records to the change-feed handler in the `DynamoDBStreamEvent` shape, and
 * checkpoints the last handled sequence number per shard (a file under the data directory, replaced
 * atomically), so a restart resumes after it. A reported failure is retried from the failed record;
 * after `CHANGE_FEED.retryAttempts` retries the record is written to `change-feed-failures.jsonl`
 * (the local on-failure destination) and skipped.
 *
 * As the event source mapping does with its batching window, records are gathered for up to
 * `CHANGE_FEED.maxBatchingWindowSeconds` after the first one (or until a batch is full) before the
 * handler runs: a busy table then makes a few large batches, not one small batch per write, and the
 * consumers' own writes (one ADD per rollup item per batch) stay few while requests compete for the
 * same DynamoDB Local. A stop cuts the window short and hands over what was gathered.
 */
/** GetRecords returns at most this many records a call. */
const GET_RECORDS_LIMIT = 1000;
/** Records read for one batch at most, wanted or not. */
const MAX_RECORDS_READ_AHEAD = 10_000;

export class StreamPoller {
  private readonly streams: DynamoDBStreamsClient;
  private readonly dynamo: DynamoDBClient;
  private checkpoints: Checkpoints;
  private readonly file?: string;
  private readonly failureFile?: string;
  private iterators = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private failures = new Map<string, number>();
  private arn?: string;
  private shardList?: { shards: Shard[]; at: number };
  /** Ends the batching window's wait early (stop). */
  private wakeUp?: () => void;
  /** Ends the quiet wait between polls (a write, stop). */
  private wakeQuiet?: () => void;
  /** A write was made since the last poll began. */
  private dirty = true;
  /** Records handed to the handler since start (tests and the bench read it). */
  delivered = 0;
  private readonly name: string;
  private readonly settings: FeedSettings;

  constructor(private readonly options: StreamPollerOptions) {
    const config = { ...localEndpoint(options.endpoint), maxAttempts: 3 };
    this.streams = new DynamoDBStreamsClient(config);
    this.dynamo = new DynamoDBClient(config);
    this.name = options.name ?? 'change-feed';
    this.settings = options.settings ?? CHANGE_FEED;
    this.file = options.dataDir ? path.join(options.dataDir, `${this.name}.json`) : undefined;
    this.failureFile = options.dataDir ? path.join(options.dataDir, `${this.name}-failures.jsonl`) : undefined;
    this.checkpoints = this.file && existsSync(this.file) ? (JSON.parse(readFileSync(this.file, 'utf8')) as Checkpoints) : { shards: {} };
  }

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      let moved = 0;
      this.dirty = false;
      this.running = this.pollOnce()
        .then((n) => void (moved = n))
        .catch((err) => this.options.log(`${this.name} poll failed: ${(err as Error).stack ?? err}`));
      await this.running;
      if (this.stopped) return;
      if (moved > 0) {
        this.timer = setTimeout(loop, 0);
        return;
      }
      // Nothing new: poll again soon while writes are being made, else wait for the next write.
      const idle = this.options.idlePollMs ?? this.settings.localIdlePollMs;
      const quiet = this.options.quietPollMs ?? this.settings.localQuietPollMs;
      this.timer = setTimeout(() => {
        if (this.dirty) void loop();
        else this.timer = this.quietWait(quiet, loop);
      }, idle);
    };
    void loop();
  }

  /** Waits up to `ms` for a write (or stop), then runs `next`. */
  private quietWait(ms: number, next: () => void): NodeJS.Timeout {
    const done = () => {
      clearTimeout(timer);
      this.wakeQuiet = undefined;
      next();
    };
    const timer = setTimeout(done, ms);
    this.wakeQuiet = done;
    return timer;
  }

  /**
   * The runtime made a write to the table: its change is on the stream, so the poller reads it now
   * instead of at the end of its quiet wait.
   */
  written(): void {
    this.dirty = true;
    this.wakeQuiet?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.wakeQuiet = undefined;
    this.wakeUp?.();
    await this.running;
    this.streams.destroy();
    this.dynamo.destroy();
  }

  /** Reads every shard once (until it has nothing new); returns how many records were handled. */
  async pollOnce(): Promise<number> {
    try {
      return await this.poll();
    } catch (err) {
      // The table or its stream may have changed: look them up again next time.
      this.arn = undefined;
      this.shardList = undefined;
      throw err;
    }
  }

  private async poll(): Promise<number> {
    const streamArn = (this.arn ??= await this.streamArn());
    if (this.checkpoints.streamArn !== streamArn) {
      // A new stream (the table was recreated): positions in the old one mean nothing.
      this.checkpoints = { streamArn, shards: {} };
      this.iterators.clear();
    }
    // The shard list changes rarely (a new shard every few hours, or when one closes, which re-reads it
    // at once): otherwise re-read it every minute.
    if (!this.shardList || Date.now() - this.shardList.at > 60_000) this.shardList = { shards: await this.shards(streamArn), at: Date.now() };
    const shards = this.shardList.shards;
    const known = new Set(shards.map((s) => s.ShardId!));
    let handled = 0;
    for (const shard of shards) {
      const id = shard.ShardId!;
      if (this.checkpoints.shards[id]?.done) continue;
      const parent = shard.ParentShardId;
      if (parent && known.has(parent) && !this.checkpoints.shards[parent]?.done) continue;
      handled += await this.readShard(streamArn, id);
      if (this.stopped) break;
    }
    // Forget shards the stream no longer lists (trimmed after 24 h).
    for (const id of Object.keys(this.checkpoints.shards)) if (!known.has(id)) delete this.checkpoints.shards[id];
    return handled;
  }

  private async streamArn(): Promise<string> {
    const out = await this.dynamo.send(new DescribeTableCommand({ TableName: this.options.tableName }));
    const arn = out.Table?.LatestStreamArn;
    if (!arn) throw new Error(`table ${this.options.tableName} has no stream`);
    return arn;
  }

  private async shards(streamArn: string): Promise<Shard[]> {
    const shards: Shard[] = [];
    let start: string | undefined;
    do {
      const out = await this.streams.send(new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: start }));
      shards.push(...(out.StreamDescription?.Shards ?? []));
      start = out.StreamDescription?.LastEvaluatedShardId;
    } while (start);
    return shards;
  }

  private async iterator(streamArn: string, shardId: string): Promise<string | undefined> {
    const cached = this.iterators.get(shardId);
    if (cached) return cached;
    const after = this.checkpoints.shards[shardId]?.after;
    const out = await this.streams.send(
      new GetShardIteratorCommand({
        StreamArn: streamArn,
        ShardId: shardId,
        ShardIteratorType: after ? 'AFTER_SEQUENCE_NUMBER' : 'TRIM_HORIZON',
        SequenceNumber: after,
      }),
    );
    return out.ShardIterator;
  }

  /**
   * Reads up to one batch from a shard: records are gathered until the batch is full, the shard has
   * closed, or the batching window (from the first record read) has passed.
   */
  private async gather(iterator: string): Promise<{ records: StreamRecord[]; next?: string }> {
    const records: StreamRecord[] = [];
    const windowMs = this.options.batchingWindowMs ?? this.settings.maxBatchingWindowSeconds * 1000;
    let windowEnds: number | undefined;
    let next: string | undefined = iterator;
    // As on AWS, the filter applies before batching: only wanted records fill a batch (the others read
    // along are bounded, so a burst of unwanted writes cannot hold a batch in memory without end).
    let wanted = 0;
    while (next) {
      const out: GetRecordsCommandOutput = await this.streams.send(new GetRecordsCommand({ ShardIterator: next, Limit: Math.min(GET_RECORDS_LIMIT, this.settings.batchSize - wanted) }));
      records.push(...(out.Records ?? []));
      for (const r of out.Records ?? []) if (this.wanted(r)) wanted++;
      next = out.NextShardIterator;
      if (!records.length || wanted >= this.settings.batchSize || records.length >= MAX_RECORDS_READ_AHEAD || this.stopped) break;
      windowEnds ??= Date.now() + windowMs;
      const left = windowEnds - Date.now();
      if (left <= 0) break;
      // The next read waits, whether this one found records or not: as the event source reads a shard a
      // few times a second (GetRecords allows 5 a second per shard), not back to back, which on DynamoDB
      // Local would take its one thread from every other request while writes stream in.
      await this.pause(Math.min(left, this.options.idlePollMs ?? this.settings.localIdlePollMs));
    }
    return { records, next };
  }

  /** Whether the handler wants a record (the event source mapping's filter on the key's prefix). */
  private wanted(r: StreamRecord): boolean {
    const prefixes = this.options.keyPrefixes;
    return !prefixes || prefixes.some((p) => String(r.dynamodb?.Keys?.pk?.S ?? '').startsWith(p));
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
  }

  /** Reads one shard until it has nothing new; batches go to the handler in order. */
  private async readShard(streamArn: string, shardId: string): Promise<number> {
    let handled = 0;
    for (;;) {
      const iterator = await this.iterator(streamArn, shardId);
      if (!iterator) return this.finish(shardId, handled);
      let out;
      try {
        const gathered = await this.gather(iterator);
        out = { Records: gathered.records, NextShardIterator: gathered.next };
      } catch (err) {
        // An expired or trimmed iterator: start again from the checkpoint.
        this.iterators.delete(shardId);
        if ((err as { name?: string }).name === 'ExpiredIteratorException') continue;
        throw err;
      }
      const records = out.Records;
      if (!records.length) {
        if (out.NextShardIterator) this.iterators.set(shardId, out.NextShardIterator);
        else return this.finish(shardId, handled);
        return handled;
      }
      const wanted = records.filter((r) => this.wanted(r));
      const result = wanted.length ? await this.options.handler({ Records: wanted.map((r) => toLambdaRecord(r, streamArn)) }) : { batchItemFailures: [] };
      const failed = result.batchItemFailures?.[0]?.itemIdentifier;
      const failedAt = failed ? records.findIndex((r) => r.dynamodb?.SequenceNumber === failed) : -1;
      const doneUpTo = failedAt === -1 ? records.length : failedAt;
      if (doneUpTo > 0) this.advance(shardId, records[doneUpTo - 1].dynamodb!.SequenceNumber!);
      handled += doneUpTo;
      this.delivered += doneUpTo;
      if (failedAt === -1) {
        this.iterators.set(shardId, out.NextShardIterator ?? '');
        if (!out.NextShardIterator) return this.finish(shardId, handled);
        continue;
      }
      // Retry from the failed record on the next poll; after the retries, set it aside and move on.
      this.iterators.delete(shardId);
      const tries = (this.failures.get(failed!) ?? 0) + 1;
      this.failures.set(failed!, tries);
      if (tries > this.settings.retryAttempts) {
        this.failures.delete(failed!);
        const record = records[failedAt];
        this.options.log(`${this.name} record ${failed} failed ${tries} times; written to the failure file and skipped`);
        if (this.failureFile) appendFileSync(this.failureFile, `${JSON.stringify({ at: new Date().toISOString(), shard_id: shardId, record })}\n`);
        this.advance(shardId, failed!);
      }
      return handled;
    }
  }

  private finish(shardId: string, handled: number): number {
    this.iterators.delete(shardId);
    this.shardList = undefined;
    this.checkpoints.shards[shardId] = { ...this.checkpoints.shards[shardId], done: true };
    this.save();
    return handled;
  }

  private advance(shardId: string, sequenceNumber: string): void {
    this.checkpoints.shards[shardId] = { after: sequenceNumber };
    this.save();
  }

  private save(): void {
    if (!this.file) return;
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.checkpoints), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

/** A record of the Streams API in the shape Lambda hands to a stream consumer. */
export function toLambdaRecord(r: StreamRecord, streamArn: string): DynamoDBRecord {
  const d = r.dynamodb ?? {};
  const created = d.ApproximateCreationDateTime;
  return {
    eventID: r.eventID,
    eventName: r.eventName as DynamoDBRecord['eventName'],
    eventVersion: r.eventVersion ?? '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: r.awsRegion ?? 'local',
    eventSourceARN: streamArn,
    ...(r.userIdentity ? { userIdentity: r.userIdentity } : {}),
    dynamodb: {
      ApproximateCreationDateTime: created instanceof Date ? Math.floor(created.getTime() / 1000) : (created as number | undefined),
      Keys: d.Keys as never,
      NewImage: d.NewImage as never,
      OldImage: d.OldImage as never,
      SequenceNumber: d.SequenceNumber,
      SizeBytes: d.SizeBytes,
      StreamViewType: d.StreamViewType,
    },
  };
}
