import { inject } from 'vitest';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ulid } from 'ulid';
import type { Deps } from '../../../shared/platform/runtime.js';
import { getConfig } from '../../../shared/platform/config.js';
import { Store } from '../../../shared/platform/store/client.js';
import { systemClock, type Clock } from '../../../shared/platform/ports.js';
import { ApiGatewayConnections } from '../../../shared/platform/aws/connections.js';
import { LocalSecretStore } from '../../../shared/platform/local/index.js';
import { ensureTable } from '../../../local/dynamodb-local.js';

/**
 * Deps of the test process on the same DynamoDB Local table as the running local runtime, publishing
 * through the runtime's `@connections` endpoint: for driving the provider service directly (recording
 * calls as the worker does) and reading what was stored.
 */
export function testDeps(options: { clock?: Clock; secrets?: LocalSecretStore; tableName?: string } = {}): Deps {
  const store = new Store({ tableName: options.tableName ?? 'supervisor', endpoint: inject('dynamodbEndpoint') });
  const unused = (name: string) =>
    new Proxy({}, { get: () => () => Promise.reject(new Error(`${name} is not available in provider tests`)) }) as never;
  return {
    config: getConfig(),
    store,
    queue: unused('queue'),
    auditQueue: unused('auditQueue'),
    scheduler: unused('scheduler'),
    workflows: unused('workflows'),
    events: unused('events'),
    mail: unused('mail'),
    signer: unused('signer'),
    connections: new ApiGatewayConnections(inject('connectionsUrl')),
    secrets: options.secrets ?? new LocalSecretStore(null),
    clock: options.clock ?? systemClock,
    appSecret: async () => Buffer.alloc(32, 1),
  };
}

/** Deps on a table of their own (same DynamoDB Local), for tests that look at every provider. */
export async function isolatedDeps(options: { clock?: Clock; secrets?: LocalSecretStore } = {}): Promise<Deps> {
  const tableName = `providers-test-${ulid().toLowerCase()}`;
  await ensureTable(inject('dynamodbEndpoint'), tableName);
  return testDeps({ ...options, tableName });
}

export async function storedItem(deps: Deps, pk: string, sk: string): Promise<Record<string, unknown> | undefined> {
  const out = await deps.store.doc.send(new GetCommand({ TableName: deps.store.table, Key: { pk, sk }, ConsistentRead: true }));
  return out.Item;
}

export const newProviderId = (prefix = 't') => `${prefix}-${ulid().toLowerCase()}`;

export const PRICING = { input_per_million: 3, output_per_million: 15 };
