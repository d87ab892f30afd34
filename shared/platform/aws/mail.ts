import type { SESv2Client } from '@aws-sdk/client-sesv2';
import type { MailMessage, MailSender } from '../ports.js';
import { lazy } from './util.js';

/** `MailSender` on Amazon SES v2 (the sender must be a verified identity of the account). */
export class SesMailSender implements MailSender {
  private readonly sdk = lazy(async () => {
    const mod = await import('@aws-sdk/client-sesv2');
    return { mod, client: new mod.SESv2Client({}) as SESv2Client };
  });

  async send(message: MailMessage): Promise<{ messageId: string }> {
    const { mod, client } = await this.sdk();
    const out = await client.send(
      new mod.SendEmailCommand({
        FromEmailAddress: message.from,
        Destination: { ToAddresses: message.to },
        Content: { Simple: { Subject: { Data: message.subject, Charset: 'UTF-8' }, Body: { Text: { Data: message.text, Charset: 'UTF-8' } } } },
      }),
    );
    return { messageId: out.MessageId ?? '' };
  }

  /** The account's sending status (cheap, needs ses:GetAccount). */
  async check(): Promise<void> {
    const { mod, client } = await this.sdk();
    const out = await client.send(new mod.GetAccountCommand({}));
    if (out.SendingEnabled === false) throw new Error('SES sending is disabled for this account');
  }
}
