import { afterEach, describe, expect, it, vi } from 'vitest';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** The X-Ray SDK's middleware on a traced SDK v3 client. */
const XRAY_MIDDLEWARE = 'XRaySDKInstrumentation';

const traced = (client: DynamoDBClient) => client.middlewareStack.identify().some((name) => name.startsWith(XRAY_MIDDLEWARE));

async function freshTracing(env: Record<string, string | undefined>) {
  vi.resetModules();
  for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
  return import('../../../shared/platform/tracing.js');
}

afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
});

describe('tracing', () => {
  it('is off outside Lambda: no handler middleware, clients untouched', async () => {
    const { handlerTracing, traceClient } = await freshTracing({ AWS_EXECUTION_ENV: undefined });
    const client = new DynamoDBClient({ region: 'eu-west-1' });
    expect(traceClient(client)).toBe(client);
    await new Promise((r) => setTimeout(r, 20));
    expect(traced(client)).toBe(false);
    expect(handlerTracing()).toEqual([]);
  });

  it('is off in Lambda when POWERTOOLS_TRACE_ENABLED=false', async () => {
    const { handlerTracing } = await freshTracing({ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x', POWERTOOLS_TRACE_ENABLED: 'false' });
    expect(handlerTracing()).toEqual([]);
  });

  it('in Lambda, traces each call of a client and wraps each invocation', async () => {
    const { handlerTracing, traceClient } = await freshTracing({ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x', POWERTOOLS_TRACE_ENABLED: undefined });
    const client = traceClient(new DynamoDBClient({ region: 'eu-west-1' }));
    await vi.waitFor(() => expect(traced(client)).toBe(true));
    const [middleware, ...rest] = handlerTracing();
    expect(rest).toEqual([]);
    expect(middleware.before).toBeTypeOf('function');
    expect(middleware.after).toBeTypeOf('function');
    expect(middleware.onError).toBeTypeOf('function');
  });
});
