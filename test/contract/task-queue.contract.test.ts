import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalQueue } from '../../local/queue.js';
import { SqsTaskQueue } from '../../shared/platform/aws/queue.js';
import type { TaskQueue } from '../../shared/platform/ports.js';
import { serviceError } from './support.js';

/** What a harness lets the shared suite observe of one implementation. */
interface QueueSubject {
  queue: TaskQueue;
  /** Messages the queue holds / sent to SQS, oldest first, with the delay they were given. */
  sent(): Array<{ body: unknown; delaySeconds: number }>;
  /** Makes the dependency unreachable. */
  breakIt(): Promise<void>;
}

const sqs = mockClient(SQSClient);
const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/supervisor-tasks';

const implementations: Array<[string, () => QueueSubject]> = [
  [
    'local',
    () => {
      // Not started: messages stay held, so the suite can look at them.
      const queue = new LocalQueue({ name: 'contract', visibilityTimeoutSeconds: 1, maxReceiveCount: 3, batchSize: 10, maxConcurrency: 1 });
      return {
        queue,
        sent: () => queue.peek().map((m) => ({ body: m.body, delaySeconds: Math.round((m.visibleAt.getTime() - m.sentAt.getTime()) / 1000) })),
        breakIt: async () => queue.stop(),
      };
    },
  ],
  [
    'aws (SQS, mocked client)',
    () => {
      sqs.reset();
      sqs.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
      sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { QueueArn: 'arn:aws:sqs:eu-west-1:123456789012:supervisor-tasks' } });
      return {
        queue: new SqsTaskQueue(QUEUE_URL),
        sent: () =>
          sqs.commandCalls(SendMessageCommand).map((c) => ({
            body: JSON.parse(c.args[0].input.MessageBody ?? 'null') as unknown,
            delaySeconds: c.args[0].input.DelaySeconds ?? 0,
          })),
        breakIt: async () => {
          sqs.on(GetQueueAttributesCommand).rejects(serviceError('AWS.SimpleQueueService.NonExistentQueue', 'queue does not exist'));
        },
      };
    },
  ],
];

afterEach(() => sqs.reset());

describe.each(implementations)('TaskQueue contract: %s', (_name, make) => {
  it('sends the body as JSON, unchanged', async () => {
    const subject = make();
    const body = { task_id: '01J0TASK', nested: { list: [1, 'two', null], flag: true }, text: 'héllo ✓' };
    await subject.queue.send(body);
    expect(subject.sent()).toEqual([{ body, delaySeconds: 0 }]);
  });

  it('honours DelaySeconds, clamped to SQS 0..900', async () => {
    const subject = make();
    await subject.queue.send({ n: 1 }, { delaySeconds: 5 });
    await subject.queue.send({ n: 2 }, { delaySeconds: 2000 });
    await subject.queue.send({ n: 3 }, { delaySeconds: -3 });
    await subject.queue.send({ n: 4 }, { delaySeconds: 2.7 });
    expect(subject.sent().map((m) => m.delaySeconds)).toEqual([5, 900, 0, 2]);
  });

  it('refuses a body that is not JSON-serialisable', async () => {
    const subject = make();
    await expect(subject.queue.send({ big: 1n } as unknown as Record<string, unknown>)).rejects.toThrow();
    expect(subject.sent()).toEqual([]);
  });

  it('check passes when reachable and throws when not', async () => {
    const subject = make();
    await expect(subject.queue.check()).resolves.toBeUndefined();
    await subject.breakIt();
    await expect(subject.queue.check()).rejects.toThrow();
  });
});

describe('SqsTaskQueue commands', () => {
  it('SendMessage carries QueueUrl, MessageBody and DelaySeconds; check is GetQueueAttributes', async () => {
    sqs.on(SendMessageCommand).resolves({});
    sqs.on(GetQueueAttributesCommand).resolves({});
    const queue = new SqsTaskQueue(QUEUE_URL);
    await queue.send({ task_id: 't1' }, { delaySeconds: 30 });
    await queue.check();
    expect(sqs.commandCalls(SendMessageCommand)[0].args[0].input).toEqual({
      QueueUrl: QUEUE_URL,
      MessageBody: '{"task_id":"t1"}',
      DelaySeconds: 30,
    });
    expect(sqs.commandCalls(GetQueueAttributesCommand)[0].args[0].input).toMatchObject({ QueueUrl: QUEUE_URL });
  });

  it('propagates SendMessage failures', async () => {
    sqs.on(SendMessageCommand).rejects(serviceError('ThrottlingException'));
    await expect(new SqsTaskQueue(QUEUE_URL).send({ a: 1 })).rejects.toThrow('ThrottlingException');
  });
});
