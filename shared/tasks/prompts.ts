import type { TaskType } from './status.js';

/** What a provider gets for a task: a system prompt and the user prompt built from the payload. */
export interface TaskPrompt {
  system: string;
  prompt: string;
  temperature?: number;
  maxOutputTokens?: number;
}

type Payload = Record<string, unknown>;
type SourceFile = { path: string; content: string };

const BASE_SYSTEM = 'You are a senior software engineer working as a coding agent. Be precise, cite files and lines when you can, and do not invent code you were not shown.';

const str = (p: Payload, key: string) => (typeof p[key] === 'string' && (p[key] as string).length > 0 ? (p[key] as string) : undefined);
const list = (p: Payload, key: string) => (Array.isArray(p[key]) ? (p[key] as string[]) : undefined);

function section(title: string, body: string | undefined): string {
  return body === undefined || body === '' ? '' : `## ${title}\n${body}\n\n`;
}
function bullets(items: string[] | undefined): string | undefined {
  return items?.length ? items.map((i) => `- ${i}`).join('\n') : undefined;
}
function fenced(code: string | undefined, language?: string): string | undefined {
  return code === undefined ? undefined : `\`\`\`${language ?? ''}\n${code}\n\`\`\``;
}
function codeSections(p: Payload): string {
  const language = str(p, 'language');
  let out = section('Code', fenced(str(p, 'code'), language));
  for (const file of (p.files as SourceFile[] | undefined) ?? []) out += section(`File: ${file.path}`, fenced(file.content, language));
  return out;
}

const TEMPLATES: Record<TaskType, (p: Payload) => TaskPrompt> = {
  pr_review: (p) => ({
    system: `${BASE_SYSTEM} You review pull requests for correctness, security, performance and maintainability.`,
    prompt:
      `Review pull request${p.pr_number ? ` #${p.pr_number}` : ''} in ${str(p, 'repository')}: "${str(p, 'title')}".\n\n` +
      section('Description', str(p, 'description')) +
      section('Branches', str(p, 'head_branch') || str(p, 'base_branch') ? `${str(p, 'head_branch') ?? '?'} → ${str(p, 'base_branch') ?? '?'}` : undefined) +
      section('Focus on', bullets(list(p, 'focus'))) +
      section('Diff', fenced(str(p, 'diff'), 'diff')) +
      'List the issues you find (file, line, severity, suggested change). End with one line: `VERDICT: APPROVE`, `VERDICT: REQUEST_CHANGES` or `VERDICT: COMMENT`.',
  }),
  issue_summary: (p) => ({
    system: `${BASE_SYSTEM} You summarise issues for a busy maintainer.`,
    prompt:
      `Summarise issue${p.issue_number ? ` #${p.issue_number}` : ''}${str(p, 'repository') ? ` in ${str(p, 'repository')}` : ''}: "${str(p, 'title')}".\n\n` +
      section('Labels', (list(p, 'labels') ?? []).join(', ') || undefined) +
      section('Body', str(p, 'body')) +
      section(
        'Comments',
        ((p.comments as { author?: string; body: string }[] | undefined) ?? []).map((c) => `**${c.author ?? 'someone'}**: ${c.body}`).join('\n\n') || undefined,
      ) +
      'Give a short summary, the current state, open questions, and proposed next steps.',
  }),
  code_analysis: (p) => ({
    system: `${BASE_SYSTEM} You analyse code quality, complexity and risks.`,
    prompt:
      `Analyse the following code${str(p, 'repository') ? ` from ${str(p, 'repository')}` : ''}.\n\n` +
      section('Focus on', bullets(list(p, 'focus'))) +
      codeSections(p) +
      'Report structure, complexity hot spots, bugs and risks, each with a concrete recommendation.',
  }),
  refactor: (p) => ({
    system: `${BASE_SYSTEM} You refactor code without changing its behaviour.`,
    prompt:
      'Refactor the following code.\n\n' +
      section('Goals', bullets(list(p, 'goals'))) +
      section('Constraints', bullets(list(p, 'constraints'))) +
      codeSections(p) +
      'Answer with the refactored code in fenced blocks and a short explanation of each change.',
  }),
  bug_fix: (p) => ({
    system: `${BASE_SYSTEM} You find root causes and propose minimal, tested fixes.`,
    prompt:
      `Fix this bug${str(p, 'repository') ? ` in ${str(p, 'repository')}` : ''}.\n\n` +
      section('Description', str(p, 'description')) +
      section('Error message', fenced(str(p, 'error_message'))) +
      section('Steps to reproduce', bullets(list(p, 'steps_to_reproduce'))) +
      section('Expected behaviour', str(p, 'expected_behavior')) +
      section('Code context', fenced(str(p, 'code_context'), str(p, 'language'))) +
      'Explain the root cause, then give the fix as fenced code, then a test that would have caught it.',
  }),
  feature: (p) => ({
    system: `${BASE_SYSTEM} You implement features in small, reviewable steps.`,
    prompt:
      `Implement this feature${str(p, 'repository') ? ` in ${str(p, 'repository')}` : ''}.\n\n` +
      section('Description', str(p, 'description')) +
      section('Requirements', bullets(list(p, 'requirements'))) +
      section('Acceptance criteria', bullets(list(p, 'acceptance_criteria'))) +
      section('Code context', fenced(str(p, 'code_context'), str(p, 'language'))) +
      'Give a plan, then the code in fenced blocks, then the tests.',
  }),
  documentation: (p) => ({
    system: `${BASE_SYSTEM} You write clear technical documentation.`,
    prompt:
      `Write ${str(p, 'doc_type') ?? 'readme'} documentation${str(p, 'subject') ? ` about ${str(p, 'subject')}` : ''}${str(p, 'audience') ? ` for ${str(p, 'audience')}` : ''}.\n\n` +
      codeSections(p) +
      'Answer in Markdown.',
  }),
  testing: (p) => ({
    system: `${BASE_SYSTEM} You write thorough, deterministic tests.`,
    prompt:
      `Write ${(list(p, 'test_types') ?? ['unit']).join(', ')} tests${str(p, 'framework') ? ` with ${str(p, 'framework')}` : ''} for the following code.\n\n` +
      section('Coverage goals', bullets(list(p, 'coverage_goals'))) +
      codeSections(p) +
      'Answer with the tests in fenced blocks and the cases they cover.',
  }),
  security_audit: (p) => ({
    system: `${BASE_SYSTEM} You are a security auditor.`,
    prompt:
      'Audit the following code for security vulnerabilities.\n\n' +
      section('Standards', bullets(list(p, 'standards'))) +
      section('Threat model', str(p, 'threat_model')) +
      codeSections(p) +
      'For each finding give a line `SEVERITY: CRITICAL|HIGH|MEDIUM|LOW`, the location, the impact and the fix.',
  }),
  custom: (p) => ({
    system: str(p, 'system') ?? BASE_SYSTEM,
    prompt: str(p, 'prompt') ?? '',
    temperature: typeof p.temperature === 'number' ? p.temperature : undefined,
    maxOutputTokens: typeof p.max_output_tokens === 'number' ? p.max_output_tokens : undefined,
  }),
};

export function buildPrompt(type: TaskType, payload: Payload): TaskPrompt {
  return TEMPLATES[type](payload);
}

/** A title for tasks created without one. */
export function defaultTitle(type: TaskType, payload: Payload): string {
  const named = str(payload, 'title') ?? str(payload, 'subject') ?? str(payload, 'description') ?? str(payload, 'prompt');
  const label = type.replace(/_/g, ' ');
  const base = named ? `${label}: ${named.replace(/\s+/g, ' ').trim()}` : label;
  return base.length > 120 ? `${base.slice(0, 117)}...` : base;
}
