import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../../shared/platform/runtime.js';
import { installConfig, parseConfig, resetConfig } from '../../../shared/platform/config.js';
import { DomainError } from '../../../shared/platform/errors.js';
import { permissionsOf } from '../../../shared/platform/permissions.js';
import type { Principal } from '../../../shared/platform/principal.js';
import { providerView, registerProvider } from '../../../shared/providers/service.js';
import { checkProviderHealth } from '../../../shared/providers/status.js';
import { registerBody } from '../../../shared/providers/model.js';
import { isolatedDeps, newProviderId } from './support.js';

const as = (role: 'admin' | 'operator' | 'viewer'): Principal => ({ userId: `01JD00000000000000000${role.length}0000`, username: role, roles: [role], permissions: permissionsOf([role]), sessionId: 's' });
const admin = as('admin');
const viewer = as('viewer');
const operator = as('operator');

const cliBody = (settings: Record<string, unknown>) =>
  registerBody.parse({ type: 'cli', name: 'agent', model: 'agent', settings: { command: process.execPath, args: ['-e', 'process.stdout.write(1)'], check_args: ['--version'], ...settings } });

async function refusal(promise: Promise<unknown>): Promise<DomainError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}

let deps: Deps;
const cliConfig = (allowed: string[] = []) =>
  installConfig({ ...parseConfig({ OUTBOUND_ALLOW_PRIVATE: 'true' }), cliProviderEnabled: true, cliEnvAllowCredentials: allowed });

beforeAll(async () => {
  cliConfig();
  deps = await isolatedDeps();
});
afterAll(() => resetConfig());

describe('cli providers: who may see and run them', () => {
  it('refuses env_allow naming credential variables (422 invalid_input), naming each', async () => {
    const body = cliBody({ env_allow: ['PATH', 'AWS_SECRET_ACCESS_KEY', 'GITHUB_TOKEN', 'OPENAI_API_KEY', 'DB_SECRET_VALUE'] });
    const err = await refusal(registerProvider(deps, admin, newProviderId('cli'), body));
    expect(err).toMatchObject({ kind: 'invalid_input' });
    expect(err.errors?.map((e) => e.path)).toEqual(['settings.env_allow.1', 'settings.env_allow.2', 'settings.env_allow.3', 'settings.env_allow.4']);
  });

  it('lets the deployment allow a credential variable by name', async () => {
    cliConfig(['GITHUB_TOKEN']);
    try {
      const record = await registerProvider(deps, admin, newProviderId('cli'), cliBody({ env_allow: ['PATH', 'GITHUB_TOKEN'] }));
      expect(record.settings).toMatchObject({ env_allow: ['PATH', 'GITHUB_TOKEN'] });
      const err = await refusal(registerProvider(deps, admin, newProviderId('cli'), cliBody({ env_allow: ['AWS_ACCESS_KEY_ID'] })));
      expect(err.errors?.map((e) => e.path)).toEqual(['settings.env_allow.0']);
    } finally {
      cliConfig();
    }
  });

  it("shows a cli provider's settings (command, arguments) to provider managers only", async () => {
    const record = await registerProvider(deps, admin, newProviderId('cli'), cliBody({}));
    expect(providerView(record, admin).settings).toMatchObject({ command: process.execPath, args: ['-e', 'process.stdout.write(1)'] });
    expect(providerView(record, viewer).settings).toEqual({});
    expect(providerView(record, operator).settings).toEqual({});
  });

  it('runs the health check of a cli provider (a process) for provider managers only', async () => {
    const id = newProviderId('cli');
    await registerProvider(deps, admin, id, cliBody({}));
    expect((await refusal(checkProviderHealth(deps, viewer, id))).kind).toBe('forbidden');
    expect((await refusal(checkProviderHealth(deps, operator, id))).kind).toBe('forbidden');
    const res = await checkProviderHealth(deps, admin, id);
    expect(res).toMatchObject({ provider_id: id, healthy: true, cached: false });
  });
});
