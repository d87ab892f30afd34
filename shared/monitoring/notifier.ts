/**
 * How alert transitions leave the platform. `AlertNotifier` is the one seam: the evaluator hands every
 * `alert.fired` / `alert.resolved` it owns (exactly once, after the transition's conditional write) to
 * the notifier and records what it answered on the alert (`deliveries`).
 *
 * The implementation here publishes on the platform's event bus (EventBridge on AWS, the local bus
 * locally) with the rule's channels in the detail, and pushes the event to WebSocket subscribers of
 * the `alerts` and `monitoring` channels. Channel delivery (webhooks, e-mail…) belongs to plugins: a
 * rule on the bus for these detail types, or another `AlertNotifier` passed to the evaluator, delivers
 * them without any change to the evaluator.
 */
import type { Deps } from '../platform/runtime.js';
import { eventBus } from '../platform/use/events.js';
import { publish } from '../realtime/publisher.js';
import type { AlertView } from './model.js';

export type AlertEvent = 'alert.fired' | 'alert.resolved' | 'alert.acknowledged';

export interface AlertNotification {
  event: AlertEvent;
  alert: AlertView;
  channels: string[];
}

export interface AlertNotifier {
  notify(n: AlertNotification): Promise<{ status: 'published' | 'failed'; detail: string | null }>;
}

export class BusNotifier implements AlertNotifier {
  constructor(private readonly deps: Deps) {}

  async notify(n: AlertNotification): Promise<{ status: 'published' | 'failed'; detail: string | null }> {
    // Subscribers first: a bus that is down must not hold back the live stream.
    const { transitions: _t, deliveries: _d, ...summary } = n.alert;
    await publish(this.deps, ['alerts', 'monitoring'], n.event, summary);
    if (n.event === 'alert.acknowledged') return { status: 'published', detail: null };
    try {
      await eventBus(this.deps).publish(n.event, { alert: summary, channels: n.channels });
      return { status: 'published', detail: null };
    } catch (err) {
      return { status: 'failed', detail: (err as Error).name ?? 'error' };
    }
  }
}
