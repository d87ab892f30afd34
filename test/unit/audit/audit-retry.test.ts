import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, inject, beforeAll } from 'vitest';
import { ulid } from 'ulid';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, SQSEvent } from 'aws-lambda';

/**
 * An audit write that keeps failing is never only logged: the entry goes to the audit retry queue,
 * whose consumer writes it once (however often it is delivered), and the local stand-in keeps it
 * across a restart as SQS would.
 */

const { buildHttpHandler } = await import('../../../shared/platform/api/http-handler.js');
const { authRoutes, authOperations } = await import('../../../shared/auth/routes.js');
const { identify } = await import('../../../shared/auth/identity.js');
const { retryAudits } = await import('../../../shared/audit/service.js');
const { AuditRepository } = await import('../../../shared/audit/repo.js');
const { installDeps } = await import('../../../shared/platform/runtime.js');
const { getConfig } = await import('../../../shared/platform/config.js');
const { LocalTokenSigner } = await import('../../../shared/platform/local/token-signer.js');
const { lambdaContext } = await import('../../../local/lambda-context.js');
const { LocalAuditQueue } = await import('../../../local/audit-queue.js');
const { testStore } = await import('../../integration/auth/fixtures.js');
type AuditEntry = import('../../../shared/platform/api/http-services.js').AuditEntry;

let deps: Record<string, unknown>;
beforeAll(async () => {
  deps = {
    config: getConfig(),
    store: testStore(inject('dynamodbEndpoint')),
    signer: await LocalTokenSigner.create(null, 'supervisor'),
    clock: { now: () => new Date() },
    appSecret: async () => Buffer.alloc(32, 3),
  };
  installDeps(deps as never);
});

function entry(overrides: Partial<AuditEntry> = {}): AuditEntry {
  const now = new Date();
  return {
    audit_id: ulid(now.getTime()),
    timestamp: now.toISOString(),
    actor_id: null,
    actor_username: null,
    action: 'login',
    resource_type: 'audit-retry-test',
    resource_id: `r-${ulid()}`,
    outcome: 'denied',
    status_code: 401,
    request_id: ulid(),
    ip: '127.0.0.1',
    user_agent: 'test',
    method: 'POST',
    path: '/auth/login',
    ...overrides,
  };
}

const sqsEvent = (...bodies: string[]): SQSEvent => ({
  Records: bodies.map((body) => ({ messageId: ulid(), body }) as SQSEvent['Records'][number]),
});

async function recordsOf(resourceId: string) {
  return (await new AuditRepository(deps.store as never).list({ resource_type: 'audit-retry-test', resource_id: resourceId }, 10, undefined, new Date())).items;
}

describe('a mutating request whose audit write keeps failing', () => {
  it('hands the entry, with one audit id, to the audit retry queue after the retries', async () => {
    const writes: AuditEntry[] = [];
    const deferred: AuditEntry[] = [];
    const handler = buildHttpHandler('auth', [authRoutes], authOperations as never, {
      identify,
      audit: async (_deps, e) => {
        writes.push(e);
        throw Object.assign(new Error('Throughput exceeds the current capacity'), { name: 'ProvisionedThroughputExceededException' });
      },
      deferAudit: async (_deps, e) => {
        deferred.push(e);
      },
    });
    const event = {
      version: '2.0',
      routeKey: 'POST /auth/login',
      rawPath: '/auth/login',
      rawQueryString: '',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: `nobody-${ulid().toLowerCase()}`, password: 'not-the-password' }),
      isBase64Encoded: false,
      requestContext: { requestId: ulid(), http: { method: 'POST', path: '/auth/login', sourceIp: '127.0.0.1', protocol: 'HTTP/1.1', userAgent: 'test' } },
    } as unknown as APIGatewayProxyEventV2;
    const res = (await handler(event, lambdaContext('supervisor-auth', 30_000))) as APIGatewayProxyStructuredResultV2;
    expect(res.statusCode).toBe(401);
    expect(writes).toHaveLength(3);
    expect(new Set(writes.map((w) => w.audit_id)).size).toBe(1);
    expect(deferred).toHaveLength(1);
    expect(deferred[0]).toMatchObject({ audit_id: writes[0].audit_id, action: 'login', outcome: 'denied', status_code: 401 });
  });
});

describe('the audit retry consumer', () => {
  it('writes a deferred entry once, however often it is delivered', async () => {
    const e = entry();
    const body = JSON.stringify(e);
    expect(await retryAudits(deps as never, sqsEvent(body))).toEqual({ batchItemFailures: [] });
    expect(await retryAudits(deps as never, sqsEvent(body, body))).toEqual({ batchItemFailures: [] });
    const stored = await recordsOf(e.resource_id!);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ audit_id: e.audit_id, request_id: e.request_id, outcome: 'denied' });
  });

  it('reports what it could not write (a store failure, a message that is no entry) for redelivery', async () => {
    const failing = { ...deps, store: { table: 'supervisor', doc: { send: async () => Promise.reject(new Error('connect ECONNREFUSED')) } } };
    const event = sqsEvent(JSON.stringify(entry()), '{"not":"an entry"}', 'not json');
    const result = await retryAudits(failing as never, event);
    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(event.Records.map((r) => r.messageId).sort());
  });
});

describe('the local audit retry queue', () => {
  it('keeps deferred entries across a crash: the next start sends them again and they are written once', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'audit-retry-'));
    const e = entry();
    const noConsumer = new LocalAuditQueue({ dataDir, clock: { now: () => new Date() }, log: () => undefined, consumer: async () => new Promise(() => undefined) });
    await noConsumer.send({ ...e });
    // The process dies before the entry is written: only the journal is left.
    expect(readFileSync(path.join(dataDir, 'audit-retry.jsonl'), 'utf8')).toContain(e.audit_id);

    const delivered: string[] = [];
    const next = new LocalAuditQueue({
      dataDir,
      clock: { now: () => new Date() },
      log: () => undefined,
      consumer: async (event) => {
        delivered.push(...event.Records.map((r) => r.body));
        return retryAudits(deps as never, event);
      },
    });
    expect(await next.start()).toBe(1);
    const deadline = Date.now() + 10_000;
    while ((await recordsOf(e.resource_id!)).length === 0) {
      if (Date.now() > deadline) throw new Error('the deferred entry was not written');
      await new Promise((r) => setTimeout(r, 50));
    }
    await next.stop();
    expect(delivered).toHaveLength(1);
    expect(await recordsOf(e.resource_id!)).toHaveLength(1);
    // Everything written: the journal is cleared.
    expect(existsSync(path.join(dataDir, 'audit-retry.jsonl'))).toBe(false);
  });
});
