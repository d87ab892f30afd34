import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { localEndpoint } from '../aws/util.js';
import { traceClient } from '../tracing.js';

export interface StoreOptions {
  tableName: string;
  /** DynamoDB Local's URL, with its access key id as user name (`http://KEY@127.0.0.1:8000`); unset on AWS. */
  endpoint?: string;
}

/** The write commands (the document client's commands reach the base client's middleware under these names). */
const WRITE_COMMANDS = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'TransactWriteItemsCommand', 'BatchWriteItemCommand']);

/** The table and the document client that talks to it (DynamoDB on AWS, DynamoDB Local locally). */
export class Store {
  readonly doc: DynamoDBDocumentClient;
  readonly raw: DynamoDBClient;
  private readonly writeListeners: (() => void)[] = [];
  constructor(readonly options: StoreOptions) {
    this.raw = traceClient(
      new DynamoDBClient({
        ...(options.endpoint ? localEndpoint(options.endpoint) : {}),
        maxAttempts: 3,
        requestHandler: { connectionTimeout: 1000, requestTimeout: 5000 },
      }),
    );
    // Errors that leave the table's client say so, so that a 503 can name the dependency that is down.
    this.raw.middlewareStack.add(
      (next) => async (args) => {
        try {
          return await next(args);
        } catch (err) {
          if (err && typeof err === 'object' && !('dependency' in err)) Object.assign(err, { dependency: 'table' });
          throw err;
        }
      },
      { step: 'initialize', name: 'nameDependencyOnError' },
    );
    this.raw.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (this.writeListeners.length && WRITE_COMMANDS.has(context.commandName ?? '')) for (const listener of this.writeListeners) listener();
        return out;
      },
      { step: 'initialize', name: 'announceWrites' },
    );
    this.doc = DynamoDBDocumentClient.from(this.raw, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    });
  }
  get table(): string {
    return this.options.tableName;
  }

  /** Calls `listener` after every write made through this client that succeeded (even a partly failed batch). */
  onWrite(listener: () => void): void {
    this.writeListeners.push(listener);
  }
}

export function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
