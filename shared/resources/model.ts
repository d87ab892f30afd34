import * as z from 'zod';
import { isoDate, ulidSchema } from '../platform/api/schemas.js';

/**
 * The capacity ledger's vocabulary. A pool is one kind of capacity that task execution consumes;
 * an allocation is what one task holds, in every pool it touches, until it ends or its lease expires.
 */

/** The reference's resource types, plus what this platform really runs out of. */
export const POOL_TYPES = ['worker_concurrency', 'provider_concurrency', 'cli_runner', 'cpu', 'memory', 'disk', 'network', 'gpu'] as const;
export type PoolType = (typeof POOL_TYPES)[number];

/** The dimensions of a cli_runner host. */
export const HOST_DIMENSIONS = ['cpu', 'memory', 'disk', 'gpu'] as const;

const hostId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a host id is 1-63 letters, digits, `_ . -`');
const amount = (max: number) => z.number().int().min(0).max(max);

/**
 * What a task needs while it runs. `cli_runner` names the host whose cpu/memory/disk/gpu are used
 * instead of the shared pools; `provider_slots` is counted against the task's provider.
 */
export const resourceRequest = z
  .strictObject({
    cpu: amount(1024).optional().describe('Cores'),
    memory_mb: amount(4_194_304).optional(),
    disk_mb: amount(100_000_000).optional(),
    network_mbps: amount(1_000_000).optional(),
    gpu: amount(64).optional(),
    worker_slots: amount(1000).optional().describe('Worker concurrency slots (the worker always takes at least 1)'),
    provider_slots: amount(100).optional().describe("Concurrent calls on the task's provider"),
    cli_runner: hostId.optional().describe('A cli_runner host: cpu/memory/disk/gpu come from its pools'),
  })
  .describe('Resources a task holds while it runs');
export type ResourceRequest = z.infer<typeof resourceRequest>;

/** Amounts by pool id (`worker_concurrency`, `cpu`, `provider_concurrency:<id>`, `cli_runner:<host>:<dim>`). */
export const amounts = z.record(z.string(), z.number().int());
export type Amounts = Record<string, number>;

export const poolIdSchema = z.string().regex(/^[a-z_]+(:[A-Za-z0-9_.-]+){0,2}$/, 'not a pool id').max(140);

export const allocateBody = z.strictObject({
  task_id: ulidSchema,
  resources: resourceRequest,
  priority: z.number().int().min(1).max(10).optional().describe("Defaults to the task's priority"),
  wait: z.boolean().default(false).describe('Queue the request by priority instead of answering 409 when capacity is short'),
});
export type AllocateBody = z.infer<typeof allocateBody>;

export const releaseBody = z.strictObject({ task_id: ulidSchema });

export const CONFLICT_KINDS = ['over_commitment', 'starvation', 'zombie', 'contention'] as const;
export const STRATEGIES = ['preempt_lower_priority', 'release_zombies', 'requeue', 'scale_up', 'defer'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const resolveBody = z.strictObject({ strategy: z.enum(STRATEGIES) });
export const conflictParams = z.strictObject({ conflict_id: z.string().regex(/^[a-z_]+\.[A-Za-z0-9_.:-]{1,200}$/, 'not a conflict id') });

export const scaleBody = z
  .strictObject({
    pool: poolIdSchema,
    action: z.enum(['scale_up', 'scale_down', 'set']),
    magnitude: z.number().int().min(1).max(10_000_000).optional().describe('For scale_up / scale_down'),
    capacity: z.number().int().min(0).max(100_000_000).optional().describe('For set'),
    force: z.boolean().default(false).describe('Scale below what is allocated now (creates an over-commitment that drains)'),
  })
  .superRefine((b, ctx) => {
    if (b.action === 'set' && b.capacity === undefined) ctx.addIssue({ code: 'custom', path: ['capacity'], message: 'set needs capacity' });
    if (b.action !== 'set' && b.magnitude === undefined) ctx.addIssue({ code: 'custom', path: ['magnitude'], message: `${b.action} needs magnitude` });
    if (b.action === 'set' && b.magnitude !== undefined) ctx.addIssue({ code: 'custom', path: ['magnitude'], message: 'set takes capacity, not magnitude' });
    if (b.action !== 'set' && b.capacity !== undefined) ctx.addIssue({ code: 'custom', path: ['capacity'], message: `${b.action} takes magnitude, not capacity` });
  });
export type ScaleBody = z.infer<typeof scaleBody>;

export const TIME_RANGES = { '1h': 3600, '6h': 6 * 3600, '24h': 86_400, '7d': 7 * 86_400 } as const;
export const monitoringQuery = z.strictObject({ time_range: z.enum(Object.keys(TIME_RANGES) as [keyof typeof TIME_RANGES]).default('1h') });

// ---------------------------------------------------------------- views

export const allocationView = z.object({
  task_id: z.string(),
  amounts: amounts.describe('Amount held in each pool'),
  priority: z.number().int(),
  source: z.enum(['worker', 'api']),
  since: isoDate,
  lease_until: isoDate,
  waited_ms: z.number().int().describe('How long the request waited for capacity before it was granted'),
});
export type AllocationView = z.infer<typeof allocationView>;

export const poolStatusView = z.object({
  pool: z.string(),
  type: z.enum(POOL_TYPES),
  unit: z.string(),
  capacity: z.number().int(),
  allocated: z.number().int(),
  free: z.number().int().describe('Negative while over-committed after a forced scale-down'),
  utilisation: z.number().describe('allocated / capacity (0 when the capacity is 0 and nothing is held)'),
  min_capacity: z.number().int(),
  max_capacity: z.number().int(),
  waiting: z.object({ requests: z.number().int(), amount: z.number().int(), by_priority: z.record(z.string(), z.number().int()).describe('Waiting amount by priority') }),
  allocations: z.array(allocationView.extend({ amount: z.number().int() })),
});

export const allocationStatusView = z.object({ pools: z.array(poolStatusView), allocations: z.number().int(), waiting: z.number().int(), as_of: isoDate });

export const allocateView = z.object({
  status: z.enum(['allocated', 'queued']),
  allocation: allocationView.nullable(),
  waiting: z.object({ task_id: z.string(), amounts, priority: z.number().int(), since: isoDate, position: z.number().int() }).nullable(),
});

export const releaseView = z.object({ task_id: z.string(), released: z.boolean(), amounts, granted: z.array(z.string()).describe('Waiting requests granted with the freed capacity') });

export const conflictView = z.object({
  conflict_id: z.string(),
  kind: z.enum(CONFLICT_KINDS),
  severity: z.enum(['info', 'warning', 'critical']),
  pool: z.string().nullable(),
  tasks: z.array(z.string()),
  since: isoDate,
  detail: z.string(),
  proposed_resolution: z.enum(STRATEGIES),
});
export type ConflictView = z.infer<typeof conflictView>;

export const resolutionView = z.object({
  conflict_id: z.string(),
  strategy: z.enum(STRATEGIES),
  resolved_at: isoDate,
  changes: z.object({
    released: z.array(z.string()).describe('Tasks whose allocations were released'),
    preempted: z.array(z.string()).describe('Running tasks sent back to the queue (their attempt recorded)'),
    requeued: z.array(z.string()),
    capacity: z.object({ pool: z.string(), from: z.number().int(), to: z.number().int() }).nullable(),
    deferred_until: isoDate.nullable(),
  }),
});
export type ResolutionView = z.infer<typeof resolutionView>;

const point = z.object({ t: isoDate, allocated: z.number(), capacity: z.number(), utilisation: z.number() });
export const monitoringView = z.object({
  time_range: z.string(),
  step_seconds: z.number().int(),
  pools: z.array(
    z.object({
      pool: z.string(),
      series: z.array(point),
      forecast: z.union([
        z.object({
          method: z.literal('linear_trend'),
          horizon_seconds: z.number().int(),
          points: z.array(z.object({ t: isoDate, utilisation: z.number(), lower: z.number(), upper: z.number() })),
          backtest_mae: z.number().describe('Mean absolute error of the same method on the last quarter of the series, fitted on the rest'),
        }),
        z.object({ status: z.literal('insufficient_data'), events: z.number().int(), needed: z.number().int() }),
      ]),
    }),
  ),
});

export const recommendationView = z.object({
  pool: z.string(),
  action: z.enum(['scale_up', 'scale_down']),
  magnitude: z.number().int(),
  expected_effect: z.string(),
  evidence: z.object({
    window_seconds: z.number().int(),
    allocations: z.number().int(),
    p95_utilisation: z.number(),
    peak_demand: z.number().int(),
    p95_wait_ms: z.number().int(),
    waited: z.number().int(),
    capacity: z.number().int(),
  }),
});
export const recommendationsView = z.object({ recommendations: z.array(recommendationView), insufficient_history: z.array(z.string()).describe('Pools without enough history for a recommendation') });

export const scaleView = z.object({
  pool: z.string(),
  from: z.number().int(),
  to: z.number().int(),
  allocated: z.number().int(),
  over_committed: z.boolean(),
  worker_max_concurrency: z.number().int().nullable().describe('worker_concurrency only: the concurrent worker invocations applied (batches of up to 5 messages, at least 2); null where not applied'),
});

export const resourceHealthView = z.object({
  status: z.enum(['healthy', 'degraded']),
  consistent: z.boolean(),
  pools: z.array(z.object({ pool: z.string(), allocated: z.number().int(), sum_of_allocations: z.number().int(), consistent: z.boolean() })),
  zombies: z.number().int(),
  waiting: z.object({ requests: z.number().int(), oldest_since: isoDate.nullable() }),
  over_committed: z.array(z.string()),
});
