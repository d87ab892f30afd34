import { AsyncLocalStorage } from 'node:async_hooks';
import { DescribeEventBusCommand, EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalEventBus, type LocalEvent } from '../../local/event-bus.js';
import { EventBridgeBus } from '../../shared/platform/aws/event-bus.js';
import type { EventBus } from '../../shared/platform/ports.js';
import { serviceError, waitUntil } from './support.js';

interface Published {
  source: string;
  detailType: string;
  detail: unknown;
}

interface BusSubject {
  bus: EventBus;
  published(): Published[];
  breakIt(): Promise<void>;
}

const eventbridge = mockClient(EventBridgeClient);

const implementations: Array<[string, () => BusSubject]> = [
  [
    'local',
    () => {
      const bus = new LocalEventBus();
      const seen: LocalEvent[] = [];
      bus.subscribe((e) => void seen.push(e));
      let broken = false;
      return {
        bus: { publish: (t, d) => bus.publish(t, d), check: async () => (broken ? Promise.reject(new Error('down')) : bus.check()) },
        published: () => seen.map((e) => ({ source: e.source, detailType: e.detailType, detail: e.detail })),
        breakIt: async () => {
          broken = true; // an in-process bus cannot become unreachable; the harness simulates it
        },
      };
    },
  ],
  [
    'aws (EventBridge, mocked client)',
    () => {
      eventbridge.reset();
      eventbridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
      eventbridge.on(DescribeEventBusCommand).resolves({ Name: 'supervisor-events' });
      return {
        bus: new EventBridgeBus('supervisor-events'),
        published: () =>
          eventbridge.commandCalls(PutEventsCommand).flatMap((c) =>
            (c.args[0].input.Entries ?? []).map((e) => ({ source: e.Source!, detailType: e.DetailType!, detail: JSON.parse(e.Detail!) as unknown })),
          ),
        breakIt: async () => {
          eventbridge.on(DescribeEventBusCommand).rejects(serviceError('ResourceNotFoundException'));
        },
      };
    },
  ],
];

afterEach(() => eventbridge.reset());

describe.each(implementations)('EventBus contract: %s', (_name, make) => {
  it('publishes the detail type and detail with source "supervisor"', async () => {
    const s = make();
    await s.bus.publish('task.completed', { task_id: 't1', tokens: { input: 10, output: 20 } });
    await s.bus.publish('task.failed', { task_id: 't2', error: 'provider_down' });
    await waitUntil(() => s.published().length === 2, 1000);
    expect(s.published()).toEqual([
      { source: 'supervisor', detailType: 'task.completed', detail: { task_id: 't1', tokens: { input: 10, output: 20 } } },
      { source: 'supervisor', detailType: 'task.failed', detail: { task_id: 't2', error: 'provider_down' } },
    ]);
  });

  it('check passes when reachable and throws when not', async () => {
    const s = make();
    await expect(s.bus.check()).resolves.toBeUndefined();
    await s.breakIt();
    await expect(s.bus.check()).rejects.toThrow();
  });
});

describe('EventBridgeBus commands', () => {
  it('PutEvents names the bus; check is DescribeEventBus', async () => {
    eventbridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: '1' }] });
    eventbridge.on(DescribeEventBusCommand).resolves({});
    const bus = new EventBridgeBus('supervisor-events');
    await bus.publish('x.y', { a: 1 });
    await bus.check();
    expect(eventbridge.commandCalls(PutEventsCommand)[0].args[0].input).toEqual({
      Entries: [{ EventBusName: 'supervisor-events', Source: 'supervisor', DetailType: 'x.y', Detail: '{"a":1}' }],
    });
    expect(eventbridge.commandCalls(DescribeEventBusCommand)[0].args[0].input).toEqual({ Name: 'supervisor-events' });
  });

  it('a failed entry (PutEvents does not throw for it) is an error', async () => {
    eventbridge.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }] });
    await expect(new EventBridgeBus('b').publish('x', {})).rejects.toThrow(/InternalFailure try again/);
  });
});

describe('LocalEventBus', () => {
  it('keeps the last N events and a failing listener does not fail publish', async () => {
    const errors: unknown[] = [];
    const bus = new LocalEventBus({ keep: 3, onListenerError: (err) => errors.push(err) });
    const off = bus.subscribe(() => {
      throw new Error('listener bug');
    });
    for (let i = 0; i < 5; i++) await bus.publish('tick', { i });
    expect(bus.events().map((e) => e.detail)).toEqual([{ i: 2 }, { i: 3 }, { i: 4 }]);
    await waitUntil(() => errors.length === 5, 1000);
    off();
    await bus.publish('tick', { i: 5 });
    await new Promise((r) => setTimeout(r, 20));
    expect(errors).toHaveLength(5);
  });

  it('runs a listener in the context it was added in, not the publisher\'s (a target is an invocation of its own)', async () => {
    const context = new AsyncLocalStorage<string>();
    const bus = new LocalEventBus();
    const seen: (string | undefined)[] = [];
    context.run('subscriber', () => bus.subscribe(() => void seen.push(context.getStore())));
    await context.run('publishing request', () => bus.publish('tick', {}));
    await waitUntil(() => seen.length === 1, 1000);
    expect(seen).toEqual(['subscriber']);
  });

  it('refuses what PutEvents refuses', async () => {
    const bus = new LocalEventBus();
    await expect(bus.publish('', {})).rejects.toThrow();
    await expect(bus.publish('x'.repeat(129), {})).rejects.toThrow();
    await expect(bus.publish('big', { blob: 'x'.repeat(300_000) })).rejects.toThrow(/256 KiB/);
  });
});
