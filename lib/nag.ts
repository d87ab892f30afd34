import { Stack, Validations, type IPolicyValidationPlugin } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * cdk-nag 3 runs as a CDK policy-validation plugin: any unacknowledged finding (error or warning)
 * fails `cdk synth`. Findings are acknowledged on the narrowest construct that owns them with
 * `Validations.of(construct).acknowledge({ id, reason })`, one rule (or one IAM5 finding) at a time.
 */
export function nagPacks(scope?: IConstruct): IPolicyValidationPlugin[] {
  return [new AwsSolutionsChecks(scope), new ServerlessChecks(scope)];
}

export function addNagPacks(app: IConstruct): void {
  Validations.of(app).addPlugins(...nagPacks(app));
}

/** Acknowledges one cdk-nag rule on a construct (and everything below it) with a reason. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * Turns a (resolved) CloudFormation value into the flat string cdk-nag's IAM5 rule reports
 * (`Ref` → `<LogicalId>`, `Fn::GetAtt` → `<LogicalId.Attr>`, `Fn::Join` joined, `${X}` → `<X>`), so
 * that a wildcard we deliberately grant can be acknowledged as that one finding and nothing else.
 */
export function flattenCfnValue(node: unknown): string {
  if (node === undefined || node === null) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o['Fn::Join']) {
      const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
      return items.map(flattenCfnValue).join(delimiter);
    }
    if (o['Fn::Sub']) return flattenCfnValue(o['Fn::Sub']);
    if (o['Fn::GetAtt']) {
      const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
      return `<${flattenCfnValue(resource)}.${flattenCfnValue(attribute)}>`;
    }
    if (o['Fn::ImportValue']) return flattenCfnValue(o['Fn::ImportValue']);
    if (o.Ref) return `<${flattenCfnValue(o.Ref)}>`;
  }
  return JSON.stringify(node);
}

/**
 * Acknowledges the AwsSolutions-IAM5 finding for one wildcard resource ARN granted under `scope`
 * (e.g. `arn:…:secret:supervisor/dev/providers/*`). Only that exact resource string is acknowledged.
 */
export function acknowledgeWildcardResource(scope: IConstruct, resourceArn: string, reason: string): void {
  const flat = flattenCfnValue(Stack.of(scope).resolve(resourceArn));
  if (!flat.includes('*')) return;
  acknowledge(scope, `AwsSolutions-IAM5[Resource::${flat}]`, reason);
}

/** Actions of the X-Ray statement Lambda and Step Functions tracing add; X-Ray has no resource-level permissions. */
export const XRAY_ACTIONS = ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'];

export const XRAY_REASON =
  'X-Ray tracing: xray:PutTraceSegments/PutTelemetryRecords (and GetSampling* for Step Functions) do not support ' +
  'resource-level permissions, so AWS requires Resource "*" for them; nothing else in this policy uses "*".';
