/**
 * Whole-definition checks, behind both `POST /workflows/validate` and create/update (which refuse with
 * 422 exactly what validation reports as errors). Paths are dotted like the API's field errors
 * (`steps.2.depends_on.0`).
 */
import { MAX_STEPS, STEP_TYPES, type WorkflowDefinition } from './definition.js';
import { PAYLOAD_SCHEMAS } from '../tasks/payloads.js';
import type { TaskType } from '../tasks/status.js';
import { analyseCondition, ConditionError, type ConditionRef } from './conditions.js';
import { collectTemplateRefs } from './templates.js';
import { ancestorsOf, criticalPath, findCycles, levelsOf, MAX_CYCLES } from './graph.js';

export type ValidationCode =
  | 'too_many_steps'
  | 'duplicate_step_id'
  | 'unknown_type'
  | 'invalid_payload'
  | 'self_dependency'
  | 'unknown_dependency'
  | 'cycle'
  | 'invalid_template'
  | 'unknown_template_step'
  | 'template_not_upstream'
  | 'invalid_condition';

export type WarningCode = 'duplicate_dependency' | 'unused_variable' | 'undeclared_variable' | 'step_timeout_exceeds_workflow';

export interface ValidationIssue<C extends string = string> {
  code: C;
  message: string;
  path: string;
}

export interface ValidationResult {
  valid: boolean;
  errors: ValidationIssue<ValidationCode>[];
  warnings: ValidationIssue<WarningCode>[];
  /** Parallel stages in order; empty when the graph has errors. */
  levels: string[][];
  /** Longest chain of dependent steps; empty when the graph has errors. */
  critical_path: string[];
  /** More errors or warnings were found than the MAX_ISSUES of each listed. */
  truncated: boolean;
}

/** At most this many errors, and as many warnings, are listed (then `truncated`). */
export const MAX_ISSUES = 100;

/** A list that keeps its first MAX_ISSUES entries and remembers whether more came. */
class IssueList<C extends string> extends Array<ValidationIssue<C>> {
  overflowed = false;
  count = 0;
  override push(...items: ValidationIssue<C>[]): number {
    for (const item of items) {
      this.count++;
      if (this.length < MAX_ISSUES) super.push(item);
      else this.overflowed = true;
    }
    return this.length;
  }
}

const KNOWN_TYPES = new Set<string>(STEP_TYPES);

export function validateDefinition(definition: WorkflowDefinition): ValidationResult {
  const errors = new IssueList<ValidationCode>();
  const warnings = new IssueList<WarningCode>();
  const { steps } = definition;

  // Refused before any graph work: what follows is bounded by MAX_STEPS.
  if (steps.length > MAX_STEPS) {
    return {
      valid: false,
      errors: [{ code: 'too_many_steps', message: `a workflow has at most ${MAX_STEPS} steps, this one has ${steps.length}`, path: 'steps' }],
      warnings: [],
      levels: [],
      critical_path: [],
      truncated: false,
    };
  }

  const firstIndex = new Map<string, number>();
  steps.forEach((step, i) => {
    const earlier = firstIndex.get(step.id);
    if (earlier !== undefined) {
      errors.push({ code: 'duplicate_step_id', message: `step id '${step.id}' is already used by steps.${earlier}`, path: `steps.${i}.id` });
    } else firstIndex.set(step.id, i);
    if (!KNOWN_TYPES.has(step.type)) {
      errors.push({ code: 'unknown_type', message: `unknown step type '${step.type}' (one of ${STEP_TYPES.join(', ')})`, path: `steps.${i}.type` });
    } else {
      // The payload becomes the task's payload: check it against the task type's schema now rather than
      // at run time. Templates are strings, so a templated field must be a string field.
      const parsed = PAYLOAD_SCHEMAS[step.type as TaskType].safeParse(step.payload);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          const base = [`steps.${i}.payload`, ...issue.path.map(String)];
          if (issue.code === 'unrecognized_keys') {
            for (const key of issue.keys) errors.push({ code: 'invalid_payload', message: `unknown field for a ${step.type} task`, path: [...base, key].join('.') });
          } else errors.push({ code: 'invalid_payload', message: issue.message, path: base.join('.') });
        }
      }
    }
  });

  let graphUsable = true;
  steps.forEach((step, i) => {
    const seen = new Set<string>();
    step.depends_on.forEach((dep, j) => {
      const path = `steps.${i}.depends_on.${j}`;
      if (dep === step.id) {
        errors.push({ code: 'self_dependency', message: `step '${step.id}' depends on itself`, path });
        graphUsable = false;
      } else if (!firstIndex.has(dep)) {
        errors.push({ code: 'unknown_dependency', message: `step '${step.id}' depends on '${dep}', which is not a step of this workflow`, path });
        graphUsable = false;
      } else if (seen.has(dep)) {
        warnings.push({ code: 'duplicate_dependency', message: `'${dep}' is listed twice`, path });
      }
      seen.add(dep);
    });
  });
  if (firstIndex.size !== steps.length) graphUsable = false;

  // Unique steps with their known dependencies: enough to look for cycles even when other errors exist.
  const nodes = [...firstIndex.entries()].map(([id, i]) => ({
    id,
    depends_on: [...new Set(steps[i].depends_on.filter((d) => d !== id && firstIndex.has(d)))],
  }));
  const cycles = findCycles(nodes, MAX_CYCLES + 1);
  if (cycles.length > MAX_CYCLES) {
    cycles.length = MAX_CYCLES;
    errors.overflowed = true;
  }
  for (const cycle of cycles) {
    errors.push({
      code: 'cycle',
      message: `dependency cycle: ${cycle.join(' → ')}`,
      path: `steps.${firstIndex.get(cycle[0])}.depends_on`,
    });
    graphUsable = false;
  }

  const ancestors = ancestorsOf(nodes);
  const declared = new Set(Object.keys(definition.variables ?? {}));
  const usedVariables = new Map<string, string>();
  const checkStepRef = (stepIndex: number, refId: string, path: string, what: 'template' | 'condition') => {
    const self = steps[stepIndex].id;
    if (!firstIndex.has(refId)) {
      errors.push(
        what === 'template'
          ? { code: 'unknown_template_step', message: `{{steps.${refId}.output}} names no step of this workflow`, path }
          : { code: 'invalid_condition', message: `the condition names step '${refId}', which is not a step of this workflow`, path },
      );
      return;
    }
    if (refId === self || !ancestors.get(self)?.has(refId)) {
      const message = `step '${self}' uses the output of '${refId}' but does not depend on it (add it to depends_on, directly or through another step)`;
      errors.push(
        what === 'template'
          ? { code: 'template_not_upstream', message, path }
          : { code: 'invalid_condition', message: `the condition reads step '${refId}', which '${self}' does not depend on`, path },
      );
    }
  };

  steps.forEach((step, i) => {
    const { refs, invalid } = collectTemplateRefs(step.payload, `steps.${i}.payload`);
    for (const bad of invalid) {
      errors.push({
        code: 'invalid_template',
        message: `${bad.text} is not a template: use {{variables.<name>}} or {{steps.<id>.output}}`,
        path: bad.path,
      });
    }
    for (const ref of refs) {
      if (ref.kind === 'variable') {
        if (!usedVariables.has(ref.name)) usedVariables.set(ref.name, ref.path);
      } else checkStepRef(i, ref.stepId, ref.path, 'template');
    }
    if (step.condition !== undefined) {
      const path = `steps.${i}.condition`;
      let condRefs: ConditionRef[] = [];
      try {
        condRefs = analyseCondition(step.condition);
      } catch (err) {
        if (!(err instanceof ConditionError)) throw err;
        errors.push({ code: 'invalid_condition', message: err.message, path });
      }
      for (const ref of condRefs) {
        if (ref.kind === 'variable') {
          if (!usedVariables.has(ref.name)) usedVariables.set(ref.name, path);
        } else checkStepRef(i, ref.stepId, path, 'condition');
      }
    }
    if (definition.timeout_seconds !== undefined && step.timeout_seconds !== undefined && step.timeout_seconds > definition.timeout_seconds) {
      warnings.push({
        code: 'step_timeout_exceeds_workflow',
        message: `the step's timeout (${step.timeout_seconds} s) is longer than the workflow's (${definition.timeout_seconds} s)`,
        path: `steps.${i}.timeout_seconds`,
      });
    }
  });

  for (const name of declared) {
    if (!usedVariables.has(name)) warnings.push({ code: 'unused_variable', message: `variable '${name}' is never used`, path: `variables.${name}` });
  }
  for (const [name, path] of usedVariables) {
    if (!declared.has(name)) {
      warnings.push({ code: 'undeclared_variable', message: `variable '${name}' has no default: every run must pass it`, path });
    }
  }

  const usable = graphUsable;
  return {
    valid: errors.count === 0,
    errors: [...errors],
    warnings: [...warnings],
    levels: usable ? levelsOf(nodes) : [],
    critical_path: usable ? criticalPath(nodes) : [],
    truncated: errors.overflowed || warnings.overflowed,
  };
}

/** Variables a run must have a value for (referenced by a template or a condition). */
export function requiredVariables(definition: WorkflowDefinition): string[] {
  const names = new Set<string>();
  definition.steps.forEach((step, i) => {
    for (const ref of collectTemplateRefs(step.payload, `steps.${i}.payload`).refs) if (ref.kind === 'variable') names.add(ref.name);
    if (step.condition !== undefined) {
      try {
        for (const ref of analyseCondition(step.condition)) if (ref.kind === 'variable') names.add(ref.name);
      } catch {
        // An invalid condition never reaches a run (validation refuses it).
      }
    }
  });
  return [...names];
}
