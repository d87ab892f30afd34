import net from 'node:net';
import { ulid } from 'ulid';
import { expect } from 'vitest';
import { call, eventually, type Session } from '../../support/client.js';

export const FINISHED = ['completed', 'failed', 'cancelled'];

let counter = 0;
/** A workflow name no other test uses. */
export const uniqueName = (label: string) => `${label}-${ulid().toLowerCase()}-${counter++}`;

/** A `custom` step on the given provider (the runtime's `local` one unless stated). */
export function step(id: string, extra: Record<string, unknown> = {}) {
  return { id, type: 'custom', provider_id: 'local', payload: { prompt: `Step ${id}: summarise the plan.` }, ...extra };
}

export async function createWorkflow(token: string, definition: Record<string, unknown>): Promise<string> {
  const res = await call('POST', '/api/v1/workflows', { token, body: { name: uniqueName('wf'), ...definition } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.data.workflow_id as string;
}

export async function execute(token: string, workflowId: string, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const res = await call('POST', `/api/v1/workflows/${workflowId}/execute`, { token, body, headers });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.data as Execution;
}

export interface StepView {
  step_id: string;
  status: string;
  task_id: string | null;
  task_ids: string[];
  attempts: number;
  started_at: string | null;
  completed_at: string | null;
  output: string | null;
  error: { code: string; message: string } | null;
  skip_reason: string | null;
  retry_at: string | null;
}

export interface Execution {
  execution_id: string;
  workflow_id: string;
  workflow_version: number;
  status: string;
  error: { code: string; message: string } | null;
  output: Record<string, string> | null;
  started_at: string | null;
  completed_at: string | null;
  steps: StepView[];
  progress: Record<string, number>;
}

export async function getExecution(token: string, workflowId: string, executionId: string): Promise<Execution> {
  const res = await call('GET', `/api/v1/workflows/${workflowId}/executions/${executionId}`, { token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.data as Execution;
}

export function waitForExecution(token: string, workflowId: string, executionId: string, predicate: (e: Execution) => boolean = (e) => FINISHED.includes(e.status), timeoutMs = 60_000) {
  return eventually(() => getExecution(token, workflowId, executionId), predicate, timeoutMs, 150);
}

export const stepOf = (e: Execution, id: string) => e.steps.find((s) => s.step_id === id)!;

/** Most steps whose [start, end] intervals overlap at one instant. */
export function peakConcurrency(steps: StepView[]): number {
  const edges: Array<[number, number]> = [];
  for (const s of steps) {
    if (!s.started_at || !s.completed_at) continue;
    edges.push([Date.parse(s.started_at), 1], [Date.parse(s.completed_at), -1]);
  }
  // An end at the same instant as a start is counted first: touching intervals do not overlap.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let peak = 0;
  for (const [, delta] of edges) {
    now += delta;
    peak = Math.max(peak, now);
  }
  return peak;
}

/**
 * A provider of the local (offline, deterministic) type whose streamed answer is slowed down: each
 * chunk of about 64 characters waits `chunkDelayMs` (an answer is a few hundred characters).
 */
export async function registerSlowProvider(admin: Session, chunkDelayMs: number): Promise<string> {
  const id = `slow-${ulid().toLowerCase().slice(-10)}`;
  const res = await call('POST', `/api/v1/providers/${id}/register`, {
    token: admin.token,
    body: { type: 'local', name: `slow local (${chunkDelayMs} ms per chunk)`, settings: { chunk_delay_ms: chunkDelayMs } },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return id;
}

/** A port nothing listens on (bound and released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** An OpenAI-compatible provider whose endpoint is down (connection refused): its calls fail. */
export async function registerDownProvider(admin: Session): Promise<string> {
  const id = `down-${ulid().toLowerCase().slice(-10)}`;
  const res = await call('POST', `/api/v1/providers/${id}/register`, {
    token: admin.token,
    body: {
      type: 'openai',
      name: 'unreachable endpoint',
      base_url: `http://127.0.0.1:${await closedPort()}/v1`,
      model: 'gpt-test',
      pricing: { input_per_million: 1, output_per_million: 2 },
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return id;
}
