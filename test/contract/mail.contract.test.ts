import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetAccountCommand, SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { SesMailSender } from '../../shared/platform/aws/mail.js';
import { LocalMailSender } from '../../shared/platform/local/mail.js';
import { withTempDir } from './support.js';

const ses = mockClient(SESv2Client);
afterEach(() => ses.reset());

const message = { from: 'bot@example.com', to: ['a@example.com', 'b@example.com'], subject: 'Ünïcode subject\r\nBcc: evil@example.com', text: 'Hello\nworld' };

describe('MailSender: SES v2', () => {
  it('sends one SendEmail with the sender, recipients, subject and text, answering the message id', async () => {
    ses.on(SendEmailCommand).resolves({ MessageId: 'ses-123' });
    const out = await new SesMailSender().send(message);
    expect(out).toEqual({ messageId: 'ses-123' });
    const input = ses.commandCalls(SendEmailCommand)[0].args[0].input;
    expect(input).toMatchObject({
      FromEmailAddress: 'bot@example.com',
      Destination: { ToAddresses: ['a@example.com', 'b@example.com'] },
      Content: { Simple: { Subject: { Data: message.subject }, Body: { Text: { Data: 'Hello\nworld' } } } },
    });
  });

  it('checks the account: disabled sending fails the check', async () => {
    ses.on(GetAccountCommand).resolves({ SendingEnabled: false });
    await expect(new SesMailSender().check()).rejects.toThrow(/disabled/);
    ses.on(GetAccountCommand).resolves({ SendingEnabled: true });
    await expect(new SesMailSender().check()).resolves.toBeUndefined();
  });
});

describe('MailSender: local .eml files', () => {
  it('writes one RFC 5322 file per message, headers on one line each (no injection), body base64', async () => {
    await withTempDir(async (dir) => {
      const mailDir = join(dir, 'mail');
      const sender = new LocalMailSender(mailDir);
      await sender.check();
      const { messageId } = await sender.send(message);
      const files = await readdir(mailDir);
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/\.eml$/);
      const eml = await readFile(join(mailDir, files[0]), 'utf8');
      const [head, body] = eml.split('\r\n\r\n');
      expect(head).toContain(`Message-ID: <${messageId}>`);
      expect(head).toContain('To: a@example.com, b@example.com');
      expect(head.split('\r\n').some((l) => l.startsWith('Bcc:'))).toBe(false);
      expect(head).toMatch(/^Subject: =\?UTF-8\?B\?/m);
      expect(Buffer.from(body.replace(/\r\n/g, ''), 'base64').toString('utf8')).toBe('Hello\nworld');
    });
  });
});
