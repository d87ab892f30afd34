/**
 * The interfaces the domain needs from the outside world. Each has an AWS adapter
 * (`shared/adapters/aws`) and a local one (`shared/adapters/local` or `local/`), and one shared
 * contract test suite runs against both.
 */

export interface Checkable {
  /** Throws when the dependency cannot be reached. */
  check(): Promise<void>;
}

export interface SendOptions {
  delaySeconds?: number;
}

/** SQS semantics: at-least-once, visibility timeout, redelivery, max receives → DLQ. */
export interface TaskQueue extends Checkable {
  send(body: Record<string, unknown>, options?: SendOptions): Promise<void>;
}

export interface ScheduleDefinition {
  name: string;
  /** 5-field cron as the API takes it. */
  cron: string;
  timezone: string;
  enabled: boolean;
  /** Delivered to the schedule target at each firing. */
  payload: Record<string, unknown>;
}

/** EventBridge Scheduler semantics: named schedules in one group, fired at cron instants in a timezone. */
export interface ScheduleService extends Checkable {
  upsert(schedule: ScheduleDefinition): Promise<void>;
  remove(name: string): Promise<void>;
}

export type RunnerStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

export interface RunDescription {
  runId: string;
  status: RunnerStatus;
  output?: unknown;
  error?: string;
}

/** Step Functions semantics: start a named execution of the workflow state machine, stop it, describe it. */
export interface WorkflowRunner extends Checkable {
  start(name: string, input: Record<string, unknown>): Promise<string>;
  stop(runId: string, cause: string): Promise<void>;
  describe(runId: string): Promise<RunDescription>;
  /**
   * Completes a task state waiting on `token` (`.waitForTaskToken`) with `output`. Answers false when
   * the token no longer waits (already answered, timed out, its run stopped, unknown).
   */
  sendTaskSuccess(token: string, output: Record<string, unknown>): Promise<boolean>;
  /** Fails the task state waiting on `token` with `error` (its Retry/Catch apply). False as above. */
  sendTaskFailure(token: string, error: string, cause: string): Promise<boolean>;
}

export class ConnectionGoneError extends Error {
  constructor(readonly connectionId: string) {
    super(`connection ${connectionId} is gone`);
  }
}

/** API Gateway management API (`@connections`). The local runtime serves the same HTTP endpoint. */
export interface Connections {
  post(connectionId: string, data: unknown): Promise<void>;
  /**
   * Closes the connection. With `close`, the client is first sent `{type: "closing", code, reason}`
   * (API Gateway's DeleteConnection carries no close code); the local runtime also closes the socket
   * with that code. Without it, the close is a plain 1000.
   */
  close(connectionId: string, close?: { code: number; reason: string }): Promise<void>;
}

export interface EventBus extends Checkable {
  publish(detailType: string, detail: Record<string, unknown>): Promise<void>;
}

/** One plain-text email. */
export interface MailMessage {
  from: string;
  to: string[];
  subject: string;
  text: string;
}

/** Outbound email: SES v2 on AWS; locally, `.eml` files under the data directory. */
export interface MailSender extends Checkable {
  /** Answers the provider's message id. */
  send(message: MailMessage): Promise<{ messageId: string }>;
}

/** A file to hand out by link (an export too large to be an answer). */
export interface FileToShare {
  /** Where it is kept: `<prefix>/<unique id>/<file name>`, letters, digits, `.`, `_`, `-` and `/` only. */
  key: string;
  body: Buffer;
  contentType: string;
  /** The name a download saves it under. */
  filename: string;
  /** How long the link works. */
  expiresInSeconds: number;
}

/**
 * Files handed out by an expiring link: on AWS an S3 bucket (objects expire after a day) and a presigned
 * GET URL; locally a folder under the data directory that the local runtime serves with an HMAC-signed URL.
 */
export interface FileShare {
  /** Stores the file and answers a URL that downloads it until `expiresAt`. */
  put(file: FileToShare): Promise<{ url: string; expiresAt: Date }>;
}

export interface SecretStore {
  /** Stores a secret and answers an opaque reference to it. */
  put(name: string, value: string): Promise<string>;
  get(ref: string): Promise<string>;
  remove(ref: string): Promise<void>;
}

export interface LlmRequest {
  model: string;
  system?: string;
  prompt: string;
  maxTokens?: number;
  temperature?: number;
  /** Aborted on task timeout or cancellation; adapters must stop the call. */
  signal: AbortSignal;
  /** Streamed output as it arrives (adapters that stream call it for each chunk). */
  onChunk?: (text: string) => void;
}

export interface LlmResult {
  output: string;
  tokensIn: number;
  tokensOut: number;
  model: string;
  finishReason?: string;
  /** True when the provider reported no token counts and they were estimated. */
  tokensEstimated?: boolean;
}

/**
 * A language model's API, one adapter per provider type (`shared/providers/llm/`, built only by its
 * registry, `createLlmProvider`). A failed call throws a classified `ProviderError`.
 */
export interface LlmProvider<Type extends string = string> {
  readonly type: Type;
  complete(request: LlmRequest): Promise<LlmResult>;
  /** A live, cheap check that the provider answers (e.g. list models). */
  check(signal?: AbortSignal): Promise<void>;
}

export interface Jwk {
  kty: string;
  kid: string;
  alg: string;
  use: string;
  [k: string]: unknown;
}

export interface TokenSigner {
  readonly algorithm: 'ES256' | 'RS256';
  sign(claims: Record<string, unknown>): Promise<string>;
  jwks(): Promise<{ keys: Jwk[] }>;
}

/** The task worker's concurrency (AWS: the task queue's event source mapping; local: the in-process worker; see use/worker-scaling.ts). */
export interface WorkerScaling {
  /** Sets the worker's concurrent invocations for `tasks` runs at once (workerInvocationsFor, infra.ts); answers the invocations applied. */
  setMaxConcurrency(tasks: number): Promise<number>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
