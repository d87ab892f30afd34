import { Webhook } from 'standardwebhooks';
import type { Deps } from '../platform/runtime.js';
import { outboundFetch, OutboundRefusedError } from '../platform/outbound.js';
import { mailSender } from '../platform/use/mail.js';
import type { PluginName } from './catalog.js';
import type { EventRecord } from './repo.js';

/** The outcome of one attempt to hand an event to a plugin's destination. */
export interface AttemptResult {
  ok: boolean;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
  response_excerpt: string | null;
}

/** Characters of a receiver's answer kept in the delivery record. */
export const EXCERPT_CHARS = 500;

/** A resolved configuration: stored fields plus the secrets read from the secret store. */
export type ResolvedConfig = Record<string, unknown>;

/** The Standard Webhooks payload: `{ type, timestamp, data }`, the event id inside `data`. */
export function webhookPayload(event: EventRecord): string {
  return JSON.stringify({
    type: event.event_type,
    timestamp: event.published_at,
    data: { event_id: event.event_id, source: event.source, ...event.data },
    ...(Object.keys(event.metadata).length ? { metadata: event.metadata } : {}),
  });
}

/** The pull request a `pr_review` task names: `{ owner, repo, number }`, or undefined. */
export function pullRequestOf(event: EventRecord): { owner: string; repo: string; number: number } | undefined {
  const data = event.data as { type?: unknown; payload?: { repository?: unknown; pr_number?: unknown } };
  if (data.type !== 'pr_review') return undefined;
  const repository = data.payload?.repository;
  const number = data.payload?.pr_number;
  if (typeof repository !== 'string' || typeof number !== 'number') return undefined;
  const m = /^(?:https:\/\/github\.com\/)?([A-Za-z0-9-]{1,39})\/([A-Za-z0-9._-]{1,100}?)(?:\.git)?\/?$/.exec(repository.trim());
  return m ? { owner: m[1], repo: m[2], number } : undefined;
}

/** Whether a plugin can do anything with this event at all (beyond its filter). */
export function applicable(plugin: PluginName, event: EventRecord): boolean {
  if (plugin === 'github') return pullRequestOf(event) !== undefined;
  return true;
}

/** A one-paragraph summary of an event for people (Slack, email). */
export function summarize(event: EventRecord): { title: string; body: string } {
  const d = event.data as Record<string, unknown>;
  const name = (d.title ?? d.name ?? d.task_id ?? d.execution_id ?? event.event_id) as string;
  const lines: string[] = [];
  for (const key of ['task_id', 'execution_id', 'workflow_id', 'status', 'type', 'error', 'message']) {
    const v = d[key];
    if (v === undefined || v === null) continue;
    lines.push(`${key}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  if (!lines.length) lines.push(JSON.stringify(d).slice(0, 1000));
  return { title: `${event.event_type}: ${String(name).slice(0, 200)}`, body: lines.join('\n') };
}

function slackMessage(event: EventRecord, label?: string) {
  const { title, body } = summarize(event);
  const icon = /failed|fired|error/.test(event.event_type) ? ':red_circle:' : /completed|resolved|activated/.test(event.event_type) ? ':large_green_circle:' : ':large_blue_circle:';
  return {
    text: `${icon} ${title}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: `${label ? `[${label}] ` : ''}${title}`.slice(0, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${body.slice(0, 2900)}\`\`\`` } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `event ${event.event_id} · ${event.published_at}` }] },
    ],
  };
}

function githubComment(event: EventRecord): string {
  const d = event.data as { task_id?: string; status?: string; result?: { output?: string } | null; error?: { message?: string } | null };
  const head = event.event_type === 'task.completed' ? '### Supervisor review' : '### Supervisor review failed';
  const text = event.event_type === 'task.completed' ? (d.result?.output ?? '(no output)') : (d.error?.message ?? 'the review task failed');
  return `${head}\n\n${text.slice(0, 60_000)}\n\n<sub>task ${d.task_id ?? '?'} · event ${event.event_id}</sub>`;
}

/** One request to a plugin's URL, private addresses allowed only with PLUGINS_ALLOW_PRIVATE_URLS. */
async function httpAttempt(deps: Deps, url: string, init: { method: string; headers: Record<string, string>; body?: string }, timeoutMs: number): Promise<AttemptResult> {
  const started = Date.now();
  try {
    const res = await outboundFetch(url, init, {
      timeoutMs,
      connectTimeoutMs: Math.min(timeoutMs, 5000),
      maxResponseBytes: 64 * 1024,
      allowPrivate: deps.config.pluginsAllowPrivateUrls,
    });
    let text = '';
    try {
      text = await res.text();
    } catch {
      text = '';
    }
    return {
      ok: res.status >= 200 && res.status < 300,
      status_code: res.status,
      duration_ms: Date.now() - started,
      error: res.status >= 200 && res.status < 300 ? null : `HTTP ${res.status}`,
      response_excerpt: text.slice(0, EXCERPT_CHARS) || null,
    };
  } catch (err) {
    const e = err as Error;
    const error =
      err instanceof OutboundRefusedError
        ? `refused: ${e.message}`
        : e?.name === 'TimeoutError' || e?.name === 'AbortError'
          ? `timed out after ${timeoutMs} ms`
          : `request failed: ${e?.message ?? String(err)}`;
    return { ok: false, status_code: null, duration_ms: Date.now() - started, error, response_excerpt: null };
  }
}

/** One attempt to deliver `event` through plugin `name` configured with `config`. */
export async function sendEvent(deps: Deps, name: PluginName, config: ResolvedConfig, event: EventRecord): Promise<AttemptResult> {
  switch (name) {
    case 'webhook': {
      const payload = webhookPayload(event);
      const signedAt = deps.clock.now();
      const signature = new Webhook(String(config.signing_secret)).sign(event.event_id, signedAt, payload);
      return httpAttempt(
        deps,
        String(config.url),
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'Supervisor-Webhooks/1.0',
            'webhook-id': event.event_id,
            'webhook-timestamp': String(Math.floor(signedAt.getTime() / 1000)),
            'webhook-signature': signature,
          },
          body: payload,
        },
        Number(config.timeout_ms ?? 10_000),
      );
    }
    case 'slack':
      return httpAttempt(
        deps,
        String(config.webhook_url),
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(slackMessage(event, config.channel_label as string | undefined)) },
        10_000,
      );
    case 'github': {
      const pr = pullRequestOf(event);
      if (!pr) return { ok: false, status_code: null, duration_ms: 0, error: 'the event names no pull request', response_excerpt: null };
      const base = String(config.api_url).replace(/\/+$/, '');
      return httpAttempt(
        deps,
        `${base}/repos/${encodeURIComponent(pr.owner)}/${encodeURIComponent(pr.repo)}/issues/${pr.number}/comments`,
        {
          method: 'POST',
          headers: {
            accept: 'application/vnd.github+json',
            authorization: `Bearer ${String(config.token)}`,
            'content-type': 'application/json',
            'user-agent': 'Supervisor',
            'x-github-api-version': '2022-11-28',
          },
          body: JSON.stringify({ body: githubComment(event) }),
        },
        15_000,
      );
    }
    case 'email': {
      const { title, body } = summarize(event);
      return sendMail(deps, config, `${String(config.subject_prefix ?? '')} ${title}`.trim(), `${body}\n\nevent ${event.event_id} at ${event.published_at}\n`, config.to as string[]);
    }
  }
}

export async function sendMail(deps: Deps, config: ResolvedConfig, subject: string, text: string, to: string[]): Promise<AttemptResult> {
  const started = Date.now();
  try {
    const { messageId } = await mailSender(deps).send({ from: String(config.from), to, subject: subject.slice(0, 900), text });
    return { ok: true, status_code: null, duration_ms: Date.now() - started, error: null, response_excerpt: `message id ${messageId}` };
  } catch (err) {
    return { ok: false, status_code: null, duration_ms: Date.now() - started, error: `send failed: ${(err as Error).message}`.slice(0, 500), response_excerpt: null };
  }
}

/** Reachability of a URL: any HTTP answer within the timeout counts (a HEAD, nothing posted). */
export async function probeUrl(deps: Deps, url: string, headers: Record<string, string> = {}, timeoutMs = 3000): Promise<AttemptResult> {
  return httpAttempt(deps, url, { method: 'HEAD', headers }, timeoutMs);
}
