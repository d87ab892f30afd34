import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { ProcessSample } from '../shared/analytics/collector.js';

/**
 * The local runtime's own figures for the metrics collector: CPU use since the last sample (percent of
 * one core), resident and heap memory, and the event loop's p99 delay since the last sample.
 */
export class ProcessSampler {
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  private lastCpu = process.cpuUsage();
  private lastAt = process.hrtime.bigint();

  constructor() {
    this.delay.enable();
  }

  sample(): ProcessSample {
    const cpu = process.cpuUsage(this.lastCpu);
    const now = process.hrtime.bigint();
    const elapsedUs = Number(now - this.lastAt) / 1000;
    this.lastCpu = process.cpuUsage();
    this.lastAt = now;
    const mem = process.memoryUsage();
    const lagMs = this.delay.count > 0 ? this.delay.percentile(99) / 1e6 : 0;
    this.delay.reset();
    const round = (n: number) => Math.round(n * 100) / 100;
    return {
      cpu_percent: round(elapsedUs > 0 ? ((cpu.user + cpu.system) / elapsedUs) * 100 : 0),
      rss_mb: round(mem.rss / 1048576),
      heap_used_mb: round(mem.heapUsed / 1048576),
      event_loop_lag_ms: round(lagMs),
    };
  }

  stop(): void {
    this.delay.disable();
  }
}
