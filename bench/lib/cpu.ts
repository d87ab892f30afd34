import { readFileSync } from 'node:fs';
import type { LocalRuntime } from '../../local/runtime.js';

/**
 * CPU seconds DynamoDB Local's process has used so far, from its /proc stat (utime and stime, fields 14
 * and 15, in clock ticks of 100 a second); NaN where there is none (not Linux, or an endpoint this
 * runtime did not start).
 */
export function dynamodbCpuSeconds(runtime: LocalRuntime): number {
  const pid = runtime.dynamodb?.process.pid;
  if (!pid) return NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}
