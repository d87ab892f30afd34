import { randomUUID } from 'node:crypto';
import { mkdir, writeFile, access, constants } from 'node:fs/promises';
import path from 'node:path';
import type { MailMessage, MailSender } from '../ports.js';

/** One header value on one line (no CR/LF: a header cannot be injected). */
const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ');

/** Encodes a header value as an RFC 2047 encoded word when it is not plain ASCII. */
function headerText(s: string): string {
  const clean = oneLine(s);
  return /^[\x20-\x7e]*$/.test(clean) ? clean : `=?UTF-8?B?${Buffer.from(clean, 'utf8').toString('base64')}?=`;
}

/** `MailSender` of the local runtime: each message is an RFC 5322 `.eml` file in `dir` (`.data/mail/`). */
export class LocalMailSender implements MailSender {
  constructor(readonly dir: string) {}

  async send(message: MailMessage): Promise<{ messageId: string }> {
    const messageId = `${randomUUID()}@supervisor.local`;
    const eml = [
      `Message-ID: <${messageId}>`,
      `Date: ${new Date().toUTCString()}`,
      `From: ${oneLine(message.from)}`,
      `To: ${message.to.map(oneLine).join(', ')}`,
      `Subject: ${headerText(message.subject)}`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=UTF-8',
      'Content-Transfer-Encoding: base64',
      '',
      (Buffer.from(message.text, 'utf8').toString('base64').match(/.{1,76}/g) ?? []).join('\r\n'),
      '',
    ].join('\r\n');
    await mkdir(this.dir, { recursive: true });
    await writeFile(path.join(this.dir, `${Date.now()}-${messageId.split('@')[0]}.eml`), eml, { mode: 0o600 });
    return { messageId };
  }

  async check(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await access(this.dir, constants.W_OK);
  }
}
