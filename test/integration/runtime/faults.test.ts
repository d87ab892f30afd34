import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../../local/dynamodb-local.js';
import { request } from '../auth/fixtures.js';

/**
 * Crashes and outages against real `npm start` child processes, each on a data directory of its own:
 * a runtime killed (-9, with its DynamoDB Local: the whole process group, like a machine or container
 * going away) with tasks and a workflow run in flight, then started again; SIGTERM with tasks longer
 * than the drain; DynamoDB Local killed under a running runtime.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const TSX = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const PASSWORD = 'faults-admin-password';
const temps: string[] = [];
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'supervisor-faults-'));
  temps.push(dir);
  return dir;
}

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  waitFor: (text: string | RegExp, timeoutMs?: number) => Promise<void>;
}

/** A child process in a process group of its own (killing the group takes its DynamoDB Local too). */
function run(script: string, args: string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, [TSX, script, ...args], {
    cwd: ROOT,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    async waitFor(text, timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(typeof text === 'string' ? out.includes(text) : text.test(out))) {
        if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode}) before printing ${text}:\n${out}`);
        if (Date.now() > deadline) throw new Error(`no ${text} within ${timeoutMs} ms:\n${out}`);
        await sleep(50);
      }
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    try {
      last = await read();
      if (done(last)) return last;
    } catch {
      /* not answering yet */
    }
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms; last: ${JSON.stringify(last)?.slice(0, 2000)}`);
    await sleep(250);
  }
}

/** A runtime on `dataDir`: started, with an admin's token and a slow local provider (about 6 chunks × chunkDelayMs per task). */
class Runtime {
  token = '';
  private constructor(
    readonly proc: Run,
    readonly baseUrl: string,
  ) {}

  static async start(dataDir: string, args: string[] = []): Promise<Runtime> {
    const port = await freePort();
    const proc = run('bin/local.ts', ['--port', String(port), ...args], { DATA_DIR: dataDir });
    await proc.waitFor('Supervisor is running');
    return new Runtime(proc, `http://127.0.0.1:${port}`);
  }

  async setUp(dataDir: string, chunkDelayMs: number): Promise<void> {
    const create = run('bin/admin-create.ts', ['--username', 'faults-admin', '--password', PASSWORD], { DATA_DIR: dataDir });
    expect(await create.exited, create.output()).toBe(0);
    await this.login();
    const provider = await this.api('POST', '/api/v1/providers/slow/register', { type: 'local', name: 'slow', settings: { chunk_delay_ms: chunkDelayMs } });
    expect(provider.status, provider.text).toBe(201);
  }

  async login(): Promise<void> {
    const res = await request('POST', '/auth/login', { baseUrl: this.baseUrl, body: { username: 'faults-admin', password: PASSWORD } });
    expect(res.status, res.text).toBe(200);
    this.token = res.body.data.access_token;
  }

  api(method: string, p: string, body?: unknown) {
    return request(method, p, { baseUrl: this.baseUrl, token: this.token, body });
  }

  async task(id: string) {
    const res = await this.api('GET', `/api/v1/tasks/${id}`);
    if (res.status !== 200) throw new Error(`${res.status} ${res.text}`);
    return res.body.data as { status: string; attempts: number };
  }

  async sessions(id: string) {
    const res = await this.api('GET', `/api/v1/tasks/${id}/sessions?limit=100`);
    expect(res.status, res.text).toBe(200);
    return res.body.data.items as { outcome: string; attempt: number }[];
  }

  async createTasks(n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await this.api('POST', '/api/v1/tasks', { type: 'custom', payload: { prompt: `slow job ${i}` }, provider_id: 'slow' });
      expect(res.status, res.text).toBe(201);
      ids.push(res.body.data.task_id);
    }
    return ids;
  }

  /**
   * SIGTERM to the runtime's own process (its pid in runtime.json), not to the tsx wrapper: tsx relays a
   * signal only if the child acknowledges it within 30 ms, and SIGKILLs it otherwise (exit 143).
   */
  async terminate(dataDir: string): Promise<number | null> {
    const { pid } = JSON.parse(readFileSync(path.join(dataDir, 'runtime.json'), 'utf8')) as { pid: number };
    process.kill(pid, 'SIGTERM');
    return this.proc.exited;
  }

  /** kill -9 of the runtime and its DynamoDB Local. */
  async crash(): Promise<void> {
    process.kill(-this.proc.child.pid!, 'SIGKILL');
    await this.proc.exited;
    await sleep(200);
  }
}

describe('a runtime killed with -9, then started again on its data directory', () => {
  it('gives the tasks that were running back at once: all complete within 30 s of the restart, none twice', { timeout: 300_000 }, async () => {
    const dataDir = tempDir();
    const first = await Runtime.start(dataDir);
    await first.setUp(dataDir, 2000);
    const ids = await first.createTasks(3);
    await until(() => Promise.all(ids.map((id) => first.task(id))), (ts) => ts.every((t) => t.status === 'running'), 30_000, 'all running');
    await first.crash();

    const second = await Runtime.start(dataDir);
    const restarted = Date.now();
    await second.login();
    await until(() => Promise.all(ids.map((id) => second.task(id))), (ts) => ts.every((t) => t.status === 'completed'), 30_000, 'all completed');
    const recoveryMs = Date.now() - restarted;
    console.log(`kill -9 with 3 tasks running: all completed ${recoveryMs} ms after the restart`);
    expect(second.proc.output()).toContain('recovered 3 task(s) left running by a stopped runtime');
    for (const id of ids) {
      const sessions = await second.sessions(id);
      expect(sessions.filter((s) => s.outcome === 'completed'), id).toHaveLength(1);
      expect(sessions.filter((s) => s.outcome === 'interrupted'), id).toHaveLength(1);
      expect((await second.task(id)).attempts).toBe(2);
    }
    await second.crash();
  });

  it('resumes the workflow run that was in flight: it completes and no step runs twice', { timeout: 300_000 }, async () => {
    const dataDir = tempDir();
    const first = await Runtime.start(dataDir);
    await first.setUp(dataDir, 1000);
    const wf = await first.api('POST', '/api/v1/workflows', {
      name: 'crash-safe',
      steps: [
        { id: 'a', type: 'custom', provider_id: 'slow', payload: { prompt: 'first step' } },
        { id: 'b', type: 'custom', provider_id: 'slow', payload: { prompt: 'second step' }, depends_on: ['a'] },
      ],
    });
    expect(wf.status, wf.text).toBe(201);
    const workflowId = wf.body.data.workflow_id;
    const started = await first.api('POST', `/api/v1/workflows/${workflowId}/execute`, {});
    expect(started.status, started.text).toBe(202);
    const executionId = started.body.data.execution_id;
    const execution = (rt: Runtime) => rt.api('GET', `/api/v1/workflows/${workflowId}/executions/${executionId}`).then((r) => r.body.data as { status: string; steps: { step_id: string; status: string; task_ids: string[] }[] });
    await until(() => execution(first), (e) => e.steps.find((s) => s.step_id === 'a')?.status === 'running', 60_000, 'step a running');
    await first.crash();

    const second = await Runtime.start(dataDir);
    await second.login();
    expect(second.proc.output()).toContain('resumed 1 workflow execution(s)');
    const done = await until(() => execution(second), (e) => ['completed', 'failed', 'cancelled'].includes(e.status), 120_000, 'run finished');
    expect(done.status, JSON.stringify(done)).toBe('completed');
    for (const step of done.steps) {
      expect(step.status, step.step_id).toBe('completed');
      expect(step.task_ids, step.step_id).toHaveLength(1);
      const sessions = await second.sessions(step.task_ids[0]);
      expect(sessions.filter((s) => s.outcome === 'completed'), step.step_id).toHaveLength(1);
    }
    await second.crash();
  });
});

describe('SIGTERM with tasks longer than the drain', () => {
  it('hands them back to the queue as interrupted; they complete after the restart', { timeout: 300_000 }, async () => {
    const dataDir = tempDir();
    const first = await Runtime.start(dataDir, ['--drain-seconds', '1']);
    await first.setUp(dataDir, 2000);
    const ids = await first.createTasks(2);
    await until(() => Promise.all(ids.map((id) => first.task(id))), (ts) => ts.every((t) => t.status === 'running'), 30_000, 'all running');
    expect(await first.terminate(dataDir), first.proc.output()).toBe(0);
    expect(first.proc.output()).toMatch(/drained \d+ request\(s\) and 0 task\(s\); handed 2 task\(s\) back to the queue/);

    const second = await Runtime.start(dataDir);
    await second.login();
    for (const id of ids) {
      // Handed back: queued, the attempt recorded as interrupted (read before the new attempt ends).
      const sessions = await second.sessions(id);
      expect(sessions.map((s) => s.outcome), id).toContain('interrupted');
    }
    await until(() => Promise.all(ids.map((id) => second.task(id))), (ts) => ts.every((t) => t.status === 'completed'), 30_000, 'all completed');
    expect(await second.terminate(dataDir), second.proc.output()).toBe(0);
  });
});

describe('DynamoDB Local killed under a running runtime', () => {
  it('detailed health shows the table down within seconds; the runtime restarts it; requests succeed again; no data lost', { timeout: 300_000 }, async () => {
    const dataDir = tempDir();
    const rt = await Runtime.start(dataDir);
    await rt.setUp(dataDir, 0);
    const [id] = await rt.createTasks(1);
    await until(() => rt.task(id), (t) => t.status === 'completed', 30_000, 'task completed');
    const state = JSON.parse(readFileSync(path.join(dataDir, 'runtime.json'), 'utf8')) as { dynamodb_pid: number };

    process.kill(state.dynamodb_pid, 'SIGKILL');
    const killed = Date.now();
    const down = await until(
      () => rt.api('GET', '/api/v1/health/detailed'),
      (r) => r.status === 503,
      10_000,
      'health shows the table down',
    );
    const seenDownMs = Date.now() - killed;
    // Authenticated on the token alone: the answer is the health check's own, naming the table.
    expect(down.body.error).toBe('dependency_unavailable');
    expect(down.body.errors).toContainEqual(expect.objectContaining({ path: 'table', message: expect.stringMatching(/DynamoDB Local (down|restarting)/) }));
    expect((await request('GET', '/api/v1/health', { baseUrl: rt.baseUrl })).status).toBe(200);
    await rt.proc.waitFor(/DynamoDB Local exited \(code none, signal SIGKILL\); restarting it/, 10_000);

    const back = await until(() => rt.task(id), (t) => t.status === 'completed', 60_000, 'the task read again');
    const recoveredMs = Date.now() - killed;
    console.log(`DynamoDB Local kill -9: health showed it down after ${seenDownMs} ms, first successful request after ${recoveredMs} ms`);
    console.log(rt.proc.output().split('\n').filter((l) => l.includes('DynamoDB Local')).join('\n'));
    expect(back.status).toBe('completed');
    await rt.proc.waitFor('DynamoDB Local restarted', 10_000);
    expect((await rt.api('GET', '/api/v1/health/detailed')).status).toBe(200);
    // Writes work again too.
    const [after] = await rt.createTasks(1);
    await until(() => rt.task(after), (t) => t.status === 'completed', 30_000, 'a new task completed');
    expect(await rt.terminate(dataDir), rt.proc.output()).toBe(0);
  });
});
