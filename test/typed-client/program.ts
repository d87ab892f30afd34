/**
 * A small program that calls the API through the typed client (client/index.ts) the way an
 * integrator would. test/typed-client/typed-client.test.ts type-checks it with its own strict
 * tsconfig and runs it against the suite's local runtime. Standalone:
 *   npx tsx test/typed-client/program.ts http://127.0.0.1:3000 <username> <password>
 */
import { createSupervisorClient, type SupervisorClient } from '../../client/index.js';

export interface ScenarioResult {
  taskId: string;
  taskStatus: string;
  taskOutput: string;
  executionId: string;
  executionStatus: string;
  stepStatuses: string[];
  pages: number;
  pagedTaskIds: string[];
  refreshed: boolean;
  /** The refresh token held when the program logged out. */
  lastRefreshToken: string;
}

type Log = (line: string) => void;
type Task = Awaited<ReturnType<typeof getTask>>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not done after ${timeoutMs} ms (last seen: ${JSON.stringify(value).slice(0, 500)})`);
    await sleep(200);
  }
}

async function getTask(client: SupervisorClient, taskId: string) {
  const { data, error, response } = await client.api.GET('/api/v1/tasks/{task_id}', { params: { path: { task_id: taskId } } });
  if (!data) throw new Error(`GET task ${taskId}: ${response.status} ${error?.detail ?? ''}`);
  return data.data;
}

async function createTask(client: SupervisorClient, tag: string, prompt: string) {
  const { data, error, response } = await client.api.POST('/api/v1/tasks', {
    body: { type: 'custom', provider_id: 'local', title: `typed client: ${prompt}`, payload: { prompt }, tags: [tag] },
  });
  if (!data) throw new Error(`POST task: ${response.status} ${error?.detail ?? ''}`);
  return data.data;
}

export async function scenario(baseUrl: string, username: string, password: string, log: Log = () => undefined): Promise<ScenarioResult> {
  // 1. Log in, then continue with a client whose access token the server refuses: the first call
  //    answers 401, the client renews its tokens with the refresh token and sends the call again.
  const first = createSupervisorClient({ baseUrl });
  const login = await first.login(username, password);
  log(`logged in as ${login.user.username} (${login.user.roles.join(', ')})`);
  let renewals = 0;
  const client = createSupervisorClient({
    baseUrl,
    tokens: { access_token: `${login.access_token}x`, refresh_token: login.refresh_token },
    onTokens: () => renewals++,
  });
  // Two calls at once: both are refused, one refresh serves both (a second would reuse a rotated token).
  const [me, quota] = await Promise.all([client.api.GET('/auth/me'), client.api.GET('/api/v1/agents/quota/status')]);
  if (!me.data) throw new Error(`GET /auth/me: ${me.response.status}`);
  if (!quota.data) throw new Error(`GET quota: ${quota.response.status}`);
  const refreshed = renewals === 1 && client.tokens()?.refresh_token !== login.refresh_token;
  log(`me: ${me.data.data.user_id}, tokens renewed: ${refreshed} (${renewals} refresh)`);

  // 2. Create a task and follow it until it ends (the local provider answers offline).
  const tag = `typed-client-${Date.now().toString(36)}`;
  const created = await createTask(client, tag, 'Summarise what a typed client buys an integrator.');
  log(`task ${created.task_id} ${created.status}`);
  const task: Task = await until(`task ${created.task_id}`, () => getTask(client, created.task_id), (t) => ['completed', 'failed', 'cancelled'].includes(t.status));
  const output = task.result?.output;
  if (typeof output !== 'string') throw new Error(`task ${task.task_id} ended ${task.status} without output: ${task.error?.message ?? ''}`);
  log(`task ${task.task_id} ${task.status}: ${output.slice(0, 60)}`);

  // 3. Run a two-step workflow, the second step reading the first one's output.
  const workflow = await client.api.POST('/api/v1/workflows', {
    body: {
      name: `typed-client-${tag}`,
      steps: [
        { id: 'plan', type: 'custom', provider_id: 'local', payload: { prompt: 'List three risks of the change.' } },
        { id: 'review', type: 'custom', provider_id: 'local', depends_on: ['plan'], payload: { prompt: 'Review: {{steps.plan.output}}' } },
      ],
    },
  });
  if (!workflow.data) throw new Error(`POST workflow: ${workflow.response.status} ${workflow.error?.detail ?? ''}`);
  const workflowId = workflow.data.data.workflow_id;
  const started = await client.api.POST('/api/v1/workflows/{workflow_id}/execute', { params: { path: { workflow_id: workflowId } }, body: { triggered_by: 'typed client' } });
  if (!started.data) throw new Error(`execute: ${started.response.status} ${started.error?.detail ?? ''}`);
  const executionId = started.data.data.execution_id;
  const execution = await until(
    `execution ${executionId}`,
    async () => {
      const res = await client.api.GET('/api/v1/workflows/{workflow_id}/executions/{execution_id}', {
        params: { path: { workflow_id: workflowId, execution_id: executionId } },
      });
      if (!res.data) throw new Error(`GET execution: ${res.response.status}`);
      return res.data.data;
    },
    (e) => ['completed', 'failed', 'cancelled'].includes(e.status),
  );
  log(`execution ${executionId} ${execution.status}: ${execution.steps.map((s) => `${s.step_id}=${s.status}`).join(' ')}`);

  // 4. Page the tasks carrying this run's tag, one per page, following next_cursor to the end.
  await createTask(client, tag, 'A second task, so the list has two pages.');
  const pagedTaskIds: string[] = [];
  let pages = 0;
  let cursor: string | undefined;
  do {
    const page = await client.api.GET('/api/v1/tasks', { params: { query: { tag, limit: 1, ...(cursor ? { cursor } : {}) } } });
    if (!page.data) throw new Error(`GET tasks: ${page.response.status} ${page.error?.detail ?? ''}`);
    pages++;
    for (const item of page.data.data.items) pagedTaskIds.push(item.task_id);
    cursor = page.data.data.next_cursor ?? undefined;
  } while (cursor && pages < 10);
  log(`paged ${pagedTaskIds.length} tasks in ${pages} pages`);

  const lastRefreshToken = client.tokens()?.refresh_token ?? '';
  await client.logout();
  return {
    taskId: task.task_id,
    taskStatus: task.status,
    taskOutput: output,
    executionId,
    executionStatus: execution.status,
    stepStatuses: execution.steps.map((s) => s.status),
    pages,
    pagedTaskIds,
    refreshed,
    lastRefreshToken,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [baseUrl, username, password] = process.argv.slice(2);
  if (!baseUrl || !username || !password) {
    console.error('usage: tsx test/typed-client/program.ts BASE_URL USERNAME PASSWORD');
    process.exit(2);
  }
  scenario(baseUrl, username, password, console.log).then(
    (result) => console.log(JSON.stringify(result, null, 2)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
