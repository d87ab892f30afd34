import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { App, Stack, Validations, type PolicyValidationPluginReport } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { addNagPacks, flattenCfnValue, nagPacks } from '../../lib/nag.js';
import { buildStack, removeOutdirs } from './helpers.js';

afterAll(removeOutdirs);

type NagPackLike = { validateScope(scope: App): PolicyValidationPluginReport };

/** Runs cdk-nag's AwsSolutions and Serverless packs over the app; lists unacknowledged findings. */
function findings(app: App): string[] {
  return nagPacks().flatMap((pack) =>
    (pack as unknown as NagPackLike)
      .validateScope(app)
      .violations.flatMap((v) => v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${r.constructPath}`)),
  );
}

describe('cdk-nag (AwsSolutions + Serverless)', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'supervisor-nag-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  for (const [stage, envAgnostic] of [['dev', false], ['prod', false], ['dev', true]] as const) {
    it(`reports no unacknowledged finding, error or warning, for stage ${stage}${envAgnostic ? ' (environment-agnostic)' : ''}`, () => {
      const { app, stack } = buildStack({ stage, envAgnostic });
      expect(findings(app)).toEqual([]);
      // cdk-nag 3 reports through the policy-validation report, not annotations; nothing else may warn either.
      const annotations = Annotations.fromStack(stack);
      expect(annotations.findError('*', Match.stringLikeRegexp('AwsSolutions-.*|Serverless-.*'))).toEqual([]);
      expect(annotations.findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*|Serverless-.*'))).toEqual([]);
      expect(annotations.findError('*', Match.anyValue())).toEqual([]);
    }, 300_000); // a synth of the whole stack: minutes on a loaded 2-core machine
  }

  it('fails synthesis when a finding is not acknowledged (the packs really run at synth)', () => {
    const app = new App({ outdir });
    const stack = new Stack(app, 'Bad');
    new Queue(stack, 'PlainQueue', { enforceSSL: false });
    addNagPacks(app);
    expect(findings(app).join('\n')).toMatch(/AwsSolutions-SQS3|AwsSolutions-SQS4/);
    expect(() => app.synth()).toThrow();
  });

  it('passes synthesis with the packs registered when everything is acknowledged', () => {
    const { app } = buildStack({ outdir });
    Validations.of(app).addPlugins(...nagPacks(app));
    expect(() => app.synth()).not.toThrow();
  });

  it('flattens CloudFormation references the way the IAM5 finding ids spell them', () => {
    expect(
      flattenCfnValue({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':execute-api:', { Ref: 'Api' }, '/dev/*']] }),
    ).toBe('arn:<AWS::Partition>:execute-api:<Api>/dev/*');
    expect(flattenCfnValue({ 'Fn::GetAtt': ['Table', 'Arn'] })).toBe('<Table.Arn>');
  });
});
