/**
 * Step conditions: a filtrex expression (a maintained, sandboxed expression language: no access to
 * anything but the data it is given, no loops) over the variables and upstream steps' status and output:
 *
 *   steps.review.status == "completed" and contains(steps.review.output, "LGTM")
 *   variables.env in ("staging", "production")
 *
 * Names are checked before a definition is accepted: only `variables.<name>`, `steps.<id>.status` and
 * `steps.<id>.output` (of a step the condition's step depends on, directly or not), and the constants
 * `true`, `false`, `null`. The regular-expression operator `~=` is refused: a user-written pattern run
 * on a model's output is a denial-of-service risk (catastrophic backtracking); `contains`,
 * `starts_with` and `ends_with` cover the common needs.
 */
import { compileExpression } from 'filtrex';
import type { VariableValue } from './definition.js';

export type ConditionRef =
  | { kind: 'variable'; name: string }
  | { kind: 'step'; stepId: string; field: 'status' | 'output' };

export class ConditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConditionError';
  }
}

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'of', 'if', 'then', 'else', 'mod']);
const CONSTANTS: Record<string, unknown> = { true: true, false: false, null: null };

const str = (v: unknown): string => {
  if (typeof v !== 'string') throw new ConditionError(`expected a string, got ${v === null ? 'null' : typeof v}`);
  return v;
};

const EXTRA_FUNCTIONS: Record<string, (...args: unknown[]) => unknown> = {
  contains: (text, part) => str(text).includes(str(part)),
  starts_with: (text, part) => str(text).startsWith(str(part)),
  ends_with: (text, part) => str(text).endsWith(str(part)),
  lower: (text) => str(text).toLowerCase(),
  upper: (text) => str(text).toUpperCase(),
  trim: (text) => str(text).trim(),
  len: (text) => str(text).length,
};
const BUILTIN_FUNCTIONS = ['abs', 'ceil', 'floor', 'log', 'log2', 'log10', 'max', 'min', 'round', 'sqrt', 'exists', 'empty'];
export const CONDITION_FUNCTIONS = [...BUILTIN_FUNCTIONS, ...Object.keys(EXTRA_FUNCTIONS)].sort();

interface Token {
  kind: 'symbol' | 'function' | 'regex_operator';
  text: string;
}

/** The lexer's view of an expression, following filtrex's own token rules. */
function tokens(expression: string): Token[] {
  const out: Token[] = [];
  const lexeme = /\s+|"(?:\\"|\\\\|[^"\\])*"|'((?:\\'|\\\\|[^'\\])*)'|([a-zA-Z$_][.a-zA-Z0-9$_]*)|(~=)|./gy;
  let match: RegExpExecArray | null;
  while ((match = lexeme.exec(expression)) !== null) {
    const [, quotedSymbol, bareSymbol, regexOperator] = match;
    if (quotedSymbol !== undefined) out.push({ kind: 'symbol', text: quotedSymbol.replace(/\\(['\\])/g, '$1') });
    else if (bareSymbol !== undefined) {
      if (KEYWORDS.has(bareSymbol)) {
        out.push({ kind: 'symbol', text: `\u0000${bareSymbol}` });
        continue;
      }
      const rest = expression.slice(lexeme.lastIndex);
      out.push({ kind: /^\s*\(/.test(rest) ? 'function' : 'symbol', text: bareSymbol });
    } else if (regexOperator !== undefined) out.push({ kind: 'regex_operator', text: regexOperator });
    if (lexeme.lastIndex >= expression.length) break;
  }
  return out;
}

function refOf(name: string): ConditionRef | undefined {
  const variable = /^variables\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(name);
  if (variable) return { kind: 'variable', name: variable[1] };
  const step = /^steps\.([A-Za-z_][A-Za-z0-9_]*)\.(status|output)$/.exec(name);
  if (step) return { kind: 'step', stepId: step[1], field: step[2] as 'status' | 'output' };
  return undefined;
}

/**
 * Checks an expression without running it: syntax (filtrex's parser), names and functions. Answers
 * the names it references, or throws `ConditionError` naming the first problem.
 */
export function analyseCondition(expression: string): ConditionRef[] {
  try {
    compile(expression);
  } catch (err) {
    throw new ConditionError(`syntax error: ${oneLine((err as Error).message)}`);
  }
  const refs: ConditionRef[] = [];
  for (const token of tokens(expression)) {
    if (token.kind === 'regex_operator') throw new ConditionError("the regular-expression operator '~=' is not allowed; use contains(), starts_with() or ends_with()");
    if (token.kind === 'function') {
      if (!CONDITION_FUNCTIONS.includes(token.text)) throw new ConditionError(`unknown function '${token.text}' (available: ${CONDITION_FUNCTIONS.join(', ')})`);
      continue;
    }
    if (token.text.startsWith('\u0000')) continue;
    if (Object.hasOwn(CONSTANTS, token.text)) continue;
    const ref = refOf(token.text);
    if (!ref) {
      throw new ConditionError(`unknown name '${token.text}': use variables.<name>, steps.<id>.status or steps.<id>.output`);
    }
    refs.push(ref);
  }
  return refs;
}

export interface ConditionData {
  variables: Record<string, VariableValue>;
  steps: Record<string, { status: string; output: string | null }>;
}

/** Dotted names resolve through own properties only; a missing one is null, never a prototype member. */
function ownPath(name: string, _get: unknown, obj: unknown): unknown {
  let value: unknown = obj;
  for (const part of name.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return null;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function compile(expression: string) {
  return compileExpression(expression, {
    extraFunctions: EXTRA_FUNCTIONS,
    constants: CONSTANTS,
    customProp: ownPath,
    operators: {
      '==': (a, b) => a === b,
      '!=': (a, b) => a !== b,
      '~=': () => {
        throw new ConditionError("the regular-expression operator '~=' is not allowed");
      },
    },
  });
}

/** Runs a condition; answers true or false, or throws `ConditionError` (type errors, non-boolean result). */
export function evaluateCondition(expression: string, data: ConditionData): boolean {
  let fn;
  try {
    fn = compile(expression);
  } catch (err) {
    throw new ConditionError(`syntax error: ${oneLine((err as Error).message)}`);
  }
  const result: unknown = fn(data);
  if (result instanceof Error) throw new ConditionError(oneLine(result.message));
  if (typeof result !== 'boolean') throw new ConditionError(`the condition must be true or false, it gave ${result === null ? 'null' : typeof result}`);
  return result;
}

/** Parser messages span lines (the expression, a caret, what was expected): one line for an API error. */
function oneLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).join(' ').slice(0, 300);
}
