import { describe, expect, it } from 'vitest';
import { buildWorkflowDefinition, CALLBACK_SECONDS, ENGINE_TASK_STATE } from '../../../shared/workflows/asl.js';
import { MAX_STEPS, MAX_WORKFLOW_TIMEOUT_SECONDS } from '../../../shared/workflows/definition.js';

/**
 * Step Functions keeps at most 25 000 history events per execution. This walks the deployed ASL
 * document with the worst run the API allows and counts the events each state writes:
 * Pass, Choice, Wait, Succeed/Fail: entered + exited (2); a callback task: entered, scheduled, started,
 * submitted, succeeded or timed out, exited (6); execution started + succeeded (2).
 */
const HISTORY_LIMIT = 25_000;
const MAX_STEP_ATTEMPTS = 10; // retry.max_attempts
const TASK_EVENTS = 6;
const OTHER_EVENTS = 2;

type Answer = { kind: 'callback'; done?: boolean; wait_seconds?: number } | { kind: 'timeout' };

function countEvents(answers: Answer[]): number {
  const definition = buildWorkflowDefinition({ engineFunctionArn: 'arn:aws:lambda:eu-west-1:1:function:engine' }) as { StartAt: string; States: Record<string, any> };
  let events = 2;
  let state = definition.StartAt;
  let i = 0;
  let last: { done?: boolean; wait_seconds?: number } = {};
  for (;;) {
    const s = definition.States[state];
    if (s.Type === 'Task') {
      events += TASK_EVENTS;
      const a = answers[i++] ?? { kind: 'callback', done: true };
      if (a.kind === 'timeout') {
        state = s.Catch.find((c: any) => c.ErrorEquals.includes('States.Timeout')).Next;
        continue;
      }
      last = a;
      state = s.Next;
      continue;
    }
    events += OTHER_EVENTS;
    if (s.Type === 'Succeed' || s.Type === 'Fail') return events;
    if (s.Type === 'Choice') {
      if (last.done) state = s.Choices[0].Next;
      else if ((last.wait_seconds ?? 0) > 0) state = s.Choices[1].Next;
      else state = s.Default;
      continue;
    }
    state = s.Next;
  }
}

describe('workflow run history stays within Step Functions limits', () => {
  it('the worst allowed run (200 steps, 10 attempts each with a backoff, 24 h of lost callbacks) stays well under 25 000 events', () => {
    const answers: Answer[] = [];
    // Each attempt ends with its task's callback; a failed one then waits out its backoff (Wait state).
    for (let step = 0; step < MAX_STEPS; step++) {
      for (let attempt = 1; attempt <= MAX_STEP_ATTEMPTS; attempt++) {
        answers.push({ kind: 'callback', wait_seconds: attempt < MAX_STEP_ATTEMPTS ? 60 : 0 });
      }
    }
    // On top of that, every callback of the 24 h is lost: a timeout each CALLBACK_SECONDS.
    const timeouts = Math.ceil(MAX_WORKFLOW_TIMEOUT_SECONDS / CALLBACK_SECONDS);
    for (let t = 0; t < timeouts; t++) answers.push({ kind: 'timeout' });
    // One bounce to shorten the wait to the run's deadline, and the final round.
    answers.push({ kind: 'callback', wait_seconds: 0 }, { kind: 'callback', done: true });
    const events = countEvents(answers);
    expect(events).toBeLessThan(HISTORY_LIMIT * 0.9);
    expect(events).toBeGreaterThan(MAX_STEPS * MAX_STEP_ATTEMPTS * 8); // the model counts every round
  });

  it('the old polling loop would not have: 60 s steps ran out after well under 200 steps', () => {
    // Advance → Choice → Wait: ~9 events per look, a look per second after each start, slowing to 2-60 s.
    const lookEventsPerStep = 9 * (10 + 25 + 0); // 10 × 1 s, then 25 × 2 s within a 60 s step
    expect(Math.floor(HISTORY_LIMIT / lookEventsPerStep)).toBeLessThan(MAX_STEPS);
  });

  it('the engine task waits for a token with a bounded timeout, and a timeout advances again', () => {
    const definition = buildWorkflowDefinition({ engineFunctionArn: 'arn' }) as { States: Record<string, any> };
    const advance = definition.States[ENGINE_TASK_STATE];
    expect(advance.Resource).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
    expect(advance.TimeoutSecondsPath).toBe('$.callback_seconds');
    const onTimeout = advance.Catch.find((c: any) => c.ErrorEquals.includes('States.Timeout'));
    expect(definition.States[onTimeout.Next]).toMatchObject({ Type: 'Pass', Result: CALLBACK_SECONDS, Next: ENGINE_TASK_STATE });
    const onFailure = advance.Catch.find((c: any) => c.ErrorEquals.includes('States.ALL'));
    expect(definition.States[onFailure.Next]).toMatchObject({ Type: 'Task', Next: 'EngineFailed' });
  });
});
