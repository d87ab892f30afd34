import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { FUNCTION_GROUPS } from '../../shared/platform/api/route.js';
import { FUNCTION_PORTS, type FunctionPorts } from '../../shared/platform/infra.js';
import { BACKGROUND_ENTRIES, PROJECT_ROOT } from '../../lib/supervisor-stack.js';

/**
 * Code reaches a port only through its module in `shared/platform/use/` (Bedrock through its LLM
 * adapter); after tree shaking, a bundle holds a port's accessor only when code the handler can run
 * calls it. Each port is known here by that accessor's declaration in the bundle.
 */
const ACCESSORS: Record<Exclude<keyof FunctionPorts, 'table'>, string> = {
  queue: 'taskQueue',
  auditQueue: 'auditQueue',
  scheduler: 'scheduleService',
  workflows: 'workflowRunner',
  stepCallbacks: 'stepCallbacks',
  connections: 'connectionsOf',
  events: 'eventBus',
  secrets: 'secretStore',
  mail: 'mailSender',
  signer: 'tokenSigner',
  appSecret: 'appSecret',
  bedrock: 'BedrockProvider',
  workerScaling: 'workerScaling',
  files: 'fileShare',
};
const WS_HANDLERS = ['authorizer', 'connect', 'disconnect', 'message'];

/** `ws-message` → functions/ws/handler.ts, export `message`; `tasks` → functions/tasks/handler.ts, `handler`. */
function entryOf(label: string): { file: string; exported: string } {
  const ws = /^ws-(.+)$/.exec(label);
  return ws ? { file: 'functions/ws/handler.ts', exported: ws[1] } : { file: `functions/${label}/handler.ts`, exported: 'handler' };
}

/** The ports a function's bundle (as the stack builds it: ESM, node, the AWS SDK left out) reaches. */
async function portsInBundle(label: string): Promise<string[]> {
  const { file, exported } = entryOf(label);
  const result = await build({
    stdin: { contents: `export { ${exported} as handler } from './${file}';`, resolveDir: PROJECT_ROOT, loader: 'ts' },
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    mainFields: ['module', 'main'],
    external: ['@aws-sdk/*'],
    outfile: 'handler.mjs',
    logLevel: 'silent',
  });
  const text = result.outputFiles[0].text;
  const inputs = Object.keys(result.metafile.inputs);
  expect(inputs, `${label}: the bundle must hold its entry`).toContain(file);
  return Object.entries(ACCESSORS)
    .filter(([, name]) => new RegExp(`(?:function|class) ${name}\\d*[ (]|\\b${name}\\d* = class\\b`).test(text))
    .map(([port]) => port)
    .sort();
}

const declared = (ports: FunctionPorts): string[] =>
  Object.keys(ports)
    .filter((port) => port !== 'table')
    .sort();

const labels = Object.keys(FUNCTION_PORTS).filter((label) => existsSync(join(PROJECT_ROOT, entryOf(label).file)));

describe('FUNCTION_PORTS: every function declares exactly the ports its code uses', () => {
  it('has an entry for every API group, background function and WebSocket handler', () => {
    const expected = [...FUNCTION_GROUPS, ...BACKGROUND_ENTRIES.filter((e) => e !== 'ws'), ...WS_HANDLERS.map((h) => `ws-${h}`)];
    expect(Object.keys(FUNCTION_PORTS).sort()).toEqual([...expected].sort());
  });

  it.each(labels)('%s: the ports its bundle reaches are the ports it declares (none used without a grant, no grant unused)', async (label) => {
    const used = await portsInBundle(label);
    const wanted = declared(FUNCTION_PORTS[label as keyof typeof FUNCTION_PORTS]);
    expect(used, `${label}: ports in the bundle ${JSON.stringify(used)} vs FUNCTION_PORTS["${label}"] ${JSON.stringify(wanted)}`).toEqual(wanted);
  });

  it('the table is declared by every function but docs, which serves public files only', () => {
    for (const [label, ports] of Object.entries(FUNCTION_PORTS)) expect('table' in ports, label).toBe(label !== 'docs');
  });
});
