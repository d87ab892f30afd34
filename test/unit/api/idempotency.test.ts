import { beforeAll, describe, expect, it, inject } from 'vitest';
import * as z from 'zod';
import { ulid } from 'ulid';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { defineRoutes } from '../../../shared/platform/api/route.js';
import type { Operations } from '../../../shared/platform/api/types.js';

/**
 * The `Idempotency-Key` middleware, through the real handler factory and middleware stack, on a route
 * list of two test routes and the run's DynamoDB Local.
 */

const testRoutes = defineRoutes([
  {
    operationId: 'startWork',
    method: 'POST',
    path: '/api/v1/test/work',
    group: 'tasks',
    permission: 'tasks:create',
    summary: 'Starts work (test route)',
    body: z.strictObject({ n: z.number().int() }),
    status: 201,
    idempotent: true,
  },
  {
    operationId: 'plainWork',
    method: 'POST',
    path: '/api/v1/test/plain',
    group: 'tasks',
    permission: 'tasks:create',
    summary: 'Not idempotent (test route)',
    body: z.strictObject({ n: z.number().int() }),
    status: 201,
  },
]);

const { createHttpHandler } = await import('../../../shared/http.js');
const { installDeps } = await import('../../../shared/platform/runtime.js');
const { getConfig } = await import('../../../shared/platform/config.js');
const { LocalTokenSigner } = await import('../../../shared/platform/local/token-signer.js');
const { lambdaContext } = await import('../../../local/lambda-context.js');
const { conflict } = await import('../../../shared/platform/errors.js');
const { IDEMPOTENCY_TTL_SECONDS } = await import('../../../shared/platform/store/idempotency.js');
const { testStore } = await import('../../integration/auth/fixtures.js');
const { AuthService } = await import('../../../shared/auth/service.js');
const { UserRepository } = await import('../../../shared/auth/repo.js');
const { LoginAttemptRepository, SessionRepository } = await import('../../../shared/auth/sessions-repo.js');

class StepClock {
  offsetMs = 0;
  now() {
    return new Date(Date.now() + this.offsetMs);
  }
}
const clock = new StepClock();

let runs = 0;
let gate: Promise<void> | undefined;
const operations: Operations<typeof testRoutes> = {
  async startWork(req) {
    runs++;
    if (gate) await gate;
    if (req.body.n < 0) throw conflict('negative work is refused');
    return { data: { run: runs, n: req.body.n, by: req.principal?.userId }, message: 'Started' };
  },
  async plainWork(req) {
    runs++;
    return { data: { run: runs, n: req.body.n } };
  },
};
const handler = createHttpHandler('tasks', [testRoutes], operations);

let tokens: { a: string; b: string };

beforeAll(async () => {
  const store = testStore(inject('dynamodbEndpoint'));
  const deps = {
    config: getConfig(),
    store,
    signer: await LocalTokenSigner.create(null, 'supervisor'),
    clock,
    appSecret: async () => Buffer.alloc(32, 7),
  };
  installDeps(deps as never);
  const service = new AuthService(deps as never, {
    users: new UserRepository(store),
    sessions: new SessionRepository(store),
    attempts: new LoginAttemptRepository(store),
  });
  const login = async () => {
    const user = await service.createUser({ username: `idem-${ulid().toLowerCase()}`, password: 'a-long-enough-password', roles: ['user'] });
    return (await service.login(user.username, 'a-long-enough-password')).access_token;
  };
  tokens = { a: await login(), b: await login() };
});

async function post(path: string, body: unknown, options: { key?: string; token?: string } = {}): Promise<APIGatewayProxyStructuredResultV2> {
  const event = {
    version: '2.0',
    routeKey: `POST ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${options.token ?? tokens.a}`,
      ...(options.key !== undefined ? { 'idempotency-key': options.key } : {}),
    },
    body: JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: { requestId: ulid(), http: { method: 'POST', path, sourceIp: '127.0.0.1', protocol: 'HTTP/1.1', userAgent: 'test' } },
  } as unknown as APIGatewayProxyEventV2;
  return (await handler(event, lambdaContext('supervisor-tasks', 30_000))) as APIGatewayProxyStructuredResultV2;
}

const json = (res: APIGatewayProxyStructuredResultV2) => JSON.parse(String(res.body));

describe('Idempotency-Key', () => {
  it('replays the first answer for the same key and body, without running the work again', async () => {
    const key = ulid();
    const before = runs;
    const first = await post('/api/v1/test/work', { n: 1 }, { key });
    expect(first.statusCode).toBe(201);
    const second = await post('/api/v1/test/work', { n: 1 }, { key });
    expect(second.statusCode).toBe(201);
    expect(second.body).toBe(first.body);
    expect(second.headers?.['Idempotent-Replayed']).toBe('true');
    expect(runs - before).toBe(1);
  });

  it('answers 409 idempotency_conflict for the same key with another body, running nothing', async () => {
    const key = ulid();
    await post('/api/v1/test/work', { n: 1 }, { key });
    const before = runs;
    const other = await post('/api/v1/test/work', { n: 2 }, { key });
    expect(other.statusCode).toBe(409);
    expect(json(other).error).toBe('idempotency_conflict');
    expect(runs).toBe(before);
  });

  it('keeps keys apart per caller', async () => {
    const key = ulid();
    const a = await post('/api/v1/test/work', { n: 1 }, { key, token: tokens.a });
    const b = await post('/api/v1/test/work', { n: 1 }, { key, token: tokens.b });
    expect(json(a).data.by).not.toBe(json(b).data.by);
    expect(b.headers?.['Idempotent-Replayed']).toBeUndefined();
  });

  it('runs every request that has no key, and ignores the key on a route that does not honour it', async () => {
    const before = runs;
    await post('/api/v1/test/work', { n: 1 });
    await post('/api/v1/test/work', { n: 1 });
    const key = ulid();
    await post('/api/v1/test/plain', { n: 1 }, { key });
    const plain = await post('/api/v1/test/plain', { n: 1 }, { key });
    expect(plain.headers?.['Idempotent-Replayed']).toBeUndefined();
    expect(runs - before).toBe(4);
  });

  it('forgets a key whose first request failed, so that a retry runs', async () => {
    const key = ulid();
    const failed = await post('/api/v1/test/work', { n: -1 }, { key });
    expect(failed.statusCode).toBe(409);
    expect(json(failed).error).toBe('conflict');
    const before = runs;
    const retry = await post('/api/v1/test/work', { n: -1 }, { key });
    expect(retry.statusCode).toBe(409);
    expect(runs - before).toBe(1);
  });

  it('answers 409 while the first request with the key is still running', async () => {
    const key = ulid();
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const first = post('/api/v1/test/work', { n: 5 }, { key });
    const { eventually } = await import('../../support/client.js');
    await eventually(async () => (await testStore().doc.send(new GetCommand({ TableName: testStore().table, Key: idemKey(key) }))).Item, (item) => item !== undefined, 10_000, 10);
    const second = await post('/api/v1/test/work', { n: 5 }, { key });
    gate = undefined;
    open();
    expect(second.statusCode).toBe(409);
    expect(json(second).detail).toMatch(/still in progress/);
    expect((await first).statusCode).toBe(201);
    expect((await post('/api/v1/test/work', { n: 5 }, { key })).headers?.['Idempotent-Replayed']).toBe('true');
  });

  it('keeps a completed answer for 24 hours, then runs again', async () => {
    const key = ulid();
    await post('/api/v1/test/work', { n: 3 }, { key });
    const stored = (await testStore().doc.send(new GetCommand({ TableName: testStore().table, Key: idemKey(key) }))).Item!;
    expect(stored.state).toBe('completed');
    expect(stored.expires_at - Math.floor(Date.now() / 1000)).toBeGreaterThan(IDEMPOTENCY_TTL_SECONDS - 60);
    expect(stored.expires_at - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(IDEMPOTENCY_TTL_SECONDS);
    const before = runs;
    clock.offsetMs = (IDEMPOTENCY_TTL_SECONDS + 5) * 1000;
    try {
      const later = await post('/api/v1/test/work', { n: 3 }, { key });
      expect(later.headers?.['Idempotent-Replayed']).toBeUndefined();
      expect(runs - before).toBe(1);
    } finally {
      clock.offsetMs = 0;
    }
  });

  it('refuses a key longer than 255 characters (422)', async () => {
    const res = await post('/api/v1/test/work', { n: 1 }, { key: 'k'.repeat(256) });
    expect(res.statusCode).toBe(422);
    expect(json(res).errors).toEqual([{ path: 'Idempotency-Key', message: 'must be at most 255 characters' }]);
  });
});

/** The key scope the middleware builds: caller, operation, key. */
function idemKey(key: string) {
  const sub = JSON.parse(Buffer.from(tokens.a.split('.')[1], 'base64url').toString()).sub;
  return { pk: `IDEMPOTENCY#${sub}#startWork#${key}`, sk: 'IDEMPOTENCY' };
}
