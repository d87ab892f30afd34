import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { FUNCTION_GROUPS, type RouteSpec } from '../../shared/platform/api/route.js';
import { stageConfig } from '../../lib/stage.js';
import { BACKGROUND_ENTRIES, SupervisorStack } from '../../lib/supervisor-stack.js';

/**
 * A scratch project root with a stub `functions/<name>/handler.ts` for every possible function and a
 * lock file. With bundling skipped (`aws:cdk:bundling-stacks: []`) NodejsFunction
 * only checks that the entry exists, so the infra tests do not depend on the handlers being written
 * (or building): that is what `npm run synth` checks.
 */
export function fixtureProjectRoot(): string {
  // A fixed path, written idempotently: reused across runs and test workers, nothing left behind per run.
  const root = join(tmpdir(), 'supervisor-infra-fixture');
  const lockFile = join(mkdir(root), 'package-lock.json');
  if (!existsSync(lockFile)) writeFileSync(lockFile, '{"lockfileVersion":3}\n');
  for (const name of [...FUNCTION_GROUPS, ...BACKGROUND_ENTRIES]) {
    const entry = join(mkdir(join(root, 'functions', name)), 'handler.ts');
    if (!existsSync(entry)) writeFileSync(entry, 'export const handler = async () => ({});\n');
  }
  return root;
}

function mkdir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

const route = (r: Pick<RouteSpec, 'method' | 'path' | 'group'> & Partial<RouteSpec>): RouteSpec => ({
  operationId: `${r.method.toLowerCase()}${r.path.replace(/[^a-zA-Z]/g, '_')}`,
  permission: null,
  summary: 'fixture',
  ...r,
});

/** A small route table exercising aliases, static-vs-parameter paths and a docs route already listed. */
export const FAKE_ROUTES: RouteSpec[] = [
  route({ method: 'GET', path: '/api/v1/health', group: 'health' }),
  route({ method: 'POST', path: '/auth/login', aliases: ['/api/v1/auth/login'], group: 'auth' }),
  route({ method: 'POST', path: '/auth/refresh', aliases: ['/api/v1/auth/refresh'], group: 'auth' }),
  route({ method: 'GET', path: '/.well-known/jwks.json', group: 'auth' }),
  route({ method: 'POST', path: '/api/v1/tasks', group: 'tasks' }),
  route({ method: 'GET', path: '/api/v1/tasks/{task_id}', group: 'tasks' }),
  route({ method: 'GET', path: '/api/v1/tasks/stats/summary', group: 'tasks' }),
  route({ method: 'DELETE', path: '/api/v1/tasks/{task_id}', group: 'tasks' }),
  route({ method: 'POST', path: '/api/v1/workflows/{workflow_id}/execute', group: 'workflows' }),
  route({ method: 'PUT', path: '/api/v1/providers/{provider_id}', group: 'providers' }),
  route({ method: 'PATCH', path: '/api/v1/plugins/{plugin_name}', group: 'plugins' }),
  route({ method: 'GET', path: '/api/v1/monitoring/alerts', group: 'monitoring' }),
  route({ method: 'GET', path: '/openapi.json', group: 'docs' }),
];

const outdirs: string[] = [];

/** Removes the cloud assemblies this test file synthesized (call from `afterAll`). */
export function removeOutdirs(): void {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export interface BuiltStack {
  app: App;
  stack: SupervisorStack;
}

export function buildStack(
  options: {
    stage?: string;
    routes?: readonly RouteSpec[];
    projectRoot?: string;
    envAgnostic?: boolean;
    outdir?: string;
    bedrockModelArns?: string[];
    alarmEmail?: string;
    productionStages?: string[];
  } = {},
): BuiltStack {
  const routes = options.routes ?? FAKE_ROUTES;
  const projectRoot = options.projectRoot ?? fixtureProjectRoot();
  let outdir = options.outdir;
  if (!outdir) {
    outdir = mkdtempSync(join(tmpdir(), 'supervisor-infra-out-'));
    outdirs.push(outdir);
  }
  const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
  const config = stageConfig({ stage: options.stage ?? 'dev', productionStages: options.productionStages });
  const stack = new SupervisorStack(app, `Supervisor-${config.stage}`, {
    stageConfig: config,
    routes,
    projectRoot,
    env: options.envAgnostic ? undefined : { account: '123456789012', region: 'eu-west-1' },
    bedrockModelArns: options.bedrockModelArns,
    alarmEmail: options.alarmEmail,
  });
  return { app, stack };
}
