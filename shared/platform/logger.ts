import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { getConfig } from './config.js';

/**
 * The one logger: Powertools JSON lines. The Lambda handlers inject their invocation's context (the
 * Lambda request id, function name, cold start) with `injectLambdaContext` or `logger.addContext`, and
 * the HTTP handlers add the API request id (`request_id`) for the duration of a request. The local
 * runtime uses this same logger; it prints its own per-request line besides.
 */
export const logger = new Logger({
  serviceName: 'supervisor',
  logLevel: getConfig().logLevel,
});

const NO_CONTEXT = {} as Context;

/**
 * Puts this invocation's Lambda context on the log lines, for the handlers outside the HTTP stack (whose
 * middy chain does it with `injectLambdaContext`). An in-process call (the local runtime) has none: the
 * previous invocation's context is cleared rather than repeated.
 */
export function useLambdaContext(context: Context | undefined): void {
  logger.addContext(context ?? NO_CONTEXT);
}
