import { describe, expect, it } from 'vitest';
import { definitionSchema, type WorkflowDefinition } from '../../../shared/workflows/definition.js';
import { requiredVariables, validateDefinition } from '../../../shared/workflows/validation.js';
import { criticalPath, findCycles, levelsOf } from '../../../shared/workflows/graph.js';

type StepInput = { id: string; depends_on?: string[]; type?: string; payload?: Record<string, unknown>; condition?: string; timeout_seconds?: number };

function def(steps: StepInput[], extra: Partial<WorkflowDefinition> = {}): WorkflowDefinition {
  return definitionSchema.parse({
    name: 'wf',
    ...extra,
    steps: steps.map((s) => ({ type: 'custom', payload: { prompt: `do ${s.id}` }, ...s })),
  });
}

const codes = (d: WorkflowDefinition) => validateDefinition(d).errors.map((e) => e.code);

describe('validation that costs no more than the request', () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `s${i}`);

  it('refuses more than 200 steps before any graph work, with a small answer', () => {
    const steps = ids(1000).map((id, i) => ({ id, depends_on: i ? [`s${i - 1}`, `s${(i * 7) % 1000}`] : ['s999'] }));
    const definition = def(steps);
    const started = performance.now();
    const result = validateDefinition(definition);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(result).toEqual({
      valid: false,
      errors: [{ code: 'too_many_steps', message: 'a workflow has at most 200 steps, this one has 1000', path: 'steps' }],
      warnings: [],
      levels: [],
      critical_path: [],
      truncated: false,
    });
  });

  it('reports at most 20 cycles, and says more were found', () => {
    const result = validateDefinition(def(ids(200).map((id, i) => ({ id, depends_on: [`s${i ^ 1}`] }))));
    expect(result.errors.filter((e) => e.code === 'cycle')).toHaveLength(20);
    expect(result.errors[0]).toMatchObject({ message: 'dependency cycle: s0 → s1 → s0' });
    expect(result.truncated).toBe(true);
  });

  it('reports one cycle per group of mutually dependent steps, its path capped', () => {
    const result = validateDefinition(def(ids(200).map((id) => ({ id, depends_on: ids(200).filter((d) => d !== id).reverse() }))));
    const cycles = result.errors.filter((e) => e.code === 'cycle');
    expect(cycles).toHaveLength(1);
    expect(cycles[0].message).toBe('dependency cycle: s0 → s199 → s0');
    const ring = validateDefinition(def(ids(100).map((id, i) => ({ id, depends_on: [`s${(i + 1) % 100}`] }))));
    const [cycle] = ring.errors;
    expect(cycle.message).toBe(`dependency cycle: ${ids(20).join(' → ')} → … → s0`);
    expect(JSON.stringify(ring).length).toBeLessThan(2000);
  });

  it('lists at most 100 errors and 100 warnings, with `truncated`', () => {
    const unknown = Array.from({ length: 1000 }, (_, j) => `u${j}`);
    const result = validateDefinition(def(ids(200).map((id) => ({ id, depends_on: unknown }))));
    expect(result.errors).toHaveLength(100);
    expect(result.valid).toBe(false);
    expect(result.truncated).toBe(true);
    const dup = validateDefinition(def([{ id: 'a' }, ...ids(50).map((id) => ({ id, depends_on: ['a', 'a', 'a', 'a'] }))]));
    expect(dup.valid).toBe(true);
    expect(dup.warnings).toHaveLength(100);
    expect(dup.truncated).toBe(true);
  });

  it('stays fast on the densest graph the limits allow', () => {
    const cyclic = def(ids(200).map((id) => ({ id, depends_on: ids(200).filter((d) => d !== id) })));
    const dense = def(ids(200).map((id, i) => ({ id, depends_on: ids(i) })));
    const started = performance.now();
    validateDefinition(cyclic);
    validateDefinition(dense);
    expect(performance.now() - started).toBeLessThan(3000);
  });
});

describe('validateDefinition', () => {
  it('accepts a diamond and answers its levels and critical path', () => {
    const result = validateDefinition(def([{ id: 'a' }, { id: 'b', depends_on: ['a'] }, { id: 'c', depends_on: ['a'] }, { id: 'd', depends_on: ['b', 'c'] }]));
    expect(result).toMatchObject({ valid: true, errors: [], levels: [['a'], ['b', 'c'], ['d']], critical_path: ['a', 'b', 'd'] });
  });

  it('reports a cycle with its path', () => {
    const result = validateDefinition(def([{ id: 'a', depends_on: ['c'] }, { id: 'b', depends_on: ['a'] }, { id: 'c', depends_on: ['b'] }, { id: 'd' }]));
    expect(result.valid).toBe(false);
    const cycle = result.errors.find((e) => e.code === 'cycle')!;
    expect(cycle.message).toBe('dependency cycle: a → c → b → a');
    expect(cycle.path).toBe('steps.0.depends_on');
    expect(result.levels).toEqual([]);
    expect(result.critical_path).toEqual([]);
  });

  it('reports each distinct cycle once', () => {
    const cycles = findCycles([
      { id: 'a', depends_on: ['b'] },
      { id: 'b', depends_on: ['a'] },
      { id: 'c', depends_on: ['d'] },
      { id: 'd', depends_on: ['c', 'a'] },
    ]);
    expect(cycles).toEqual([
      ['a', 'b', 'a'],
      ['c', 'd', 'c'],
    ]);
  });

  it('reports unknown and self dependencies and duplicate ids with their paths', () => {
    const result = validateDefinition(def([{ id: 'a', depends_on: ['a'] }, { id: 'b', depends_on: ['zzz'] }, { id: 'b' }]));
    expect(result.errors).toEqual(
      expect.arrayContaining([
        { code: 'self_dependency', message: "step 'a' depends on itself", path: 'steps.0.depends_on.0' },
        { code: 'unknown_dependency', message: expect.stringContaining("'zzz'"), path: 'steps.1.depends_on.0' },
        { code: 'duplicate_step_id', message: expect.stringContaining("'b'"), path: 'steps.2.id' },
      ]),
    );
  });

  it('reports unknown step types and payloads that do not fit the task type', () => {
    expect(validateDefinition(def([{ id: 'a', type: 'deploy' }])).errors).toEqual([
      { code: 'unknown_type', message: expect.stringContaining("unknown step type 'deploy'"), path: 'steps.0.type' },
    ]);
    const payload = validateDefinition(def([{ id: 'a', payload: { prompt: 'x', colour: 'red' } }, { id: 'b', type: 'pr_review', payload: { repository: 'r' } }]));
    expect(payload.errors.map((e) => [e.code, e.path])).toEqual(
      expect.arrayContaining([
        ['invalid_payload', 'steps.0.payload.colour'],
        ['invalid_payload', 'steps.1.payload.title'],
        ['invalid_payload', 'steps.1.payload.diff'],
      ]),
    );
  });

  it('refuses more than 200 steps', () => {
    const steps = Array.from({ length: 201 }, (_, i) => ({ id: `s${i}` }));
    const result = validateDefinition(def(steps));
    expect(result.errors).toEqual([{ code: 'too_many_steps', message: expect.stringContaining('201'), path: 'steps' }]);
    expect(validateDefinition(def(steps.slice(0, 200))).valid).toBe(true);
  });

  it('checks templates: known syntax, existing steps, upstream only', () => {
    const result = validateDefinition(
      def([
        { id: 'a' },
        { id: 'b', depends_on: ['a'], payload: { prompt: 'use {{steps.a.output}} and {{ variables.x }}' } },
        { id: 'c', payload: { prompt: '{{steps.b.output}}' } },
        { id: 'd', depends_on: ['b'], payload: { prompt: 'transitive {{steps.a.output}}; {{steps.nope.output}}; {{secrets.key}}' } },
      ]),
    );
    expect(result.errors.map((e) => [e.code, e.path])).toEqual([
      ['template_not_upstream', 'steps.2.payload.prompt'],
      ['invalid_template', 'steps.3.payload.prompt'],
      ['unknown_template_step', 'steps.3.payload.prompt'],
    ]);
  });

  it('checks conditions: syntax, names, functions, upstream steps, no regex operator', () => {
    const cases: Array<[string, RegExp]> = [
      ['steps.a.status == ', /syntax error/],
      ['steps.a.result == "x"', /unknown name 'steps.a.result'/],
      ['password == "x"', /unknown name 'password'/],
      ['system("ls")', /unknown function 'system'/],
      ['steps.a.output ~= "(a+)+$"', /'~=' is not allowed/],
      ['steps.b.status == "completed"', /does not depend on/],
      ['steps.ghost.status == "completed"', /not a step of this workflow/],
    ];
    for (const [condition, message] of cases) {
      const result = validateDefinition(def([{ id: 'a' }, { id: 'b' }, { id: 'c', depends_on: ['a'], condition }]));
      expect(result.errors, condition).toEqual([{ code: 'invalid_condition', message: expect.stringMatching(message), path: 'steps.2.condition' }]);
    }
    expect(validateDefinition(def([{ id: 'a' }, { id: 'c', depends_on: ['a'], condition: 'contains(steps.a.output, "ok") and variables.env == "prod"' }])).valid).toBe(true);
  });

  it('warns about unused and undeclared variables, duplicate dependencies and step timeouts beyond the run timeout', () => {
    const result = validateDefinition(
      def([{ id: 'a', payload: { prompt: '{{variables.repo}}' }, timeout_seconds: 600 }, { id: 'b', depends_on: ['a', 'a'] }], {
        variables: { unused: 1 },
        timeout_seconds: 60,
      }),
    );
    expect(result.valid).toBe(true);
    expect(result.warnings.map((w) => w.code).sort()).toEqual(['duplicate_dependency', 'step_timeout_exceeds_workflow', 'undeclared_variable', 'unused_variable']);
  });

  it('lists the variables a run needs', () => {
    const d = def([{ id: 'a', payload: { prompt: '{{variables.x}}' } }, { id: 'b', depends_on: ['a'], condition: 'variables.y > 1' }]);
    expect(requiredVariables(d).sort()).toEqual(['x', 'y']);
  });

  it('finds every error of a definition at once', () => {
    expect(codes(def([{ id: 'a', depends_on: ['b'] }, { id: 'b', depends_on: ['a'], type: 'nope' }]))).toEqual(['unknown_type', 'cycle']);
  });
});

describe('graph', () => {
  const nodes = [
    { id: 'a', depends_on: [] },
    { id: 'b', depends_on: ['a'] },
    { id: 'c', depends_on: [] },
    { id: 'd', depends_on: ['b', 'c'] },
    { id: 'e', depends_on: ['c'] },
  ];
  it('groups steps into parallel levels', () => {
    expect(levelsOf(nodes)).toEqual([['a', 'c'], ['b', 'e'], ['d']]);
  });
  it('follows the longest chain for the critical path', () => {
    expect(criticalPath(nodes)).toEqual(['a', 'b', 'd']);
    expect(criticalPath([{ id: 'x', depends_on: [] }])).toEqual(['x']);
  });
});
