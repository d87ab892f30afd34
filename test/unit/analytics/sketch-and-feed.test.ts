import { describe, expect, it } from 'vitest';
import { sketchKeyOf, sketchQuantile, mergeSketch, type SketchBins } from '../../../shared/platform/histogram.js';
import { aggregateOf, addValue, emptyRollup, mergeRollup, seriesOf } from '../../../shared/platform/metrics/store.js';
import { handleStreamEvent, type ChangeConsumer } from '../../../shared/platform/feed.js';
import { pointsOfChange } from '../../../shared/analytics/derive.js';
import type { Deps } from '../../../shared/platform/runtime.js';
import type { DynamoDBStreamEvent } from 'aws-lambda';

describe('sketch', () => {
  it('answers quantiles within 1 % of the exact nearest rank, merged or not', () => {
    const values = Array.from({ length: 5000 }, (_, i) => Math.exp((i % 997) / 90) * (1 + (i % 7)));
    const a: SketchBins = {};
    const b: SketchBins = {};
    values.forEach((v, i) => {
      const into = i % 2 ? a : b;
      into[sketchKeyOf(v)] = (into[sketchKeyOf(v)] ?? 0) + 1;
    });
    const merged = mergeSketch({ ...a }, b);
    const sorted = [...values].sort((x, y) => x - y);
    for (const q of [0.5, 0.9, 0.95, 0.99]) {
      const exact = sorted[Math.ceil(q * sorted.length) - 1];
      expect(Math.abs(sketchQuantile(merged, q)! - exact) / exact).toBeLessThanOrEqual(0.0101);
    }
  });

  it('clamps a quantile to the stored min and max only within the sketch\'s accuracy: a bound further off is not settled yet', () => {
    const bins: SketchBins = {};
    for (const v of [100, 200, 300, 494, 500]) bins[sketchKeyOf(v)] = (bins[sketchKeyOf(v)] ?? 0) + 1;
    const top = sketchQuantile(bins, 1)!;
    expect(Math.abs(top - 500) / 500).toBeLessThanOrEqual(0.01);
    // The true extremes correct the bins' representative values.
    expect(sketchQuantile(bins, 1, { min: 100, max: 500 })).toBe(Math.min(top, 500));
    expect(sketchQuantile(bins, 0.01, { min: 100, max: 500 })).toBe(Math.max(sketchQuantile(bins, 0.01)!, 100));
    // A max written before the last points' bounds were settled does not pull the answer down to it.
    expect(sketchQuantile(bins, 1, { min: 100, max: 339 })).toBe(top);
    expect(sketchQuantile(bins, 0.01, { min: 150, max: 500 })).toBe(sketchQuantile(bins, 0.01));
  });

  it('rollups merge count, sum, min, max; zero and negatives have bins', () => {
    const r = emptyRollup();
    for (const v of [0, -3, 5, 10]) addValue(r, v);
    const other = addValue(emptyRollup(), 100);
    mergeRollup(r, other);
    expect([r.count, r.sum, r.min, r.max]).toEqual([5, 112, -3, 100]);
    expect(aggregateOf(r, 'avg', 60)).toBeCloseTo(22.4);
    expect(aggregateOf(r, 'rate', 10)).toBe(0.5);
    expect(aggregateOf(r, 'p50', 60)).toBeCloseTo(5, 1);
    expect(aggregateOf(emptyRollup(), 'p95', 60)).toBeNull();
  });

  it('a point is rolled up into the whole metric, each label and its full label set', () => {
    expect(seriesOf({ status: 'failed', provider: 'x' })).toEqual(['*', 'L:provider=x', 'L:status=failed', 'F:provider=x,status=failed']);
    expect(seriesOf({})).toEqual(['*', 'F:']);
  });
});

describe('change feed', () => {
  const record = (seq: string) => ({
    eventID: `e${seq}`,
    eventName: 'INSERT' as const,
    dynamodb: { SequenceNumber: seq, Keys: { pk: { S: `X#${seq}` }, sk: { S: 'X' } }, NewImage: { pk: { S: `X#${seq}` }, sk: { S: 'X' } } },
  });
  const event = { Records: ['1', '2', '3', '4', '5'].map(record) } as unknown as DynamoDBStreamEvent;

  for (const concurrency of [1, 4]) {
    it(`reports the first failed record in stream order (concurrency ${concurrency})`, async () => {
      const seen: string[] = [];
      const consumer: ChangeConsumer = {
        name: 't',
        keyPrefixes: ['X#'],
        concurrency,
        async handle(change) {
          seen.push(change.sequenceNumber);
          if (change.sequenceNumber === '3' || change.sequenceNumber === '5') throw new Error('boom');
        },
      };
      const out = await handleStreamEvent(event, {} as Deps, [consumer], () => undefined);
      expect(out.batchItemFailures).toEqual([{ itemIdentifier: '3' }]);
      expect(seen).toContain('1');
      expect(seen).toContain('2');
      if (concurrency === 1) expect(seen).toEqual(['1', '2', '3']);
    });
  }

  it('a batch consumer that fails is retried from the first change that fails on its own; changes outside its prefixes never reach it', async () => {
    const seen: string[][] = [];
    const consumer: ChangeConsumer = {
      name: 'batch',
      keyPrefixes: ['X#1', 'X#2', 'X#3', 'X#5'],
      async handleBatch(changes) {
        seen.push(changes.map((c) => c.sequenceNumber));
        if (changes.some((c) => c.sequenceNumber === '3')) throw new Error('boom');
      },
    };
    const out = await handleStreamEvent(event, {} as Deps, [consumer], () => undefined);
    expect(out.batchItemFailures).toEqual([{ itemIdentifier: '3' }]);
    expect(seen[0]).toEqual(['1', '2', '3', '5']);
    expect(seen.slice(1)).toEqual([['1'], ['2'], ['3']]);
    const quiet = await handleStreamEvent({ Records: [record('4')] } as unknown as DynamoDBStreamEvent, {} as Deps, [consumer], () => undefined);
    expect(quiet.batchItemFailures).toEqual([]);
    expect(seen).toHaveLength(4);
  });

  it('a finished task becomes its metrics, each with a source id of its version', () => {
    const task = { task_id: 'T1', version: 7, type: 'custom', status: 'completed', provider_id: 'local', model: 'local-echo', agent_id: null, created_by: 'U1', duration_ms: 1200, attempts: 1, tokens_in: 10, tokens_out: 20, cost_usd: 0.5, completed_at: '2026-01-01T00:00:00.000Z' };
    const points = pointsOfChange({ eventId: 'e', kind: 'MODIFY', pk: 'TASK#T1', sk: 'TASK', newImage: task, oldImage: { ...task, status: 'running', version: 6 }, at: new Date(), sequenceNumber: '1', byTtl: false });
    expect(points.map((p) => [p.metric, p.value])).toEqual([
      ['task.finished', 1],
      ['task.duration_ms', 1200],
      ['task.attempts', 1],
      ['task.tokens_in', 10],
      ['task.tokens_out', 20],
      ['task.cost_usd', 0.5],
    ]);
    expect(points[0].labels).toEqual({ task_type: 'custom', provider: 'local', model: 'local-echo', user: 'U1', status: 'completed' });
    expect(new Set(points.map((p) => p.sourceId)).size).toBe(points.length);
    expect(points[0].sourceId).toBe('task:T1:v7:task.finished');
  });
});
