import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dataDirAccessKey } from '../../../local/dynamodb-local.js';
import { DataDirLockedError, lockDataDir } from '../../../local/data-dir.js';

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'supervisor-datadir-'));
  temps.push(dir);
  return dir;
};

describe('DynamoDB Local access key of a data directory', () => {
  it('is created once (0600), reused, and a -sharedDb database is renamed to its file', () => {
    const dir = path.join(tempDir(), 'dynamodb');
    const key = dataDirAccessKey(dir);
    expect(key).toMatch(/^[a-f0-9]{48}$/);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(dir, 'access-key-id')).mode & 0o777).toBe(0o600);
    expect(dataDirAccessKey(dir)).toBe(key);

    writeFileSync(path.join(dir, 'shared-local-instance.db'), 'old data', { mode: 0o644 });
    dataDirAccessKey(dir);
    expect(existsSync(path.join(dir, 'shared-local-instance.db'))).toBe(false);
    expect(readFileSync(path.join(dir, `${key}_local.db`), 'utf8')).toBe('old data');
    expect(statSync(path.join(dir, `${key}_local.db`)).mode & 0o777).toBe(0o600);
  });
});

describe('data directory lock', () => {
  it('is held once per directory, released on release, and taken over from a dead PID', () => {
    const dir = tempDir();
    const release = lockDataDir(dir);
    expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
    release();
    expect(existsSync(path.join(dir, 'runtime.lock'))).toBe(false);
    writeFileSync(path.join(dir, 'runtime.lock'), '999999999');
    const again = lockDataDir(dir);
    expect(readFileSync(path.join(dir, 'runtime.lock'), 'utf8')).toBe(String(process.pid));
    again();
  });
});

describe('data directory lock held by a killed process nobody reaped', () => {
  it.runIf(process.platform === 'linux')('is taken over: a zombie answers signal 0 but runs nothing', async () => {
    // `sleep 0` exits at once; its parent execs `sleep 30`, which never waits for it, so it stays a zombie.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombiePid = Number((await new Promise<Buffer>((resolve) => parent.stdout!.once('data', resolve))).toString().trim());
      for (let i = 0; i < 100 && !/\) Z/.test(readFileSync(`/proc/${zombiePid}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 20));
      expect(() => process.kill(zombiePid, 0)).not.toThrow();
      const dir = tempDir();
      writeFileSync(path.join(dir, 'runtime.lock'), String(zombiePid));
      const release = lockDataDir(dir);
      expect(readFileSync(path.join(dir, 'runtime.lock'), 'utf8')).toBe(String(process.pid));
      release();
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
