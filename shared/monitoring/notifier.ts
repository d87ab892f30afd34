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
import { severitiesOf } from './stream.js';

export type AlertEvent = 'alert.fired' | 'alert.resolved' | 'alert.acknowledged';

export interface AlertNotification {
  event: AlertEvent;
  alert: AlertView;
  channels: string[];
}

export interface AlertNotifier {
  notify(n: AlertNotification): Promise<{ status: 'published' | 'failed'; detail: string | null }>;
}

/** The alert without its history, as events carry it. */
export function alertSummary(alert: AlertView) {
  const { transitions: _t, deliveries: _d, ...summary } = alert;
  return summary;
}

/**
 * Pushes an alert event to the WebSocket subscribers of `alerts` and `monitoring` whose preferences
 * follow its severity (`alert_severities`; all when unset). Never throws.
 */
export async function streamAlert(deps: Deps, event: AlertEvent, alert: AlertView): Promise<number> {
  return publish(deps, ['alerts', 'monitoring'], event, alertSummary(alert), { accepts: (prefs) => severitiesOf(prefs).includes(alert.severity) });
}

export class BusNotifier implements AlertNotifier {
  constructor(private readonly deps: Deps) {}

  async notify(n: AlertNotification): Promise<{ status: 'published' | 'failed'; detail: string | null }> {
    // Subscribers first: a bus that is down must not hold back the live stream.
    const summary = alertSummary(n.alert);
    await streamAlert(this.deps, n.event, n.alert);
    if (n.event === 'alert.acknowledged') return { status: 'published', detail: null };
    try {
      await eventBus(this.deps).publish(n.event, { alert: summary, channels: n.channels });
      return { status: 'published', detail: null };
    } catch (err) {
      return { status: 'failed', detail: (err as Error).name ?? 'error' };
    }
  }
}
