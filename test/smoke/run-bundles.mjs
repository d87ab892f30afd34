/* global process, console, performance */
// Loads every built Lambda bundle (test/smoke/build-bundles.ts) in the Node binary that runs this file
// and invokes the handlers that need no AWS service with AWS-shaped events, as Lambda would: a bundle
// that does not load, or answers wrongly, on this Node version fails. Plain JavaScript, so that any
// Node binary runs it (CI: the Lambda runtime's version, fetched from the npm registry).
//   node test/smoke/run-bundles.mjs <bundle-dir>
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = resolve(process.argv[2] ?? '');
const labels = JSON.parse(readFileSync(join(dir, 'labels.json'), 'utf8'));

// What Lambda and the stack give every function; no call below reaches AWS.
Object.assign(process.env, {
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: 'AKIASMOKETEST000000',
  AWS_SECRET_ACCESS_KEY: 'smoke-test-secret',
  STAGE: 'smoke',
  TABLE_NAME: 'supervisor-smoke',
  LOG_LEVEL: 'SILENT',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});

const context = (name) => ({
  functionName: `supervisor-smoke-${name}`,
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:supervisor-smoke-${name}`,
  memoryLimitInMB: '512',
  awsRequestId: `smoke-${name}`,
  logGroupName: `/aws/lambda/supervisor-smoke-${name}`,
  logStreamName: 'smoke',
  callbackWaitsForEmptyEventLoop: false,
  getRemainingTimeInMillis: () => 10_000,
  done() {},
  fail() {},
  succeed() {},
});

const httpEvent = (method, path) => ({
  version: '2.0',
  routeKey: `${method} ${path}`,
  rawPath: path,
  rawQueryString: '',
  headers: { host: 'api.example.com', 'user-agent': 'smoke' },
  requestContext: {
    accountId: '123456789012',
    apiId: 'smoke',
    domainName: 'api.example.com',
    domainPrefix: 'api',
    http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.9', userAgent: 'smoke' },
    requestId: `smoke-${method}-${path}`,
    routeKey: `${method} ${path}`,
    stage: '$default',
    time: new Date().toUTCString(),
    timeEpoch: Date.now(),
  },
  isBase64Encoded: false,
});

const sqsEvent = (body) => ({
  Records: [
    {
      messageId: 'smoke-1',
      receiptHandle: 'smoke',
      body,
      attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()), SenderId: 'smoke', ApproximateFirstReceiveTimestamp: String(Date.now()) },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:smoke',
      awsRegion: 'eu-west-1',
    },
  ],
});

const assert = (ok, what) => {
  if (!ok) throw new Error(what);
};

/** Invocations that need no AWS service, and what each must answer. */
const INVOCATIONS = {
  health: async (handler) => {
    const res = await handler(httpEvent('GET', '/api/v1/health'), context('health'));
    assert(res.statusCode === 200, `GET /api/v1/health answered ${res.statusCode}`);
    assert(JSON.parse(res.body).data.status === 'ok', 'GET /api/v1/health: status is not ok');
  },
  docs: async (handler) => {
    const res = await handler(httpEvent('GET', '/openapi.json'), context('docs'));
    assert(res.statusCode === 200, `GET /openapi.json answered ${res.statusCode}`);
    assert(/^3\.1\./.test(JSON.parse(res.body).openapi), 'GET /openapi.json is not OpenAPI 3.1');
  },
  'schedule-fire': async (handler) => {
    const res = await handler({ not: 'a firing' }, context('schedule-fire'));
    assert(res.outcome === 'ignored', `an invalid firing was not ignored: ${JSON.stringify(res)}`);
  },
  'dead-letter': async (handler) => {
    const res = await handler(sqsEvent('not a task message'), context('dead-letter'));
    assert(Array.isArray(res.batchItemFailures) && res.batchItemFailures.length === 0, `dead-letter: ${JSON.stringify(res)}`);
  },
  failures: async (handler) => {
    const res = await handler(sqsEvent('{"neither":"a firing nor a sweep"}'), context('failures'));
    assert(Array.isArray(res.batchItemFailures) && res.batchItemFailures.length === 0, `failures: ${JSON.stringify(res)}`);
  },
};

let failed = 0;
for (const label of labels) {
  const started = performance.now();
  try {
    const mod = await import(pathToFileURL(join(dir, `${label}.mjs`)).href);
    assert(typeof mod.handler === 'function', 'no handler function exported');
    if (INVOCATIONS[label]) await INVOCATIONS[label](mod.handler);
    console.log(`ok   ${label}${INVOCATIONS[label] ? ' (invoked)' : ' (loaded)'} ${Math.round(performance.now() - started)} ms`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${label}: ${err?.stack ?? err}`);
  }
}
console.log(`${labels.length - failed}/${labels.length} bundles passed on Node ${process.version}`);
process.exit(failed === 0 ? 0 : 1);
