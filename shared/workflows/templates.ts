/**
 * Step payload templates: any string inside a step's payload may contain `{{variables.<name>}}` and
 * `{{steps.<id>.output}}` (spaces inside the braces are allowed). Nothing else is a template: an
 * unrecognised `{{…}}` is a validation error, not literal text, so that a typo never reaches a provider.
 */
import type { VariableValue } from './definition.js';

export type TemplateRef =
  | { kind: 'variable'; name: string; path: string }
  | { kind: 'step_output'; stepId: string; path: string };

export interface InvalidTemplate {
  path: string;
  text: string;
}

const PLACEHOLDER = /\{\{(.*?)\}\}/gs;
const VARIABLE_REF = /^variables\.([A-Za-z_][A-Za-z0-9_]*)$/;
const STEP_OUTPUT_REF = /^steps\.([A-Za-z_][A-Za-z0-9_]*)\.output$/;

export class TemplateError extends Error {
  constructor(message: string, readonly path: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

function parsePlaceholder(inner: string, path: string): TemplateRef | undefined {
  const text = inner.trim();
  const variable = VARIABLE_REF.exec(text);
  if (variable) return { kind: 'variable', name: variable[1], path };
  const step = STEP_OUTPUT_REF.exec(text);
  if (step) return { kind: 'step_output', stepId: step[1], path };
  return undefined;
}

/** Visits every string of a JSON value with its dotted path (`payload.files.0`). */
function visitStrings(value: unknown, path: string, visit: (text: string, path: string) => void): void {
  if (typeof value === 'string') visit(value, path);
  else if (Array.isArray(value)) value.forEach((item, i) => visitStrings(item, `${path}.${i}`, visit));
  else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) visitStrings(item, `${path}.${key}`, visit);
  }
}

/** Every template reference in a payload, and every `{{…}}` that is not one. */
export function collectTemplateRefs(payload: unknown, basePath: string): { refs: TemplateRef[]; invalid: InvalidTemplate[] } {
  const refs: TemplateRef[] = [];
  const invalid: InvalidTemplate[] = [];
  visitStrings(payload, basePath, (text, path) => {
    for (const match of text.matchAll(PLACEHOLDER)) {
      const ref = parsePlaceholder(match[1], path);
      if (ref) refs.push(ref);
      else invalid.push({ path, text: match[0] });
    }
  });
  return { refs, invalid };
}

export interface TemplateContext {
  variables: Record<string, VariableValue>;
  /** Outputs of finished steps, by step id. */
  outputs: Record<string, string>;
}

function renderString(text: string, path: string, context: TemplateContext): string {
  return text.replace(PLACEHOLDER, (whole, inner: string) => {
    const ref = parsePlaceholder(inner, path);
    if (!ref) throw new TemplateError(`invalid template ${whole}`, path);
    if (ref.kind === 'variable') {
      if (!Object.hasOwn(context.variables, ref.name)) throw new TemplateError(`variable '${ref.name}' has no value`, path);
      return String(context.variables[ref.name]);
    }
    if (!Object.hasOwn(context.outputs, ref.stepId)) throw new TemplateError(`step '${ref.stepId}' has no output`, path);
    return context.outputs[ref.stepId];
  });
}

/** The payload with every template replaced; throws `TemplateError` for a reference without a value. */
export function renderPayload<T>(payload: T, context: TemplateContext, basePath = 'payload'): T {
  const render = (value: unknown, path: string): unknown => {
    if (typeof value === 'string') return renderString(value, path, context);
    if (Array.isArray(value)) return value.map((item, i) => render(item, `${path}.${i}`));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, render(item, `${path}.${key}`)]));
    }
    return value;
  };
  return render(payload, basePath) as T;
}

/** Variable names the payloads reference. */
export function referencedVariables(payloads: Array<{ payload: unknown; path: string }>): Map<string, string> {
  const names = new Map<string, string>();
  for (const { payload, path } of payloads) {
    for (const ref of collectTemplateRefs(payload, path).refs) if (ref.kind === 'variable' && !names.has(ref.name)) names.set(ref.name, ref.path);
  }
  return names;
}
