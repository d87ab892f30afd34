import type { S3Client } from '@aws-sdk/client-s3';
import type { FileShare, FileToShare } from '../ports.js';
import { lazy } from './util.js';

/**
 * `FileShare` on S3: the object is put into the exports bucket (encrypted by the bucket's default,
 * expired by its lifecycle rule after a day) with the download's name, and the answer is a presigned
 * GET URL valid for `expiresInSeconds` (signed with the function's role credentials, so it also stops
 * working when they expire).
 */
export class S3FileShare implements FileShare {
  private readonly sdk = lazy(async () => {
    const [mod, presigner] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/s3-request-presigner')]);
    return { mod, presigner, client: new mod.S3Client({}) as S3Client };
  });

  constructor(readonly bucket: string) {}

  async put(file: FileToShare): Promise<{ url: string; expiresAt: Date }> {
    const { mod, presigner, client } = await this.sdk();
    const disposition = `attachment; filename="${file.filename.replace(/["\\\r\n]/g, '_')}"`;
    await client.send(
      new mod.PutObjectCommand({ Bucket: this.bucket, Key: file.key, Body: file.body, ContentType: file.contentType, ContentDisposition: disposition }),
    );
    const url = await presigner.getSignedUrl(client, new mod.GetObjectCommand({ Bucket: this.bucket, Key: file.key }), { expiresIn: file.expiresInSeconds });
    return { url, expiresAt: new Date(Date.now() + file.expiresInSeconds * 1000) };
  }
}
