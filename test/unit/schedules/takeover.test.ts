import { describe, expect, it } from 'vitest';
import { FUNCTIONS, SCHEDULE_FIRE_ASYNC } from '../../../shared/platform/infra.js';
import { FIRING_CLOCK_SKEW_SECONDS, FIRING_TAKEOVER_SECONDS } from '../../../shared/schedules/service.js';

/**
 * A firing's claim is taken over by a later retry once its claimer must be dead. Lambda retries a
 * failed asynchronous invocation (EventBridge Scheduler's target) twice, about 1 and 2 minutes after
 * the failed attempt ended: the takeover window has to fall between the claimer's end and the last retry.
 */
describe('the firing takeover window', () => {
  const timeout = FUNCTIONS.background.timeoutSeconds;
  const [firstDelay, secondDelay] = SCHEDULE_FIRE_ASYNC.retryDelaysSeconds;

  it('is longer than any live claimer (the function timeout) plus clock skew', () => {
    expect(FIRING_TAKEOVER_SECONDS).toBeGreaterThanOrEqual(timeout + FIRING_CLOCK_SKEW_SECONDS);
  });

  it('leaves a minute of margin before the last retry, however early the claimer died', () => {
    expect(SCHEDULE_FIRE_ASYNC.retryDelaysSeconds).toHaveLength(SCHEDULE_FIRE_ASYNC.retryAttempts);
    // Died at once (claim at 0): retries at >= 60 s and >= 180 s; the last one must be able to take over.
    const lastRetryEarliest = firstDelay + secondDelay;
    expect(lastRetryEarliest - FIRING_TAKEOVER_SECONDS).toBeGreaterThanOrEqual(60);
    // Ran into its timeout: the first retry (>= timeout + 60 s) already takes over.
    expect(timeout + firstDelay - FIRING_TAKEOVER_SECONDS).toBeGreaterThanOrEqual(FIRING_CLOCK_SKEW_SECONDS);
  });

  it('fits in the event age Lambda keeps retrying for', () => {
    expect(SCHEDULE_FIRE_ASYNC.maxEventAgeSeconds).toBeGreaterThan(3 * timeout + firstDelay + secondDelay + 600);
  });
});
