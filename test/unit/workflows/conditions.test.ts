import { describe, expect, it } from 'vitest';
import { analyseCondition, ConditionError, evaluateCondition, type ConditionData } from '../../../shared/workflows/conditions.js';
import { collectTemplateRefs, renderPayload, TemplateError } from '../../../shared/workflows/templates.js';

const data: ConditionData = {
  variables: { env: 'prod', retries: 3, dry_run: false },
  steps: { review: { status: 'completed', output: 'LGTM, ship it' }, lint: { status: 'completed', output: '' } },
};

describe('conditions (filtrex)', () => {
  it.each([
    ['steps.review.status == "completed"', true],
    ['contains(steps.review.output, "LGTM") and variables.env == "prod"', true],
    ['starts_with(lower(steps.review.output), "lgtm")', true],
    ['variables.env in ("staging", "dev")', false],
    ['variables.retries > 2 and not variables.dry_run', true],
    ['empty(steps.lint.output)', true],
    ['len(steps.review.output) < 5 or variables.missing == null', true],
    ["'steps.review.status' == \"completed\"", true],
  ])('%s → %s', (expression, expected) => {
    expect(evaluateCondition(expression, data)).toBe(expected);
  });

  it('names what it references', () => {
    expect(analyseCondition('steps.review.output == "x" and variables.env != "dev"')).toEqual([
      { kind: 'step', stepId: 'review', field: 'output' },
      { kind: 'variable', name: 'env' },
    ]);
  });

  it('refuses anything outside the sandbox', () => {
    for (const bad of ['constructor', 'process.env', 'steps.review.constructor', 'require("fs")', 'steps.review.output ~= "a"', 'variables.env ==']) {
      expect(() => analyseCondition(bad), bad).toThrow(ConditionError);
    }
  });

  it('never reaches prototype members at run time', () => {
    expect(evaluateCondition('steps.toString.output == null', data)).toBe(true);
  });

  it('a result that is not a boolean, or a type error, is a ConditionError', () => {
    expect(() => evaluateCondition('steps.review.output', data)).toThrow(/must be true or false/);
    expect(() => evaluateCondition('variables.env > 3', data)).toThrow(ConditionError);
  });
});

describe('templates', () => {
  it('finds references and invalid placeholders with their paths', () => {
    const { refs, invalid } = collectTemplateRefs({ a: 'x {{ variables.repo }} {{steps.s1.output}}', list: ['{{ nope }}'] }, 'payload');
    expect(refs).toEqual([
      { kind: 'variable', name: 'repo', path: 'payload.a' },
      { kind: 'step_output', stepId: 's1', path: 'payload.a' },
    ]);
    expect(invalid).toEqual([{ path: 'payload.list.0', text: '{{ nope }}' }]);
  });

  it('renders every string of a payload, leaving other values alone', () => {
    const out = renderPayload(
      { prompt: 'Fix {{variables.repo}}: {{steps.a.output}}', n: 3, files: [{ path: '{{variables.repo}}/x.ts' }] },
      { variables: { repo: 'api', n: 1 }, outputs: { a: 'the bug' } },
    );
    expect(out).toEqual({ prompt: 'Fix api: the bug', n: 3, files: [{ path: 'api/x.ts' }] });
  });

  it('a reference without a value is an error naming where', () => {
    expect(() => renderPayload({ p: '{{variables.none}}' }, { variables: {}, outputs: {} })).toThrow(TemplateError);
    expect(() => renderPayload({ p: '{{steps.b.output}}' }, { variables: {}, outputs: {} })).toThrow("step 'b' has no output");
  });
});
