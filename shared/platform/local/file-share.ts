import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SHARED_FILES } from '../infra.js';
import type { Clock, FileShare, FileToShare } from '../ports.js';
import { logger } from '../logger.js';

/** Keys of shared files: segments of letters, digits, `.`, `_` and `-` (no `..`), joined by `/`. */
const KEY = /^(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9._-]{1,128}(\/[A-Za-z0-9._-]{1,128}){0,4}$/;
const DAY_MS = 86_400_000;

export interface LocalFileShareOptions {
  /** `<dataDir>/files` (or a temporary folder when nothing is kept). */
  dir: string;
  /** The runtime's public URL, e.g. http://127.0.0.1:3000 (read when a link is made: the port may be chosen late). */
  baseUrl: () => string;
  /** Key of the links' HMAC. */
  key: () => Promise<Buffer>;
  clock: Clock;
}

/** The link's signature: HMAC-SHA256 over the key and the expiry (epoch seconds). */
function signatureOf(secret: Buffer, key: string, expires: number): string {
  return createHmac('sha256', secret).update(`shared-file\n${key}\n${expires}`).digest('base64url');
}

/**
 * `FileShare` of the local runtime: the file is written under `dir` (with its content type and name
 * beside it) and the link is `<baseUrl>/local-files/<key>?expires=<epoch s>&signature=<HMAC>`, which the
 * local HTTP server answers through `openSharedFile` (403 when expired or tampered with). Files older than
 * `SHARED_FILES.keepDays` are removed at each put, as the bucket's lifecycle rule does on AWS.
 */
export class LocalFileShare implements FileShare {
  constructor(private readonly options: LocalFileShareOptions) {}

  async put(file: FileToShare): Promise<{ url: string; expiresAt: Date }> {
    if (!KEY.test(file.key)) throw new Error(`invalid shared file key ${JSON.stringify(file.key)}`);
    const target = path.join(this.options.dir, file.key);
    await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    // Written under a temporary name, then renamed: a link never serves half a file.
    const tmp = `${target}.tmp-${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, file.body, { mode: 0o600 });
    await writeFile(`${target}.meta.json`, JSON.stringify({ content_type: file.contentType, filename: file.filename }), { mode: 0o600 });
    await rename(tmp, target);
    // The file is shared either way; a clean-up that failed is logged and tried again at the next put.
    await this.prune().catch((err: Error) => logger.warn('old shared files not removed', { dir: this.options.dir, error: err }));
    const now = this.options.clock.now().getTime();
    const expires = Math.floor(now / 1000) + file.expiresInSeconds;
    const signature = signatureOf(await this.options.key(), file.key, expires);
    const url = `${this.options.baseUrl()}${SHARED_FILES.localPath}${file.key.split('/').map(encodeURIComponent).join('/')}?expires=${expires}&signature=${signature}`;
    return { url, expiresAt: new Date(expires * 1000) };
  }

  /** Removes the top-level folders (one per file) older than the keep period. */
  private async prune(): Promise<void> {
    const cutoff = this.options.clock.now().getTime() - SHARED_FILES.keepDays * DAY_MS;
    for (const prefix of await readdir(this.options.dir).catch(() => [] as string[])) {
      for (const id of await readdir(path.join(this.options.dir, prefix)).catch(() => [] as string[])) {
        const folder = path.join(this.options.dir, prefix, id);
        // Gone since the listing (another put pruned it): nothing to remove.
        const info = await stat(folder).catch(() => undefined);
        if (info && info.mtimeMs < cutoff) await rm(folder, { recursive: true, force: true });
      }
    }
  }
}

export type SharedFileAnswer =
  | { ok: true; file: string; size: number; contentType: string; filename: string }
  | { ok: false; status: 403 | 404; code: 'forbidden' | 'not_found'; detail: string };

/**
 * Checks a link the local HTTP server received under `SHARED_FILES.localPath`: the signature must match
 * the key and expiry (403 otherwise, also when expired), and the file must still be there (404).
 */
export async function openSharedFile(dir: string, secret: Buffer, pathname: string, query: URLSearchParams, now: Date): Promise<SharedFileAnswer> {
  const refused = (detail: string): SharedFileAnswer => ({ ok: false, status: 403, code: 'forbidden', detail });
  let key: string;
  try {
    key = pathname.slice(SHARED_FILES.localPath.length).split('/').map(decodeURIComponent).join('/');
  } catch {
    return refused('This link is not valid');
  }
  const expiresText = query.get('expires') ?? '';
  const signature = query.get('signature') ?? '';
  if (!KEY.test(key) || !/^\d{1,12}$/.test(expiresText) || !signature) return refused('This link is not valid');
  const expires = Number(expiresText);
  const expected = Buffer.from(signatureOf(secret, key, expires));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return refused('This link is not valid');
  if (now.getTime() >= expires * 1000) return refused('This link has expired; export again for a new one');
  const file = path.join(dir, key);
  try {
    const [info, meta] = await Promise.all([stat(file), readFile(`${file}.meta.json`, 'utf8')]);
    const { content_type: contentType, filename } = JSON.parse(meta) as { content_type: string; filename: string };
    return { ok: true, file, size: info.size, contentType, filename };
  } catch {
    return { ok: false, status: 404, code: 'not_found', detail: 'This file is no longer kept' };
  }
}
