import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** `<dataDir>/keys`, created with mode 0700. */
export async function keysDir(dataDir: string): Promise<string> {
  const dir = join(dataDir, 'keys');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

function tmpName(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Reads `path`, or creates it with `create()` (mode 0600) when it does not exist. Creation is atomic
 * and first-writer-wins (write a temporary file, then hard-link it into place), so two processes
 * starting at once end up with the same content and nobody ever reads a half-written file.
 */
export async function readOrCreate(path: string, create: () => Promise<Buffer> | Buffer): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = tmpName(path);
  await writeFile(tmp, await create(), { mode: 0o600 });
  try {
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  return readFile(path);
}

/** Replaces `path` atomically (write a temporary file, then rename over), mode 0600. */
export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = tmpName(path);
  await writeFile(tmp, data, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}
