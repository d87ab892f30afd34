import { Tracer } from '@aws-lambda-powertools/tracer';

/**
 * The one tracer: Powertools Tracer (X-Ray) under the functions' active tracing. Each HTTP invocation
 * is a `## handler` subsegment with its cold start annotated (the middy chain's `captureLambdaHandler`),
 * and each DynamoDB call of the store is a subsegment of its own (`traceClient`), so a slow request
 * shows which calls it waited on. Outside Lambda (the local runtime, the tests) Powertools turns it off.
 */
export const tracer = new Tracer({ serviceName: 'supervisor' });

/** An AWS SDK v3 client whose calls are traced (returned as is when tracing is off). */
export function traceClient<T>(client: T): T {
  return tracer.captureAWSv3Client(client);
}
