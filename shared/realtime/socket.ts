import type {
  APIGatewayProxyResultV2,
  APIGatewayRequestAuthorizerEvent,
  APIGatewayAuthorizerResult,
  APIGatewayProxyWebsocketEventV2,
  Context,
} from 'aws-lambda';
import { getDeps } from '../platform/runtime.js';
import { identify } from '../auth/identity.js';
import { ChannelLimitError, ConnectionRepository, CONNECTION_TTL_SECONDS } from './repo.js';
import {
  channelPermission,
  clientMessage,
  MAX_CHANNELS_PER_CONNECTION,
  MESSAGE_CLOSE_AFTER,
  MESSAGE_LIMIT,
  RATE_LIMITED,
  serverMessage,
  STREAM_CHANNELS,
} from './channels.js';
import { RateLimitRepository } from '../platform/store/rate-limits.js';
import { zodIssues } from '../platform/api/validation.js';
import { logger, useLambdaContext } from '../platform/logger.js';
import { ConnectionGoneError } from '../platform/ports.js';
import type { Deps } from '../platform/runtime.js';
import type { Permission } from '../platform/permissions.js';
import { taskReadable } from '../tasks/service.js';
import { executionReadable } from '../workflows/service.js';
import { connectionsOf } from '../platform/use/connections.js';
import { MONITORING_CHANNEL, pushMonitoringUpdate } from '../monitoring/stream.js';
import { ANALYTICS_STREAM_CHANNELS, pushAnalyticsStream } from '../analytics/stream.js';

type WsEvent = APIGatewayProxyWebsocketEventV2 & {
  queryStringParameters?: Record<string, string | undefined>;
  requestContext: APIGatewayProxyWebsocketEventV2['requestContext'] & { authorizer?: Record<string, unknown> };
};

/** `$connect` authorizer: the access token comes as `?token=`; an invalid one is refused before the socket opens. */
export async function authorizer(event: APIGatewayRequestAuthorizerEvent, context?: Context): Promise<APIGatewayAuthorizerResult> {
  useLambdaContext(context);
  const deps = await getDeps();
  const token = event.queryStringParameters?.token ?? '';
  const deny: APIGatewayAuthorizerResult = {
    principalId: 'anonymous',
    policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Deny', Resource: event.methodArn }] },
  };
  try {
    const { principal } = await identify(deps, token);
    return {
      principalId: principal.userId,
      policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }] },
      context: { user_id: principal.userId, username: principal.username, session_id: principal.sessionId, permissions: principal.permissions.join(',') },
    };
  } catch {
    return deny;
  }
}

export async function connect(event: WsEvent, context?: Context): Promise<APIGatewayProxyResultV2> {
  useLambdaContext(context);
  const deps = await getDeps();
  const auth = event.requestContext.authorizer ?? {};
  const userId = String(auth.user_id ?? '');
  if (!userId) return { statusCode: 401 };
  const permissions = String(auth.permissions ?? '').split(',').filter(Boolean);
  const repo = new ConnectionRepository(deps.store);
  const conn = {
    connection_id: event.requestContext.connectionId,
    user_id: userId,
    username: String(auth.username ?? ''),
    permissions,
    channels: [] as string[],
    preferences: {},
    connected_at: deps.clock.now().toISOString(),
    expires_at: Math.floor(deps.clock.now().getTime() / 1000) + CONNECTION_TTL_SECONDS,
    ...(auth.session_id ? { session_id: String(auth.session_id) } : {}),
  };
  await repo.put(conn);
  const stream = event.queryStringParameters?.stream;
  const initial = (stream && Object.hasOwn(STREAM_CHANNELS, stream) && STREAM_CHANNELS[stream]) || [];
  const allowed = initial.filter((c) => permissions.includes(channelPermission(c) ?? ''));
  if (allowed.length) await repo.subscribe(conn, allowed);
  return { statusCode: 200 };
}

export async function disconnect(event: WsEvent, context?: Context): Promise<APIGatewayProxyResultV2> {
  useLambdaContext(context);
  const deps = await getDeps();
  await new ConnectionRepository(deps.store).remove(event.requestContext.connectionId);
  return { statusCode: 200 };
}

/**
 * `$default`: subscribe, unsubscribe, ping, update_preferences. Replies go through `@connections`.
 * Every message counts against the connection's window (MESSAGE_LIMIT, counted in the table, so it
 * holds across Lambda instances): past it a message is answered `rate_limited` and not handled; past
 * MESSAGE_CLOSE_AFTER the connection is closed with 4008.
 */
export async function message(event: WsEvent, context?: Context): Promise<APIGatewayProxyResultV2> {
  useLambdaContext(context);
  const deps = await getDeps();
  const id = event.requestContext.connectionId;
  const reply = (type: string, data: unknown) =>
    connectionsOf(deps).post(id, serverMessage(type, data)).catch((err) => {
      // A client gone meanwhile is normal; anything else (the management API unreachable or not granted) is not.
      if (!(err instanceof ConnectionGoneError)) logger.error('WebSocket reply not delivered', { connection_id: id, error: err as Error });
    });
  // Counted by arrival (API Gateway's requestTimeEpoch): a backlog handled later counts when it came.
  const arrived = new Date(event.requestContext.requestTimeEpoch ?? deps.clock.now().getTime());
  const { count, resetAt } = await new RateLimitRepository(deps.store).hit(`ws#${id}`, MESSAGE_LIMIT.windowSeconds, arrived);
  if (count > MESSAGE_LIMIT.messages) {
    // Answered once when the limit is first passed, and once more when the connection is closed.
    const closing = count === MESSAGE_CLOSE_AFTER + 1;
    if (count === MESSAGE_LIMIT.messages + 1 || closing) {
      await reply('error', {
        error: 'rate_limited',
        detail: closing
          ? `Too many messages: more than ${MESSAGE_CLOSE_AFTER} in ${MESSAGE_LIMIT.windowSeconds} s; closing the connection`
          : `Too many messages: at most ${MESSAGE_LIMIT.messages} per ${MESSAGE_LIMIT.windowSeconds} s; messages are not handled until the window ends`,
        retry_after: Math.max(1, Math.ceil((resetAt.getTime() - arrived.getTime()) / 1000)),
      });
    }
    if (closing) {
      logger.warn('websocket closed: rate limited', { connection_id: id });
      await connectionsOf(deps).close(id, RATE_LIMITED).catch((err) => logger.error('closing a rate-limited WebSocket failed', { connection_id: id, error: err as Error }));
    }
    return { statusCode: 429 };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(event.body ?? '');
  } catch {
    await reply('error', { error: 'invalid_json', detail: 'Message is not valid JSON' });
    return { statusCode: 400 };
  }
  const result = clientMessage.safeParse(parsed);
  if (!result.success) {
    await reply('error', { error: 'validation_error', detail: 'Invalid message', errors: zodIssues(result.error) });
    return { statusCode: 422 };
  }
  const repo = new ConnectionRepository(deps.store);
  const conn = await repo.get(id);
  if (!conn) return { statusCode: 410 };
  const msg = result.data;
  switch (msg.action) {
    case 'ping':
      await reply('pong', {});
      break;
    case 'subscribe': {
      const denied: string[] = [];
      const invalid: string[] = [];
      const unknown: string[] = [];
      const ok: string[] = [];
      for (const channel of new Set(msg.channels)) {
        const needed = channelPermission(channel);
        if (!needed) invalid.push(channel);
        else if (!conn.permissions.includes(needed)) denied.push(channel);
        else if (!(await itemReadable(deps, conn, channel))) unknown.push(channel);
        else ok.push(channel);
      }
      if (ok.length) {
        const adding = new Set(ok.filter((c) => !conn.channels.includes(c))).size;
        try {
          if (conn.channels.length + adding > MAX_CHANNELS_PER_CONNECTION) throw new ChannelLimitError(MAX_CHANNELS_PER_CONNECTION, conn.channels.length);
          await repo.subscribe(conn, ok, MAX_CHANNELS_PER_CONNECTION);
        } catch (err) {
          if (!(err instanceof ChannelLimitError)) throw err;
          await reply('error', {
            error: 'too_many_channels',
            detail: `A connection may hold at most ${err.limit} channels; it holds ${err.held}. Nothing was subscribed: unsubscribe some first.`,
            channels: ok,
            limit: err.limit,
          });
          return { statusCode: 422 };
        }
      }
      if (invalid.length) await reply('error', { error: 'invalid_channel', detail: `Unknown channels: ${invalid.join(', ')}`, channels: invalid });
      if (denied.length) await reply('error', { error: 'forbidden', detail: `Not permitted: ${denied.join(', ')}`, channels: denied });
      if (unknown.length) await reply('error', { error: 'not_found', detail: `No such item: ${unknown.join(', ')}`, channels: unknown });
      await reply('subscribed', { channels: conn.channels });
      // A new subscriber of the analytics stream gets its first update now.
      if (ok.some((c) => (ANALYTICS_STREAM_CHANNELS as readonly string[]).includes(c))) await pushAnalyticsStream(deps, { connectionId: id, force: true });
      break;
    }
    case 'unsubscribe':
      await repo.unsubscribe(conn, msg.channels);
      await reply('unsubscribed', { channels: conn.channels });
      break;
    case 'update_preferences': {
      const preferences = { ...conn.preferences, ...msg.preferences };
      await repo.setPreferences(id, preferences);
      await reply('preferences_updated', { preferences });
      // The analytics stream follows the new preferences at once.
      if (conn.channels.some((c) => (ANALYTICS_STREAM_CHANNELS as readonly string[]).includes(c))) await pushAnalyticsStream(deps, { connectionId: id, force: true });
      break;
    }
  }
  // The monitoring stream's snapshot at once: when the channel is (re)subscribed, the severities change,
  // or the connection has not had one yet (API Gateway cannot send during $connect; any first message,
  // a ping, brings it).
  if (
    conn.channels.includes(MONITORING_CHANNEL) &&
    ((msg.action === 'subscribe' && msg.channels.includes(MONITORING_CHANNEL)) || msg.action === 'update_preferences' || !conn[`stream_${MONITORING_CHANNEL}`])
  ) {
    await pushMonitoringUpdate(deps, { force: [id] });
  }
  logger.debug('ws message', { action: msg.action, connection_id: id });
  return { statusCode: 200 };
}

/** The permission that reads every item of an item channel; without it the caller follows only their own. */
const READ_ALL: Record<string, Permission> = { task: 'tasks:read_all', execution: 'workflows:read_all' };

/**
 * Whether the connection may follow `task:<id>` / `execution:<id>`. Without the area's read_all, the
 * item must exist and be the caller's: an unknown item and another user's get the same `not_found`, so
 * a subscription does not tell whether an id exists. Other channels are not items: always true.
 */
async function itemReadable(deps: Deps, conn: { user_id: string; permissions: string[] }, channel: string): Promise<boolean> {
  const [base, id] = channel.split(':');
  const readAll = Object.hasOwn(READ_ALL, base) ? READ_ALL[base] : undefined;
  if (!readAll || id === undefined || conn.permissions.includes(readAll)) return true;
  const principal = { userId: conn.user_id, permissions: conn.permissions as Permission[] };
  return base === 'task' ? taskReadable(deps, principal, id) : executionReadable(deps, principal, id);
}
