/**
 * The input rules of the AWS services behind the ports, shared by the AWS adapters and the local
 * stand-ins so that the local runtime refuses what AWS would refuse (a kinder stand-in hides bugs).
 */
import type { ScheduleDefinition } from './ports.js';
import { CronError, isValidTimezone, toScheduleExpression } from './cron.js';

/** EventBridge Scheduler's rule for schedule names. */
export const SCHEDULE_NAME_PATTERN = /^[0-9a-zA-Z\-_.]{1,64}$/;

export function assertScheduleName(name: string): void {
  if (typeof name !== 'string' || !SCHEDULE_NAME_PATTERN.test(name)) {
    throw new Error(`invalid schedule name '${String(name)}': 1-64 characters of 0-9 a-z A-Z - _ .`);
  }
}

/** Validates a definition as EventBridge Scheduler would; throws `CronError` for cron / time zone problems. */
export function assertScheduleDefinition(schedule: ScheduleDefinition): void {
  assertScheduleName(schedule.name);
  if (!isValidTimezone(schedule.timezone)) throw new CronError(`unknown time zone '${schedule.timezone}'`);
  toScheduleExpression(schedule.cron);
  if (typeof schedule.payload !== 'object' || schedule.payload === null) throw new Error('schedule payload must be an object');
}

/**
 * Step Functions execution names: 1-80 characters, no whitespace, brackets, wildcards, the characters
 * " # % \ ^ | ~ ` $ & , ; : / or control characters.
 */
export function assertExecutionName(name: string): void {
  // eslint-disable-next-line no-control-regex
  if (typeof name !== 'string' || name.length < 1 || name.length > 80 || /[\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]/.test(name)) {
    throw new Error(`invalid execution name '${String(name)}': 1-80 characters without whitespace, brackets, wildcards or " # % \\ ^ | ~ \` $ & , ; : /`);
  }
}

/** `arn:…:stateMachine:<sm>` → `arn:…:execution:<sm>:<name>`. */
export function executionArnOf(stateMachineArn: string, name: string): string {
  const marker = ':stateMachine:';
  const at = stateMachineArn.indexOf(marker);
  if (at < 0) throw new Error(`not a state machine ARN: ${stateMachineArn}`);
  return `${stateMachineArn.slice(0, at)}:execution:${stateMachineArn.slice(at + marker.length)}:${name}`;
}

/** Step Functions' limit on execution input (256 KiB, UTF-8). */
export const MAX_EXECUTION_INPUT_BYTES = 262144;
