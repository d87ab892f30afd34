import type { Tracer } from '@aws-lambda-powertools/tracer';
import type { MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import { logger } from './logger.js';

/**
 * The one tracer: Powertools Tracer (X-Ray) under the functions' active tracing. Each HTTP invocation
 * is a `## handler` subsegment with its cold start annotated (`handlerTracing`, first in the middy
 * chain), and each DynamoDB call of the store is a subsegment of its own (`traceClient`), so a slow
 * request shows which calls it waited on.
 *
 * The tracer is loaded only in Lambda (`AWS_EXECUTION_ENV`, as Powertools itself decides), unless
 * `POWERTOOLS_TRACE_ENABLED=false`. Elsewhere (the local runtime, the tests, the bench) the X-Ray SDK is
 * never imported: importing it installs async hooks (cls-hooked) under every promise of the process,
 * which makes each `await` about ten times slower, traced or not.
 *
 * It is loaded with `import()` at init, not awaited at the top level: a top-level await would make the
 * bundle's lazily imported modules (the docs function's route table, which imports the docs routes
 * back) wait on each other for ever.
 */
const tracingOn = process.env.AWS_EXECUTION_ENV !== undefined && process.env.POWERTOOLS_TRACE_ENABLED?.toLowerCase() !== 'false';

interface Tracing {
  tracer: Tracer;
  handler: MiddlewareObj;
}

async function loadTracing(): Promise<Tracing | undefined> {
  try {
    const [{ Tracer }, { captureLambdaHandler }] = await Promise.all([import('@aws-lambda-powertools/tracer'), import('@aws-lambda-powertools/tracer/middleware')]);
    const tracer = new Tracer({ serviceName: 'supervisor' });
    // Answers are not recorded: they hold user data.
    return { tracer, handler: captureLambdaHandler(tracer, { captureResponse: false }) as MiddlewareObj };
  } catch (err) {
    // Traces are an aid: without them the function still serves, and says why they are missing.
    logger.error('tracing could not be loaded: calls are not traced', { error: err as Error });
    return undefined;
  }
}

/** Settles once the tracer is loaded (to undefined if it could not be); never rejects. */
const tracing: Promise<Tracing | undefined> | undefined = tracingOn ? loadTracing() : undefined;

/**
 * An AWS SDK v3 client whose calls are traced once the tracer is loaded (at init, before the first
 * invocation runs); the client itself is returned at once.
 */
export function traceClient<T>(client: T): T {
  void tracing
    ?.then((t) => t?.tracer.captureAWSv3Client(client))
    .catch((err: unknown) => logger.error('a client could not be traced: its calls are not traced', { error: err as Error }));
  return client;
}

/** For a middy chain: the middleware that makes each HTTP invocation a subsegment, or none when tracing is off. */
export function handlerTracing<TEvent, TResult, TErr, TContext extends Context>(): MiddlewareObj<TEvent, TResult, TErr, TContext>[] {
  if (!tracing) return [];
  type Request = Parameters<NonNullable<MiddlewareObj<TEvent, TResult, TErr, TContext>['before']>>[0];
  const delegate = (hook: 'before' | 'after' | 'onError') => async (request: Request) => {
    const loaded = await tracing;
    await loaded?.handler[hook]?.(request as never);
  };
  return [{ before: delegate('before'), after: delegate('after'), onError: delegate('onError') }];
}
