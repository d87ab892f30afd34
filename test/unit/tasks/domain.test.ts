import { describe, it, expect } from 'vitest';
import { backoffSeconds, queueDelay, waitSeconds, BACKOFF_CAP_SECONDS, MAX_QUEUE_DELAY_SECONDS } from '../../../shared/tasks/transitions.js';
import { bucketIndex, changeDelta, createdDelta, DURATION_BUCKETS_MS, mergeDeltas, summarize, summarizeTasks, durationDelta, usageDelta } from '../../../shared/tasks/stats.js';
import { ownScope } from '../../../shared/tasks/service.js';
import { permissionsOf } from '../../../shared/platform/permissions.js';
import { percentile } from '../../../shared/platform/histogram.js';
import { canDelete, canEdit, TASK_STATUSES } from '../../../shared/tasks/status.js';
import { canCancel, canRetry, canTransition } from '../../../shared/tasks/transitions.js';
import { createTaskBody, updateTaskBody, listTasksQuery } from '../../../shared/tasks/model.js';
import { buildPrompt, defaultTitle } from '../../../shared/tasks/prompts.js';
import { codeBlocks, extractResult, truncateUtf8 } from '../../../shared/tasks/extract.js';
import { classify } from '../../../shared/tasks/provider-call.js';
import { routeTask, orderAgents } from '../../../shared/tasks/routing.js';
import { ProviderError, type ProviderRecord } from '../../../shared/providers/types.js';
import type { AgentRecord } from '../../../shared/agents/types.js';
import { PAYLOAD_SCHEMAS } from '../../../shared/tasks/payloads.js';
import { TASK_TYPES } from '../../../shared/tasks/status.js';

describe('retry backoff', () => {
  it('grows exponentially with equal jitter between half and all of the step', () => {
    expect(backoffSeconds(1, () => 0)).toBe(1);
    expect(backoffSeconds(1, () => 1)).toBe(2);
    expect(backoffSeconds(3, () => 0)).toBe(4);
    expect(backoffSeconds(3, () => 1)).toBe(8);
  });
  it('is capped, and never below a provider Retry-After, and never beyond what SQS can delay', () => {
    expect(backoffSeconds(30, () => 1)).toBe(BACKOFF_CAP_SECONDS);
    expect(backoffSeconds(1, () => 0, 42)).toBe(42);
    expect(backoffSeconds(1, () => 0, 5000)).toBe(MAX_QUEUE_DELAY_SECONDS);
    expect(queueDelay(1234.2)).toBe(900);
    expect(queueDelay(-3)).toBe(0);
    expect(queueDelay(1.2)).toBe(2);
  });
  it('waits for a quota reset, higher priorities first', () => {
    const now = 1_000_000;
    const high = waitSeconds('quota', 10, now + 60_000, now, () => 0);
    const low = waitSeconds('quota', 1, now + 60_000, now, () => 0);
    expect(high).toBe(60);
    expect(low).toBeGreaterThan(high);
    expect(waitSeconds('concurrency', 5, undefined, now, () => 0)).toBeGreaterThan(0);
    expect(waitSeconds('provider', 10, now + 30_000, now, () => 0)).toBe(30);
  });
});

describe('statistics counters', () => {
  it('buckets durations and interpolates percentiles inside a bucket', () => {
    expect(bucketIndex(0)).toBe(0);
    expect(bucketIndex(100)).toBe(0);
    expect(bucketIndex(101)).toBe(1);
    expect(bucketIndex(10_000_000)).toBe(DURATION_BUCKETS_MS.length);
    const buckets = [
      { le_ms: 100, count: 50 },
      { le_ms: 200, count: 50 },
      { le_ms: null, count: 0 },
    ];
    expect(percentile(buckets, 0.5)).toBe(100);
    expect(percentile(buckets, 0.75)).toBe(150);
    expect(percentile([{ le_ms: 100, count: 0 }], 0.5)).toBeNull();
    expect(percentile([{ le_ms: 100, count: 1 }, { le_ms: null, count: 9 }], 0.95)).toBe(100);
  });
  it('moves status and priority counts on a change and sums shards into the summary', () => {
    const a = { status: 'queued' as const, type: 'custom' as const, priority: 5 };
    const delta = changeDelta(a, { ...a, status: 'completed', priority: 7 });
    expect(delta).toEqual({ status_queued: -1, status_completed: 1, priority_5: -1, priority_7: 1 });
    const shards = [
      mergeDeltas(createdDelta({ ...a, status: 'pending' }), { status_pending: -1, status_completed: 1 }, usageDelta({ tokensIn: 10, tokensOut: 20, costUsd: 0.5 }), durationDelta(150)),
      mergeDeltas(createdDelta({ ...a, status: 'pending', type: 'bug_fix' }), { status_pending: -1, status_failed: 1 }, usageDelta({ tokensIn: 1, tokensOut: 2, costUsd: 0.25 })),
    ];
    const s = summarize(shards);
    expect(s.total).toBe(2);
    expect(s.by_status).toMatchObject({ pending: 0, completed: 1, failed: 1 });
    expect(s.by_type).toMatchObject({ custom: 1, bug_fix: 1 });
    expect(s.success_rate).toBe(0.5);
    expect(s.tokens).toEqual({ input: 11, output: 22, total: 33 });
    expect(s.cost_usd).toBe(0.75);
    expect(s.duration_ms.count).toBe(1);
    expect(s.duration_ms.mean).toBe(150);
    expect(s.attempts.total).toBe(2);
  });
  it('has no success rate before anything finished', () => {
    expect(summarize([]).success_rate).toBeNull();
  });
  it('computes the same summary from a caller\'s own tasks as the counters would hold for them', () => {
    const tasks = [
      { status: 'completed', type: 'custom', priority: 5, attempts: 2, tokens_in: 10, tokens_out: 20, cost_usd: 0.5, duration_ms: 150 },
      { status: 'failed', type: 'bug_fix', priority: 5, attempts: 1, tokens_in: 1, tokens_out: 2, cost_usd: 0.25, duration_ms: 90 },
      { status: 'queued', type: 'custom', priority: 3, attempts: 0, tokens_in: 0, tokens_out: 0, cost_usd: 0, duration_ms: null },
    ];
    const s = summarizeTasks(tasks);
    expect(s.total).toBe(3);
    expect(s.by_status).toMatchObject({ completed: 1, failed: 1, queued: 1, pending: 0 });
    expect(s.by_type).toMatchObject({ custom: 2, bug_fix: 1 });
    expect(s.by_priority).toMatchObject({ '5': 2, '3': 1 });
    expect(s.success_rate).toBe(0.5);
    expect(s.tokens).toEqual({ input: 11, output: 22, total: 33 });
    expect(s.cost_usd).toBe(0.75);
    // Only a completed task's duration is counted, as on the counters.
    expect(s.duration_ms).toMatchObject({ count: 1, mean: 150 });
    expect(s.attempts).toEqual({ total: 3, retried: 1 });
    expect(summarizeTasks([]).total).toBe(0);
  });
});

describe('list scope', () => {
  const principal = (role: string, userId = 'U1') => ({ userId, permissions: permissionsOf([role]) });
  it('narrows a user\'s list to their own tasks, read from the creator index', () => {
    expect(ownScope(principal('user'), { status: 'running' })).toEqual({ status: 'running', created_by: 'U1', own_only: true });
    expect(ownScope(principal('user'), { created_by: 'U1' })).toEqual({ created_by: 'U1', own_only: true });
    expect(ownScope(principal('user'), { created_by: 'U2' })).toBeUndefined();
  });
  it('leaves the filter as it is for holders of tasks:read_all', () => {
    for (const role of ['viewer', 'operator', 'admin']) expect(ownScope(principal(role), { created_by: 'U2' })).toEqual({ created_by: 'U2' });
  });
});

describe('status machine', () => {
  it('allows only the documented transitions', () => {
    expect(canTransition('pending', 'queued')).toBe(true);
    expect(canTransition('running', 'queued')).toBe(true);
    expect(canTransition('completed', 'pending')).toBe(false);
    expect(canTransition('failed', 'pending')).toBe(true);
    expect(TASK_STATUSES.filter(canCancel)).toEqual(['pending', 'queued', 'running']);
    expect(TASK_STATUSES.filter(canRetry)).toEqual(['failed', 'cancelled']);
    expect(TASK_STATUSES.filter(canEdit)).toEqual(['pending', 'queued']);
    expect(TASK_STATUSES.filter((s) => !canDelete(s))).toEqual(['running']);
  });
});

describe('task input', () => {
  it('applies defaults and checks the payload against its type', () => {
    const ok = createTaskBody.parse({ type: 'custom', payload: { prompt: 'hi' } });
    expect(ok).toMatchObject({ priority: 5, max_attempts: 3, timeout_seconds: 300, tags: [], metadata: {} });
    const bad = createTaskBody.safeParse({ type: 'pr_review', payload: { repository: 'r', title: 't', extra: 1 } });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toContain('payload.diff');
    expect(paths).toContain('payload.extra');
  });
  it('rejects out-of-range fields and unknown top-level fields', () => {
    for (const body of [
      { type: 'custom', payload: { prompt: 'x' }, priority: 11 },
      { type: 'custom', payload: { prompt: 'x' }, timeout_seconds: 901 },
      { type: 'custom', payload: { prompt: 'x' }, max_attempts: 0 },
      { type: 'custom', payload: { prompt: 'x' }, status: 'completed' },
      { type: 'custom', payload: { prompt: 'x' }, tags: ['a', 'a'] },
      { type: 'nope', payload: {} },
    ]) {
      expect(createTaskBody.safeParse(body).success, JSON.stringify(body)).toBe(false);
    }
    expect(updateTaskBody.safeParse({}).success).toBe(false);
    expect(listTasksQuery.safeParse({ limit: '101' }).success).toBe(false);
    expect(listTasksQuery.safeParse({ status: 'done' }).success).toBe(false);
  });
  it('has a payload schema and a prompt template for every type', () => {
    const samples: Record<string, Record<string, unknown>> = {
      pr_review: { repository: 'acme/api', title: 'Fix login', diff: '+++ b/a.ts\n+x' },
      issue_summary: { title: 'Crash on start', body: 'It crashes' },
      code_analysis: { code: 'let a = 1' },
      refactor: { code: 'let a = 1', goals: ['use const'] },
      bug_fix: { description: 'Off by one', error_message: 'IndexError' },
      feature: { description: 'Dark mode' },
      documentation: { subject: 'the API' },
      testing: { code: 'function f() {}' },
      security_audit: { code: 'eval(x)' },
      custom: { prompt: 'Say hi' },
    };
    for (const type of TASK_TYPES) {
      const payload = PAYLOAD_SCHEMAS[type].parse(samples[type]) as Record<string, unknown>;
      const prompt = buildPrompt(type, payload);
      expect(prompt.prompt.length, type).toBeGreaterThan(0);
      expect(prompt.system.length, type).toBeGreaterThan(0);
      expect(defaultTitle(type, payload).length).toBeLessThanOrEqual(120);
    }
    expect(buildPrompt('bug_fix', { description: 'Off by one', error_message: 'IndexError' }).prompt).toContain('IndexError');
  });
});

describe('result extraction', () => {
  it('pulls code blocks, a review verdict and audit severities', () => {
    expect(codeBlocks('a\n```ts\nconst x = 1;\n```\nb\n```\nplain\n```')).toEqual([
      { language: 'ts', code: 'const x = 1;' },
      { language: null, code: 'plain' },
    ]);
    expect(extractResult('pr_review', 'looks fine\nVERDICT: REQUEST_CHANGES').verdict).toBe('request_changes');
    expect(extractResult('security_audit', 'SEVERITY: HIGH\nSEVERITY: high\nSEVERITY: LOW').findings).toEqual({ critical: 0, high: 2, medium: 0, low: 1 });
  });
  it('truncates on UTF-8 byte length without splitting a character', () => {
    const t = truncateUtf8('ééé', 3);
    expect(t).toEqual({ text: 'é', truncated: true });
    expect(truncateUtf8('abc', 3)).toEqual({ text: 'abc', truncated: false });
  });
});

describe('error classification', () => {
  it('keeps a provider error as it is and hides other exception texts', () => {
    expect(classify(new ProviderError('rate_limited', 'slow down', true, 429, 3))).toEqual({ code: 'rate_limited', message: 'slow down', retryable: true, retryAfterSeconds: 3 });
    expect(classify(new ProviderError('authentication_failed', 'bad key', false, 401))).toMatchObject({ retryable: false, message: 'bad key' });
    const other = classify(new Error('ECONNRESET at socket 0x1234 /secret/path'));
    expect(other.message).not.toContain('secret');
    expect(other.retryable).toBe(true);
  });
});

const provider = (id: string, type: ProviderRecord['type'] = 'openai'): ProviderRecord => ({
  provider_id: id,
  type,
  name: id,
  model: 'm',
  pricing: { input_per_million: 1, output_per_million: 2 },
  capabilities: [],
  priority: 100,
  enabled: true,
  created_by: 'x',
  created_at: '',
  updated_at: '',
});
const agent = (id: string, providerId: string, extra: Partial<AgentRecord> = {}): AgentRecord => ({
  agent_id: id,
  name: id,
  provider_id: providerId,
  quota: { window: 'hourly', max_requests: 100, max_tokens: null },
  max_concurrency: 2,
  priority: 50,
  enabled: true,
  created_by: 'x',
  created_at: '',
  updated_at: '',
  ...extra,
});

describe('routing strategy', () => {
  it('runs a task that names an agent on that agent only', () => {
    const r = routeTask({ task: { agent_id: 'A', provider_id: null }, agents: [agent('A', 'p1'), agent('B', 'p1')], eligible: [provider('p1')], usage: new Map() });
    expect('candidates' in r && r.candidates.map((c) => c.agent?.agent_id)).toEqual(['A']);
  });
  it('makes a named provider that is not eligible a retryable wait, never a silent switch', () => {
    const r = routeTask({ task: { agent_id: null, provider_id: 'p1' }, agents: [], eligible: [provider('p2')], usage: new Map() });
    expect('failure' in r && r.failure).toMatchObject({ code: 'provider_unavailable', retryable: true });
  });
  it('uses a provider without agents directly, and a disabled agent never', () => {
    const r = routeTask({ task: { agent_id: null, provider_id: null }, agents: [agent('A', 'p1', { enabled: false })], eligible: [provider('p1'), provider('p2')], usage: new Map() });
    expect('candidates' in r && r.candidates.map((c) => `${c.provider.provider_id}:${c.agent?.agent_id ?? '-'}`)).toEqual(['p2:-']);
    const disabled = routeTask({ task: { agent_id: 'A', provider_id: null }, agents: [agent('A', 'p1', { enabled: false })], eligible: [provider('p1')], usage: new Map() });
    expect('failure' in disabled && disabled.failure.retryable).toBe(false);
  });
  it('orders agents by priority, then quota headroom, then least recently used', () => {
    const usage = new Map([
      ['A', { requests: 90, tokens: 0 }],
      ['B', { requests: 10, tokens: 0 }],
    ]);
    expect(orderAgents([agent('A', 'p'), agent('B', 'p'), agent('C', 'p', { priority: 90 })], usage).map((a) => a.agent_id)).toEqual(['C', 'B', 'A']);
  });
});
