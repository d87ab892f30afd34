/**
 * A job the local runtime runs on a timer, as EventBridge Scheduler or a scheduled rule invokes a
 * function on AWS: a run that is still going when the next is due is not started twice, and `stop()`
 * waits for the run in progress, so that none of it reaches DynamoDB Local after the runtime stopped it.
 */
export interface PeriodicJob {
  stop(): Promise<void>;
}

const NOTHING: PeriodicJob = { stop: async () => undefined };

/** Runs `job` every `intervalMs` (none when `enabled` is false: a manual clock, where tests call the job). */
export function periodic(intervalMs: number, job: () => Promise<unknown>, onError: (err: unknown) => unknown, enabled = true): PeriodicJob {
  if (!enabled) return NOTHING;
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = Promise.resolve()
      .then(job)
      .then(
        () => undefined,
        async (err: unknown) => void (await onError(err)),
      )
      // The error handler itself failed: nothing else would say so.
      .catch((err: unknown) => console.error('a periodic job failed and so did its error handler', err))
      .finally(() => (running = undefined));
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
