import { beforeAll, describe, expect, it, inject } from 'vitest';
import { ulid } from 'ulid';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/**
 * A crash between an idempotent request's write and its answer (kill -9): the retry with the same
 * `Idempotency-Key`, once the claim may be taken over, answers what the first attempt stored instead of
 * creating it again. Through the real tasks handler and middleware stack, on the run's DynamoDB Local;
 * the crash is a queue send that never returns (nothing after the task's write runs).
 */

const { createHttpHandler } = await import('../../../shared/http.js');
const { taskRoutes, taskOperations } = await import('../../../shared/tasks/routes.js');
const { installDeps } = await import('../../../shared/platform/runtime.js');
const { getConfig } = await import('../../../shared/platform/config.js');
const { LocalTokenSigner } = await import('../../../shared/platform/local/token-signer.js');
const { lambdaContext } = await import('../../../local/lambda-context.js');
const { IN_PROGRESS_EXPIRY_SECONDS } = await import('../../../shared/platform/store/idempotency.js');
const { TaskRepository } = await import('../../../shared/tasks/repo.js');
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

/** The injected fault: once `crashAfter` sends have gone through, every further send hangs for good. */
const queue = {
  sent: 0,
  crashAfter: Infinity,
  async send() {
    if (this.sent >= this.crashAfter) return new Promise<void>(() => undefined);
    this.sent++;
  },
  async check() {
    return { ok: true };
  },
};

const handler = createHttpHandler('tasks', [taskRoutes], taskOperations as never);
let token: string;
let userId: string;
let store: ReturnType<typeof testStore>;

beforeAll(async () => {
  store = testStore(inject('dynamodbEndpoint'));
  const deps = {
    config: getConfig(),
    store,
    queue,
    connections: { post: async () => undefined, delete: async () => undefined },
    events: { publish: async () => undefined },
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
  const user = await service.createUser({ username: `crash-${ulid().toLowerCase()}`, password: 'a-long-enough-password', roles: ['user'] });
  userId = user.user_id;
  token = (await service.login(user.username, 'a-long-enough-password')).access_token;
});

function post(path: string, body: unknown, key: string): Promise<APIGatewayProxyStructuredResultV2> {
  const event = {
    version: '2.0',
    routeKey: `POST ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': key },
    body: JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: { requestId: ulid(), http: { method: 'POST', path, sourceIp: '127.0.0.1', protocol: 'HTTP/1.1', userAgent: 'test' } },
  } as unknown as APIGatewayProxyEventV2;
  return handler(event, lambdaContext('supervisor-tasks', 30_000)) as Promise<APIGatewayProxyStructuredResultV2>;
}

const json = (res: APIGatewayProxyStructuredResultV2) => JSON.parse(String(res.body));

async function tasksOfUser(title: string) {
  const page = await new TaskRepository(store).list({ created_by: userId }, 100);
  return page.items.filter((t) => t.title === title);
}

/** Sends the request, lets it "crash" once its write is stored, and moves the clock past the takeover age. */
async function crashAfterWrite(path: string, body: unknown, key: string, sendsBeforeCrash: number, stored: () => Promise<boolean>) {
  queue.crashAfter = queue.sent + sendsBeforeCrash;
  void post(path, body, key);
  const deadline = Date.now() + 10_000;
  while (!(await stored())) {
    if (Date.now() > deadline) throw new Error('the first attempt stored nothing');
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 100));
  queue.crashAfter = Infinity;
  clock.offsetMs += (IN_PROGRESS_EXPIRY_SECONDS + 5) * 1000;
}

describe('Idempotency-Key after a crash', () => {
  it('POST /tasks: the retry after the takeover age answers the stored task; one task, then replays', async () => {
    const key = ulid();
    const title = `crash ${key}`;
    const body = { type: 'custom', title, payload: { prompt: 'once only' } };
    await crashAfterWrite('/api/v1/tasks', body, key, 0, async () => (await tasksOfUser(title)).length > 0);
    // While the claim is young, the retry is told the first attempt is still running.
    clock.offsetMs -= (IN_PROGRESS_EXPIRY_SECONDS + 5) * 1000;
    expect((await post('/api/v1/tasks', body, key)).statusCode).toBe(409);
    clock.offsetMs += (IN_PROGRESS_EXPIRY_SECONDS + 5) * 1000;

    const retry = await post('/api/v1/tasks', body, key);
    expect(retry.statusCode).toBe(201);
    const tasks = await tasksOfUser(title);
    expect(tasks).toHaveLength(1);
    expect(json(retry).data.task_id).toBe(tasks[0].task_id);
    // The first attempt never queued it; the retry did.
    expect(tasks[0].status).toBe('queued');

    const replay = await post('/api/v1/tasks', body, key);
    expect(replay.headers?.['Idempotent-Replayed']).toBe('true');
    expect(replay.body).toBe(retry.body);
    expect(await tasksOfUser(title)).toHaveLength(1);
  });

  it('POST /providers/execute/batch: a batch cut short by a crash is completed, not doubled', async () => {
    const key = ulid();
    const title = `batch ${key}`;
    const items = Array.from({ length: 4 }, (_, i) => ({ type: 'custom', title, payload: { prompt: `item ${i}` } }));
    const body = { items, max_concurrency: 2, wait_seconds: 0 };
    await crashAfterWrite('/api/v1/providers/execute/batch', body, key, 1, async () => (await tasksOfUser(title)).length >= 2);
    const before = await tasksOfUser(title);
    expect(before.length).toBeGreaterThanOrEqual(2);

    const retry = await post('/api/v1/providers/execute/batch', body, key);
    expect(retry.statusCode).toBe(202);
    const after = await tasksOfUser(title);
    expect(after).toHaveLength(4);
    expect(new Set(after.map((t) => t.batch_id)).size).toBe(1);
    expect(json(retry).data.batch_id).toBe(after[0].batch_id);
    expect(json(retry).data.items.map((i: { task_id: string }) => i.task_id).sort()).toEqual(after.map((t) => t.task_id).sort());
  });

  it('the same key with another body after the crash is a new request: 409 idempotency_conflict while the first is young', async () => {
    const key = ulid();
    const title = `other ${key}`;
    await crashAfterWrite('/api/v1/tasks', { type: 'custom', title, payload: { prompt: 'a' } }, key, 0, async () => (await tasksOfUser(title)).length > 0);
    clock.offsetMs -= (IN_PROGRESS_EXPIRY_SECONDS + 5) * 1000;
    const other = await post('/api/v1/tasks', { type: 'custom', title, payload: { prompt: 'b' } }, key);
    clock.offsetMs += (IN_PROGRESS_EXPIRY_SECONDS + 5) * 1000;
    expect(other.statusCode).toBe(409);
    expect(json(other).error).toBe('idempotency_conflict');
  });
});
