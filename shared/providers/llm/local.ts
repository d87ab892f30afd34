import { setTimeout as sleep } from 'node:timers/promises';
import type { LlmProvider, LlmRequest, LlmResult } from '../types.js';
import { abortError } from '../errors.js';
import { countTokens } from '../tokens.js';

export const LOCAL_MODEL = 'local-deterministic';
const LABEL = 'the local provider';
const CHUNK_CHARS = 64;
const DEFAULT_CHUNK_DELAY_MS = 5;
const MAX_LISTED = 8;

export interface LocalOptions {
  chunkDelayMs?: number;
}

/**
 * A deterministic offline provider for development: it answers with a structured analysis of the
 * prompt itself (size, headings, code blocks, diff statistics, error lines, first lines) and a
 * checklist derived from it. The answer is labelled `[local]` and its model is `local-deterministic`,
 * so nobody can take it for a model's answer. The same prompt always gives the same answer.
 */
export class LocalProvider implements LlmProvider {
  readonly type = 'local' as const;

  constructor(private readonly options: LocalOptions = {}) {}

  async complete(req: LlmRequest): Promise<LlmResult> {
    if (req.signal.aborted) throw abortError(req.signal, LABEL);
    const output = analysePrompt(req.prompt, req.system);
    if (req.onChunk) {
      const delay = this.options.chunkDelayMs ?? DEFAULT_CHUNK_DELAY_MS;
      for (const chunk of chunksOf(output, CHUNK_CHARS)) {
        if (req.signal.aborted) throw abortError(req.signal, LABEL);
        req.onChunk(chunk);
        if (delay > 0) await sleep(delay, undefined, { signal: req.signal }).catch(() => undefined);
      }
      if (req.signal.aborted) throw abortError(req.signal, LABEL);
    }
    return {
      output,
      tokensIn: countTokens(`${req.system ?? ''}\n${req.prompt}`),
      tokensOut: countTokens(output),
      model: LOCAL_MODEL,
      finishReason: 'end_turn',
    };
  }

  async check(): Promise<void> {
    // Runs in-process: nothing to reach.
  }
}

/** Splits text into chunks of about `size` characters, at whitespace where possible. */
export function chunksOf(text: string, size: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > size) {
    const cut = rest.lastIndexOf(' ', size);
    const at = cut > size / 2 ? cut + 1 : size;
    out.push(rest.slice(0, at));
    rest = rest.slice(at);
  }
  if (rest) out.push(rest);
  return out;
}

interface CodeBlock {
  language: string;
  lines: number;
}

interface DiffFile {
  path: string;
  added: number;
  removed: number;
}

/** The local provider's answer: what the prompt contains, and what to do about each part. */
export function analysePrompt(prompt: string, system?: string): string {
  const lines = prompt.split(/\r?\n/);
  const nonEmpty = lines.filter((l) => l.trim() !== '');
  const headings: string[] = [];
  const blocks: CodeBlock[] = [];
  const diffFiles: DiffFile[] = [];
  const errorLines: string[] = [];
  let todos = 0;
  let listItems = 0;
  let inBlock: CodeBlock | undefined;
  let currentDiff: DiffFile | undefined;

  for (const line of lines) {
    const fence = /^\s*(```|~~~)\s*([\w+.#-]*)/.exec(line);
    if (fence) {
      if (inBlock) {
        blocks.push(inBlock);
        inBlock = undefined;
      } else inBlock = { language: fence[2] || 'text', lines: 0 };
      continue;
    }
    if (inBlock) inBlock.lines++;
    const diffHeader = /^\+\+\+ (?:b\/)?(.+)$/.exec(line) ?? /^diff --git a\/\S+ b\/(\S+)/.exec(line);
    if (diffHeader) {
      const path = diffHeader[1].trim();
      if (!currentDiff || currentDiff.path !== path) {
        currentDiff = diffFiles.find((f) => f.path === path) ?? { path, added: 0, removed: 0 };
        if (!diffFiles.includes(currentDiff)) diffFiles.push(currentDiff);
      }
      continue;
    }
    const diffLine = currentDiff !== undefined && /^[+-]/.test(line);
    if (currentDiff && /^\+(?!\+\+)/.test(line)) currentDiff.added++;
    else if (currentDiff && /^-(?!--)/.test(line)) currentDiff.removed++;
    if (/\b(TODO|FIXME|XXX)\b/.test(line)) todos++;
    if (inBlock || diffLine) continue;
    const heading = /^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$/.exec(line) ?? /^([A-Z][\w ()/-]{1,40}):\s*$/.exec(line);
    if (heading) {
      headings.push(heading[1]);
      continue;
    }
    if (/^\s*([-*+]|\d+[.)])\s+\S/.test(line)) listItems++;
    if (/(error|exception|traceback|fail(ed|ure)?|panic)\b/i.test(line) && errorLines.length < MAX_LISTED) errorLines.push(clip(line.trim(), 120));
  }
  if (inBlock) blocks.push(inBlock);

  const tokens = countTokens(prompt);
  const out: string[] = [];
  out.push(`[local] Deterministic offline analysis by the local provider (model ${LOCAL_MODEL}); not an AI-generated answer.`);
  out.push('');
  out.push('## What the request contains');
  out.push(`- ${lines.length} lines (${nonEmpty.length} non-empty), ${prompt.length} characters, ${tokens} tokens`);
  if (system) out.push(`- system instructions: ${system.split(/\r?\n/).length} lines, ${countTokens(system)} tokens`);
  if (headings.length) out.push(`- ${headings.length} section${plural(headings.length)}: ${headings.slice(0, MAX_LISTED).map((h) => `"${clip(h, 60)}"`).join(', ')}${more(headings.length)}`);
  if (blocks.length) out.push(`- ${blocks.length} code block${plural(blocks.length)}: ${blocks.slice(0, MAX_LISTED).map((b) => `${b.language} (${b.lines} line${plural(b.lines)})`).join(', ')}${more(blocks.length)}`);
  if (diffFiles.length) {
    const added = diffFiles.reduce((s, f) => s + f.added, 0);
    const removed = diffFiles.reduce((s, f) => s + f.removed, 0);
    out.push(`- a diff touching ${diffFiles.length} file${plural(diffFiles.length)}: +${added} −${removed}`);
  }
  if (listItems) out.push(`- ${listItems} list item${plural(listItems)}`);
  if (todos) out.push(`- ${todos} TODO/FIXME marker${plural(todos)}`);
  if (errorLines.length) out.push(`- ${errorLines.length} line${plural(errorLines.length)} mentioning errors`);
  out.push('');
  out.push('## First lines');
  for (const line of nonEmpty.slice(0, 3)) out.push(`> ${clip(line.trim(), 120)}`);
  if (!nonEmpty.length) out.push('> (the request is empty)');
  out.push('');
  out.push('## Checklist');
  const checklist: string[] = [];
  for (const f of diffFiles.slice(0, MAX_LISTED)) checklist.push(`Review the changes to ${f.path} (+${f.added} −${f.removed})`);
  for (const line of errorLines) checklist.push(`Investigate: ${line}`);
  for (const b of blocks.slice(0, MAX_LISTED)) checklist.push(`Read the ${b.language} block (${b.lines} line${plural(b.lines)})`);
  for (const h of headings.slice(0, MAX_LISTED)) checklist.push(`Address the section "${clip(h, 60)}"`);
  if (todos) checklist.push(`Resolve the ${todos} TODO/FIXME marker${plural(todos)}`);
  if (!checklist.length) checklist.push('Read the request in full: it has no sections, code, diff or errors to break it down by');
  for (const item of checklist) out.push(`- [ ] ${item}`);
  return out.join('\n');
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function plural(n: number): string {
  return n === 1 ? '' : 's';
}

function more(n: number): string {
  return n > MAX_LISTED ? ` and ${n - MAX_LISTED} more` : '';
}
