import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ulid } from 'ulid';
import { beforeAll, describe, expect, it } from 'vitest';
import { adminSession, baseUrl, call } from '../support/client.js';
import { clientSchemaSource } from '../../client/generate.js';
import { scenario } from './program.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('the typed client (client/)', () => {
  it('client/schema.d.ts is what `npm run client` makes of the current route table', async () => {
    const committed = readFileSync(path.join(root, 'client', 'schema.d.ts'), 'utf8');
    // On failure: run `npm run client` and commit client/schema.d.ts.
    expect(committed === (await clientSchemaSource()), 'client/schema.d.ts is out of date: run `npm run client`').toBe(true);
  });

  it('a program using it compiles under strict, noUncheckedIndexedAccess and exactOptionalPropertyTypes', async () => {
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await promisify(execFile)(process.execPath, [tsc, '-p', path.join(root, 'test', 'typed-client', 'tsconfig.json')], { cwd: root }).then(
      () => ({ code: 0, output: '' }),
      (err: { code?: number; stdout?: string; stderr?: string }) => ({ code: err.code ?? 1, output: `${err.stdout ?? ''}${err.stderr ?? ''}` }),
    );
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  }, 240_000);

  describe('the program against the local runtime', () => {
    const user = { username: `typed-client-${ulid().toLowerCase()}`, password: 'a-long-enough-password' };

    beforeAll(async () => {
      const admin = await adminSession();
      const res = await call('POST', '/auth/users', { token: admin.token, body: { ...user, roles: ['user'] } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    });

    it('logs in, renews a refused token, follows a task and a workflow run to the end, pages a list', async () => {
      const lines: string[] = [];
      const result = await scenario(baseUrl(), user.username, user.password, (line) => lines.push(line));

      expect(result.refreshed, lines.join('\n')).toBe(true);
      expect(result.taskStatus).toBe('completed');
      expect(result.taskOutput.length).toBeGreaterThan(0);
      expect(result.executionStatus).toBe('completed');
      expect(result.stepStatuses).toEqual(['completed', 'completed']);
      // Two tasks carry the run's tag: one per page, then no cursor.
      expect(result.pagedTaskIds).toHaveLength(2);
      expect(new Set(result.pagedTaskIds).size).toBe(2);
      expect(result.pagedTaskIds).toContain(result.taskId);
      expect(result.pages).toBeGreaterThanOrEqual(2);

      // The client's logout revoked the session: its last refresh token renews nothing.
      const after = await call('POST', '/auth/refresh', { body: { refresh_token: result.lastRefreshToken } });
      expect(after.status).toBe(401);
    }, 240_000); // a task and a two-step workflow run to the end, on a shared machine
  });
});
