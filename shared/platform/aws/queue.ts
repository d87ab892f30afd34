import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SendOptions, TaskQueue } from '../ports.js';
import { lazy } from './util.js';

/** SQS accepts DelaySeconds 0..900; anything else is clamped (and non-numbers become 0). */
export function clampDelaySeconds(delay: number | undefined): number {
  if (delay === undefined || !Number.isFinite(delay)) return 0;
  return Math.min(900, Math.max(0, Math.floor(delay)));
}

/** `TaskQueue` on Amazon SQS. The body is sent as JSON. */
export class SqsTaskQueue implements TaskQueue {
  private readonly sdk = lazy(async () => {
    const mod = await import('@aws-sdk/client-sqs');
    return { mod, client: new mod.SQSClient({}) as SQSClient };
  });

  constructor(readonly queueUrl: string) {}

  async send(body: Record<string, unknown>, options: SendOptions = {}): Promise<void> {
    const { mod, client } = await this.sdk();
    await client.send(
      new mod.SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(body),
        DelaySeconds: clampDelaySeconds(options.delaySeconds),
      }),
    );
  }

  async check(): Promise<void> {
    const { mod, client } = await this.sdk();
    await client.send(new mod.GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ['QueueArn'] }));
  }
}
