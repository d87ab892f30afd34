import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { EventBus } from '../ports.js';
import { lazy } from './util.js';

export const EVENT_SOURCE = 'supervisor';

/** `EventBus` on an EventBridge bus: every event has source `supervisor`. */
export class EventBridgeBus implements EventBus {
  private readonly sdk = lazy(async () => {
    const mod = await import('@aws-sdk/client-eventbridge');
    return { mod, client: new mod.EventBridgeClient({}) as EventBridgeClient };
  });

  constructor(readonly busName: string) {}

  /** Throws when EventBridge rejects the entry (PutEvents reports failures per entry, not as an error). */
  async publish(detailType: string, detail: Record<string, unknown>): Promise<void> {
    const { mod, client } = await this.sdk();
    const out = await client.send(
      new mod.PutEventsCommand({
        Entries: [{ EventBusName: this.busName, Source: EVENT_SOURCE, DetailType: detailType, Detail: JSON.stringify(detail) }],
      }),
    );
    if ((out.FailedEntryCount ?? 0) > 0) {
      const entry = out.Entries?.find((e) => e.ErrorCode) ?? out.Entries?.[0];
      throw new Error(`EventBridge rejected event '${detailType}': ${entry?.ErrorCode ?? 'unknown'} ${entry?.ErrorMessage ?? ''}`.trim());
    }
  }

  async check(): Promise<void> {
    const { mod, client } = await this.sdk();
    await client.send(new mod.DescribeEventBusCommand({ Name: this.busName }));
  }
}
