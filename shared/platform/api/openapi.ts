import * as z from 'zod';
import type { RouteSpec } from './route.js';
import { rolesWith } from '../permissions.js';
import { documentedAs } from './schemas.js';
import { VERSION } from '../version.js';

type Json = Record<string, unknown>;

/** Named schemas collected while a document is built (the members of published unions). */
let components: Record<string, Json> = {};

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  const json = z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
    target: 'draft-2020-12',
    override: (ctx) => {
      const published = documentedAs(ctx.zodSchema);
      if (!published) return;
      const target = ctx.jsonSchema as Json;
      for (const key of Object.keys(target)) delete target[key];
      Object.assign(target, schemaOf(published.schema, io));
      // A union whose members each fix `type` to one value: each member a named schema, selected by `type`.
      const members = target.oneOf as Json[] | undefined;
      const typeOf = (m: Json) => ((m.properties as Json | undefined)?.type as Json | undefined)?.const;
      if (published.name && members?.every((m) => typeof typeOf(m) === 'string')) {
        const mapping: Record<string, string> = {};
        target.oneOf = members.map((m) => {
          const name = `${published.name}_${String(typeOf(m))}`;
          components[name] = m;
          mapping[String(typeOf(m))] = `#/components/schemas/${name}`;
          return { $ref: mapping[String(typeOf(m))] };
        });
        target.discriminator = { propertyName: 'type', mapping };
      }
    },
  }) as Json;
  delete json.$schema;
  return json;
}

/** Parameters that mean the same on every route that takes them (a route's own description wins). */
const COMMON_PARAMETERS: Record<string, string> = {
  status: 'Only items in this status',
  type: 'Only items of this type',
  severity: 'Only items of these severities (comma-separated)',
  from: 'Start of the time range (ISO 8601, inclusive)',
  to: 'End of the time range (ISO 8601, exclusive)',
  time_range: 'How far back from now, e.g. 1h, 24h, 7d, 30d',
  event_type: 'Only events of this type',
  metric_type: 'The metric, e.g. task.duration_ms',
  format: 'The answer\'s format',
};

/** `…_id` in a path: the id of that thing; `…_name`, `…_type`: its name, its type; `…_id` in a query: a filter on it. */
function conventionalDescription(name: string, where: string): string | undefined {
  const thing = (suffix: string) => name.slice(0, -suffix.length).replace(/_/g, ' ');
  if (name.endsWith('_id')) return where === 'path' ? `Id of the ${thing('_id')}` : `Only items of this ${thing('_id')}`;
  if (name.endsWith('_name')) return where === 'path' ? `Name of the ${thing('_name')}` : `Only items of this ${thing('_name')}`;
  if (name.endsWith('_type')) return `The ${thing('_type')} type`;
  return undefined;
}

function parametersOf(route: RouteSpec): Json[] {
  const out: Json[] = [];
  const add = (schema: z.ZodObject | undefined, where: 'path' | 'query') => {
    if (!schema) return;
    const json = schemaOf(schema, 'input') as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, prop] of Object.entries(json.properties ?? {})) {
      out.push({
        name,
        in: where,
        required: where === 'path' || (json.required ?? []).includes(name),
        schema: prop,
        ...(prop.description ? { description: prop.description } : {}),
      });
    }
  };
  add(route.params, 'path');
  add(route.query, 'query');
  for (const match of route.path.matchAll(/\{([^}+]+)(\+?)\}/g)) {
    if (!out.some((p) => p.name === match[1])) {
      out.push({
        name: match[1],
        in: 'path',
        required: true,
        schema: { type: 'string' },
        ...(match[2] ? { description: 'The rest of the path (one segment here; API Gateway declares it as a greedy `{' + match[1] + '+}`)' } : {}),
      });
    }
  }
  for (const p of out) {
    if (p.description || typeof p.name !== 'string') continue;
    const description = COMMON_PARAMETERS[p.name] ?? conventionalDescription(p.name, p.in as string);
    if (description) p.description = description;
  }
  if (route.idempotent) {
    out.push({
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      description: 'The same key with the same body within 24 h returns the first response and starts nothing new; with another body it is a 409 idempotency_conflict.',
      schema: { type: 'string', maxLength: 255 },
    });
  }
  return out;
}

const ERROR_CODES: Record<number, string> = {
  400: 'Malformed request (invalid_json, bad_request, invalid_cursor)',
  401: 'Not authenticated: a missing, invalid, expired or revoked token (or, on login and refresh, wrong credentials)',
  403: 'Authenticated but lacks the permission',
  404: 'Unknown id',
  409: 'Conflict, invalid state transition or idempotency conflict',
  413: 'Body over the limit',
  415: 'Body is not application/json',
  422: 'Validation error; errors[] names each field',
  429: 'Rate limited; see Retry-After',
  504: 'The operation did not finish in time',
  500: 'Internal error (request_id only)',
  503: 'A dependency is unavailable',
};

/** The path as the document spells it: API Gateway's greedy `{proxy+}` is the template `{proxy}`. */
export function documentPath(path: string): string {
  return path.replace(/\{([^}]+)\+\}/g, '{$1}');
}

const EXAMPLE_TIME = '2025-01-01T00:00:00.000Z';

const BINARY_TYPE = /^(image|application\/(octet|vnd\.))/;

function fileContent(type: string): Json {
  return { schema: { type: 'string', ...(BINARY_TYPE.test(type) ? { contentMediaType: type, contentEncoding: 'binary' } : {}) } };
}

function successContent(route: RouteSpec, example: OperationExample | undefined): Json {
  if (route.rawResponse) {
    const content: Json = {};
    for (const type of route.rawResponse.contentTypes) {
      if (/json$/.test(type)) {
        content[type] = {
          schema: route.rawResponse.schema ? schemaOf(route.rawResponse.schema, 'output') : { type: 'object' },
          ...(example && 'response' in example ? { example: example.response } : {}),
        };
      } else {
        content[type] = fileContent(type);
      }
    }
    return content;
  }
  const content: Json = {
    'application/json': {
      schema: {
        type: 'object',
        required: ['data', 'message', 'timestamp'],
        properties: {
          data: route.response ? schemaOf(route.response, 'output') : {},
          message: { type: 'string' },
          timestamp: { type: 'string', format: 'date-time' },
        },
      },
      ...(example && 'response' in example ? { example: { data: example.response, message: example.message ?? 'OK', timestamp: EXAMPLE_TIME } } : {}),
    },
  };
  for (const type of route.alsoContentTypes ?? []) content[type] = fileContent(type);
  return content;
}

/** Error statuses an operation can answer, derived from its declaration. */
export function errorStatusesOf(route: RouteSpec): number[] {
  const codes = [400, 404, 422, 500, 503, ...(route.errors ?? [])];
  if (route.permission) codes.push(401, 403);
  if (route.body) codes.push(413, 415);
  if (route.rateLimits?.length) codes.push(429);
  if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(route.method)) codes.push(409);
  return [...new Set(codes)].sort((a, b) => a - b);
}

/** A parameter's example as its schema types it (a query string carries `limit=2` as text). */
function typedValue(schema: Json, text: string): unknown {
  if (schema.type === 'integer' || schema.type === 'number') return Number(text);
  if (schema.type === 'boolean') return text === 'true';
  return text;
}

function operationOf(route: RouteSpec, examples: Examples): Json {
  const status = String(route.status ?? 200);
  const responses: Json = {
    [status]: { description: route.rawResponse?.description ?? route.summary, content: successContent(route, examples[route.operationId]) },
  };
  for (const [code, description] of Object.entries(route.alsoAnswers ?? {})) {
    responses[code] = { description, content: successContent(route, undefined) };
  }
  for (const code of errorStatusesOf(route)) {
    responses[String(code)] = {
      description: ERROR_CODES[code] ?? `Error ${code}`,
      ...(code === 429 ? { headers: { 'Retry-After': { description: 'Seconds until the limit resets', schema: { type: 'integer', minimum: 0 } } } } : {}),
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  const example = examples[route.operationId];
  const bodyExample = example && 'body' in example ? { example: example.body } : {};
  const requestBody = route.body
    ? {
        // The server reads a missing body as `{}`: the body is required only when `{}` is refused.
        required: !route.body.safeParse({}).success,
        content: {
          'application/json': { schema: schemaOf(route.body, 'input'), ...bodyExample },
          ...(route.acceptsForm ? { 'application/x-www-form-urlencoded': { schema: schemaOf(route.body, 'input') } } : {}),
        },
      }
    : undefined;
  const permissionNote = route.permission
    ? `\n\nRequires permission \`${route.permission}\` (roles: ${rolesWith(route.permission).join(', ')}).`
    : '\n\nPublic: no token needed.';
  return {
    operationId: route.operationId,
    summary: route.summary,
    description: (route.description ?? route.summary) + permissionNote,
    tags: route.tags ?? [route.group],
    ...(route.permission ? { security: [{ bearerAuth: [] }] } : { security: [] }),
    parameters: parametersOf(route).map((p) => {
      const name = String(p.name);
      const value = p.in === 'path' ? example?.params?.[name] : p.in === 'query' ? example?.query?.[name] : undefined;
      return value === undefined ? p : { ...p, example: typedValue(p.schema as Json, value) };
    }),
    ...(requestBody ? { requestBody } : {}),
    responses,
    'x-function-group': route.group,
    ...(route.permission ? { 'x-required-permission': route.permission } : {}),
  };
}

const cache = new WeakMap<readonly RouteSpec[], Json>();

export interface DocumentOptions {
  /** A description for each tag the routes use (a tag without one is listed bare). */
  tags?: Record<string, string>;
  /** Examples by operation id. */
  examples?: Examples;
}

/**
 * An operation's example: a request (path and query parameters, body) and the success answer it gets
 * (`data` of the envelope, or the whole body of a raw answer).
 */
export interface OperationExample {
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
  status: number;
  response?: unknown;
  message?: string;
}

type Examples = Record<string, OperationExample | undefined>;

/** The OpenAPI 3.1 document, generated from the route table. */
export function buildOpenApi(routes: readonly RouteSpec[], options: DocumentOptions = {}): Json {
  const cached = cache.get(routes);
  if (cached) return cached;
  const tagNames = [...new Set(routes.flatMap((r) => r.tags ?? [r.group]))];
  components = {};
  const paths: Record<string, Json> = {};
  for (const route of routes) {
    for (const [i, path] of [route.path, ...(route.aliases ?? [])].entries()) {
      const op = operationOf(route, options.examples ?? {});
      if (i > 0) op.operationId = `${route.operationId}_alias${i}`;
      (paths[documentPath(path)] ??= {})[route.method.toLowerCase()] = op;
    }
  }
  const document: Json = {
    openapi: '3.1.0',
    info: {
      title: 'Supervisor API',
      version: VERSION,
      // Not published under an open licence (package.json is private): an SPDX reference to the project's own terms.
      license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
      description: [
        'Control plane for AI coding agents. Every success answer is `{ data, message, timestamp }`; every error is',
        '`{ detail, error, errors?, request_id, timestamp }`. Lists carry `{ items, next_cursor }` with `?limit=` (1..100,',
        'default 20) and `?cursor=`.',
        '',
        '**WebSocket**: connect to `/ws?token=<access token>` (also `/api/v1/analytics/advanced/stream` and',
        '`/api/v1/monitoring/stream`). Send `{ "action": "subscribe", "channels": ["tasks", "task:<id>", ...] }`,',
        '`unsubscribe`, `ping`, `update_preferences`; receive `{ type, channel, data, timestamp }`.',
      ].join('\n'),
    },
    servers: [{ url: '/', description: 'The server that serves this document' }],
    tags: tagNames.map((name) => ({ name, ...(options.tags?.[name] ? { description: options.tags[name] } : {}) })),
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: {
        ...components,
        Error: {
          type: 'object',
          required: ['detail', 'error', 'request_id', 'timestamp'],
          properties: {
            detail: { type: 'string' },
            error: { type: 'string' },
            errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
            request_id: { type: 'string' },
            timestamp: { type: 'string', format: 'date-time' },
          },
        },
      },
    },
    paths,
  };
  cache.set(routes, document);
  return document;
}
