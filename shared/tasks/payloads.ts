import * as z from 'zod';
import type { TaskType } from './status.js';

/** Payload schemas, one per task type. Strict: an unknown field is a 422 like anywhere else in a body. */
const text = (max: number) => z.string().trim().min(1).max(max);
const CODE_MAX = 150_000;

const sourceFile = z.strictObject({ path: text(500), content: z.string().max(CODE_MAX) });
const codeSource = {
  code: z.string().min(1).max(CODE_MAX).optional(),
  files: z.array(sourceFile).min(1).max(50).optional(),
  language: text(50).optional(),
};
const needsCode = (p: { code?: string; files?: unknown[] }) => p.code !== undefined || p.files !== undefined;
const needsCodeMessage = { message: 'give `code` or `files`', path: ['code'] };

export const PAYLOAD_SCHEMAS: Record<TaskType, z.ZodType> = {
  pr_review: z.strictObject({
    repository: text(300),
    pr_number: z.number().int().positive().optional(),
    title: text(500),
    description: z.string().max(20_000).optional(),
    diff: z.string().min(1).max(CODE_MAX),
    base_branch: text(200).optional(),
    head_branch: text(200).optional(),
    focus: z.array(text(200)).max(20).optional(),
  }),
  issue_summary: z.strictObject({
    repository: text(300).optional(),
    issue_number: z.number().int().positive().optional(),
    title: text(500),
    body: z.string().max(50_000).default(''),
    comments: z.array(z.strictObject({ author: text(100).optional(), body: z.string().min(1).max(20_000) })).max(100).optional(),
    labels: z.array(text(100)).max(50).optional(),
  }),
  code_analysis: z
    .strictObject({ ...codeSource, repository: text(300).optional(), focus: z.array(text(200)).max(20).optional() })
    .refine(needsCode, needsCodeMessage),
  refactor: z
    .strictObject({ ...codeSource, goals: z.array(text(500)).min(1).max(20), constraints: z.array(text(500)).max(20).optional() })
    .refine(needsCode, needsCodeMessage),
  bug_fix: z.strictObject({
    description: text(20_000),
    error_message: z.string().max(20_000).optional(),
    code_context: z.string().max(CODE_MAX).optional(),
    steps_to_reproduce: z.array(text(1000)).max(50).optional(),
    expected_behavior: z.string().max(5000).optional(),
    language: text(50).optional(),
    repository: text(300).optional(),
  }),
  feature: z.strictObject({
    description: text(20_000),
    requirements: z.array(text(2000)).max(50).optional(),
    acceptance_criteria: z.array(text(2000)).max(50).optional(),
    code_context: z.string().max(CODE_MAX).optional(),
    language: text(50).optional(),
    repository: text(300).optional(),
  }),
  documentation: z
    .strictObject({
      ...codeSource,
      doc_type: z.enum(['api', 'readme', 'inline', 'guide', 'changelog']).default('readme'),
      audience: text(200).optional(),
      subject: text(500).optional(),
    })
    .refine((p) => needsCode(p) || p.subject !== undefined, { message: 'give `code`, `files` or `subject`', path: ['subject'] }),
  testing: z
    .strictObject({
      ...codeSource,
      framework: text(100).optional(),
      test_types: z.array(z.enum(['unit', 'integration', 'e2e', 'property'])).max(4).optional(),
      coverage_goals: z.array(text(500)).max(20).optional(),
    })
    .refine(needsCode, needsCodeMessage),
  security_audit: z
    .strictObject({ ...codeSource, standards: z.array(text(100)).max(20).optional(), threat_model: z.string().max(10_000).optional() })
    .refine(needsCode, needsCodeMessage),
  custom: z.strictObject({
    prompt: z.string().trim().min(1).max(CODE_MAX),
    system: z.string().max(20_000).optional(),
    max_output_tokens: z.number().int().min(1).max(64_000).optional(),
    temperature: z.number().min(0).max(2).optional(),
  }),
};
