import type { Context } from 'aws-lambda';
import { getDeps } from '../../shared/platform/runtime.js';
import { logger, useLambdaContext } from '../../shared/platform/logger.js';
import { deliverBusEvent, runDueRetries } from '../../shared/plugins/delivery.js';

/** An EventBridge event as a rule hands it to its target. */
interface EventBridgeEvent {
  id?: unknown;
  source?: unknown;
  'detail-type'?: unknown;
  time?: unknown;
  detail?: unknown;
}

export interface DeliveryOutcome {
  kind: 'event' | 'retries' | 'ignored';
  count: number;
}

/**
 * Target of two EventBridge rules: events of the stage bus (source `supervisor`), delivered to every
 * active plugin that takes them; and a schedule (`Scheduled Event` from `aws.events`, every minute)
 * that runs the stored retries that are due. A thrown error makes EventBridge retry the invocation.
 */
export async function handler(event: EventBridgeEvent, context?: Context): Promise<DeliveryOutcome> {
  useLambdaContext(context);
  const deps = await getDeps();
  if (event.source === 'aws.events' || event['detail-type'] === 'Scheduled Event') {
    const count = await runDueRetries(deps);
    return { kind: 'retries', count };
  }
  const detail = event.detail;
  if (event.source !== 'supervisor' || typeof event['detail-type'] !== 'string' || typeof event.id !== 'string' || typeof detail !== 'object' || detail === null || Array.isArray(detail)) {
    logger.error('plugin delivery: event of an unexpected shape dropped', { source: String(event.source), detail_type: String(event['detail-type']) });
    return { kind: 'ignored', count: 0 };
  }
  const deliveries = await deliverBusEvent(deps, {
    id: event.id,
    source: event.source,
    detailType: event['detail-type'],
    time: typeof event.time === 'string' ? event.time : deps.clock.now().toISOString(),
    detail: detail as Record<string, unknown>,
  });
  return { kind: 'event', count: deliveries.length };
}
