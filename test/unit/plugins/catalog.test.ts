import { describe, expect, it } from 'vitest';
import { CATALOG, configJsonSchema, matchesPattern, nextStatus, PLUGIN_NAMES, PLUGIN_STATUSES, retryDelayMs, type PluginStatus } from '../../../shared/plugins/catalog.js';
import { eventOf, takes } from '../../../shared/plugins/delivery.js';
import { pullRequestOf, webhookPayload } from '../../../shared/plugins/senders.js';
import type { EventRecord, PluginRecord } from '../../../shared/plugins/repo.js';

describe('plugin catalog', () => {
  it('has semver versions, a JSON Schema per plugin with secret fields write-only', () => {
    for (const name of PLUGIN_NAMES) {
      const def = CATALOG[name];
      expect(def.version).toMatch(/^\d+\.\d+\.\d+$/);
      const schema = configJsonSchema(def) as { type: string; properties: Record<string, { writeOnly?: boolean }> };
      expect(schema.type).toBe('object');
      for (const field of def.secretFields) expect(schema.properties[field].writeOnly).toBe(true);
    }
  });

  it('allows exactly the lifecycle transitions', () => {
    const table: Record<string, (PluginStatus | undefined)[]> = {};
    for (const from of [undefined, ...PLUGIN_STATUSES]) {
      table[String(from)] = (['discover', 'configure', 'activate', 'deactivate', 'unload', 'fail'] as const).map((a) => nextStatus(from, a));
    }
    expect(table).toEqual({
      undefined: ['discovered', undefined, undefined, undefined, undefined, undefined],
      discovered: [undefined, 'loaded', undefined, undefined, 'unloaded', undefined],
      loaded: [undefined, 'loaded', 'active', undefined, 'unloaded', undefined],
      active: [undefined, 'active', undefined, 'inactive', 'unloaded', 'error'],
      inactive: [undefined, 'inactive', 'active', undefined, 'unloaded', undefined],
      error: [undefined, 'error', 'active', 'inactive', 'unloaded', undefined],
      unloaded: ['discovered', undefined, undefined, undefined, undefined, undefined],
    });
  });

  it('matches event patterns', () => {
    expect(matchesPattern('*', 'task.completed')).toBe(true);
    expect(matchesPattern('task.*', 'task.completed')).toBe(true);
    expect(matchesPattern('task.*', 'tasks.completed')).toBe(false);
    expect(matchesPattern('task.completed', 'task.failed')).toBe(false);
  });

  it('backs off exponentially with jitter in [50 %, 150 %), capped at an hour', () => {
    expect(retryDelayMs(1, 1000, 0)).toBe(500);
    expect(retryDelayMs(1, 1000, 0.999)).toBe(1499);
    expect(retryDelayMs(3, 1000, 0.5)).toBe(4000);
    expect(retryDelayMs(30, 1000, 0.5)).toBe(3_600_000);
  });
});

describe('plugin delivery rules', () => {
  const event: EventRecord = {
    event_id: 'E1',
    event_type: 'task.completed',
    source: 'system',
    target_plugin: null,
    data: { task_id: 'T1', type: 'pr_review', payload: { repository: 'https://github.com/octo/widgets.git', pr_number: 7 } },
    metadata: {},
    published_at: '2026-01-01T00:00:00.000Z',
  };
  const plugin = (name: PluginRecord['name'], status: PluginRecord['status'], events?: string[]): PluginRecord => ({
    name,
    status,
    rev: 1,
    config: events ? { events } : {},
    secret_refs: {},
    consecutive_health_failures: 0,
    last_health_check_at: null,
    last_health_error: null,
    discovered_at: '',
    updated_at: '',
    activated_at: null,
  });

  it('delivers to active plugins whose filter matches and which can act on the event', () => {
    expect(takes(plugin('webhook', 'active', ['task.*']), event)).toBe(true);
    expect(takes(plugin('webhook', 'inactive', ['task.*']), event)).toBe(false);
    expect(takes(plugin('webhook', 'active', ['execution.*']), event)).toBe(false);
    expect(takes(plugin('github', 'active'), event)).toBe(true);
    expect(takes(plugin('github', 'active'), { ...event, data: { type: 'custom' } })).toBe(false);
    expect(takes(plugin('slack', 'active'), { ...event, target_plugin: 'webhook' })).toBe(false);
  });

  it('reads the pull request of a pr_review task', () => {
    expect(pullRequestOf(event)).toEqual({ owner: 'octo', repo: 'widgets', number: 7 });
    expect(pullRequestOf({ ...event, data: { type: 'pr_review', payload: { repository: '../../etc', pr_number: 1 } } })).toBeUndefined();
  });

  it('keeps the id of API events and takes the bus id for platform events', () => {
    const api = eventOf({ id: 'bus-1', detailType: 'deploy.done', source: 'supervisor', time: 't', detail: { event_id: 'E9', event_type: 'deploy.done', data: { a: 1 }, published_at: 'p' } });
    expect(api).toMatchObject({ event_id: 'E9', source: 'api', data: { a: 1 } });
    const sys = eventOf({ id: 'bus-2', detailType: 'task.failed', source: 'supervisor', time: 't', detail: { task_id: 'T' } });
    expect(sys).toMatchObject({ event_id: 'bus-2', event_type: 'task.failed', source: 'system', data: { task_id: 'T' } });
    expect(JSON.parse(webhookPayload(sys))).toEqual({ type: 'task.failed', timestamp: 't', data: { event_id: 'bus-2', source: 'system', task_id: 'T' } });
  });
});
