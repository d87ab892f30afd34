import { describe, expect, it } from 'vitest';
import { boundEventData, EVENT_DATA_MAX_BYTES, jsonBytes, WS_MESSAGE_MAX_BYTES } from '../../../shared/realtime/bounded.js';
import { serverMessage } from '../../../shared/realtime/channels.js';

const task = (payload: unknown, output: string) => ({
  task_id: '01JABCDEFGHJKMNPQRSTVWXYZ0',
  status: 'completed',
  created_at: '2026-01-01T00:00:00.000Z',
  completed_at: '2026-01-01T00:01:00.000Z',
  duration_ms: 60_000,
  payload,
  result: { output, output_truncated: false },
  tags: ['a', 'b'],
});

describe('boundEventData', () => {
  it('passes data that fits unchanged (the same object)', () => {
    const data = task({ code: 'x'.repeat(1000) }, 'done');
    expect(boundEventData(data)).toBe(data);
  });

  it('cuts a 200 KiB payload and a 100 KB result to fit one WebSocket message, keeping ids, status and timing', () => {
    const data = task({ code: 'é'.repeat(100 * 1024) }, 'o'.repeat(100_000));
    expect(jsonBytes(data)).toBeGreaterThan(290 * 1024);
    const bounded = boundEventData(data) as ReturnType<typeof task> & { truncated: boolean };
    expect(jsonBytes(serverMessage('task.updated', bounded, 'task:01JABCDEFGHJKMNPQRSTVWXYZ0'))).toBeLessThanOrEqual(WS_MESSAGE_MAX_BYTES);
    expect(bounded).toMatchObject({ task_id: data.task_id, status: 'completed', created_at: data.created_at, completed_at: data.completed_at, duration_ms: 60_000, tags: ['a', 'b'], truncated: true });
    expect(bounded.result.output).toBe('o'.repeat(16 * 1024));
    expect((bounded.payload as { code: string }).code.length).toBe(16 * 1024);
  });

  it('cuts strings shorter and arrays to 100 items when many long fields are too much at 16 KiB', () => {
    const data = { id: 'x', files: Array.from({ length: 500 }, (_, i) => ({ path: `f${i}`, content: 'c'.repeat(5000) })) };
    const bounded = boundEventData(data) as { id: string; files: { content: string }[]; truncated: boolean };
    expect(jsonBytes(bounded)).toBeLessThanOrEqual(EVENT_DATA_MAX_BYTES);
    expect(bounded.truncated).toBe(true);
    expect(bounded.files).toHaveLength(100);
    expect(bounded.files[0].content.length).toBeLessThan(5000);
  });

  it('falls back to the top-level scalars when nothing else fits', () => {
    const wide = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`key_${i}`, i]));
    const data = { task_id: 't1', status: 'running', started_at: '2026-01-01T00:00:00.000Z', metadata: wide };
    expect(boundEventData(data)).toEqual({ task_id: 't1', status: 'running', started_at: '2026-01-01T00:00:00.000Z', truncated: true });
  });

  it('bounds data that is not an object too', () => {
    expect(jsonBytes(boundEventData('s'.repeat(200_000)))).toBeLessThanOrEqual(EVENT_DATA_MAX_BYTES);
  });
});
