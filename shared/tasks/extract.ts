import type { TaskType } from './status.js';

/**
 * What a result carries besides the raw output: the fenced code blocks (every type may answer with
 * code), and what the type's prompt asks the model to state (a review's verdict, an audit's severities).
 */
export interface ExtractedResult {
  output: string;
  output_truncated?: boolean;
  code_blocks?: { language: string | null; code: string }[];
  verdict?: 'approve' | 'request_changes' | 'comment';
  findings?: { critical: number; high: number; medium: number; low: number };
  summary?: string;
}

const MAX_BLOCKS = 20;

export function codeBlocks(output: string): { language: string | null; code: string }[] {
  const blocks: { language: string | null; code: string }[] = [];
  const fence = /```([\w+#.-]*)[^\n]*\n([\s\S]*?)```/g;
  for (let m = fence.exec(output); m && blocks.length < MAX_BLOCKS; m = fence.exec(output)) {
    blocks.push({ language: m[1] || null, code: m[2].replace(/\n$/, '') });
  }
  return blocks;
}

export function extractResult(type: TaskType, output: string): Omit<ExtractedResult, 'output' | 'output_truncated'> {
  const out: Omit<ExtractedResult, 'output' | 'output_truncated'> = {};
  const blocks = codeBlocks(output);
  if (blocks.length) out.code_blocks = blocks;
  if (type === 'pr_review') {
    const m = /VERDICT:\s*(APPROVE|REQUEST_CHANGES|COMMENT)/i.exec(output);
    if (m) out.verdict = m[1].toLowerCase() as ExtractedResult['verdict'];
  }
  if (type === 'security_audit') {
    const findings = { critical: 0, high: 0, medium: 0, low: 0 };
    for (const m of output.matchAll(/SEVERITY:\s*(CRITICAL|HIGH|MEDIUM|LOW)/gi)) findings[m[1].toLowerCase() as keyof typeof findings]++;
    out.findings = findings;
  }
  if (type === 'issue_summary') {
    const firstParagraph = output.trim().split(/\n\s*\n/)[0]?.trim();
    if (firstParagraph) out.summary = firstParagraph.slice(0, 2000);
  }
  return out;
}

/** Cuts a string to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): { text: string; truncated: boolean } {
  if (Buffer.byteLength(text) <= maxBytes) return { text, truncated: false };
  let cut = Buffer.from(text).subarray(0, maxBytes).toString('utf8');
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return { text: cut, truncated: true };
}
