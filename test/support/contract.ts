import http from 'node:http';
import { inject } from 'vitest';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/**
 * Every response the integration suite receives is checked against the OpenAPI document the runtime
 * serves at `/openapi.json`, whatever its status: the status must be declared for the operation, the
 * content type must be one the operation declares for that status, and a JSON body must validate
 * against its schema (the success envelope, the error body, a raw document such as the JWKS). A
 * violation throws in the test whose request caused it.
 *
 * Requests no operation matches (an unknown path or method) must still answer in the contract's error
 * format. Not checked: CORS preflights (`OPTIONS`, answered by API Gateway, not by an operation) and
 * the `@connections` management API (API Gateway's, not this API's).
 */

type Json = Record<string, any>;

const addFormats = (addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule;

interface Template {
  path: string;
  segments: string[];
}

interface Contract {
  doc: Json;
  ajv: Ajv2020;
  templates: Template[];
  compiled: Map<string, ValidateFunction>;
}

let contract: Promise<Contract> | undefined;

/** The document as the runtime serves it, fetched without being checked (it is what checks). */
function fetchDocument(): Promise<Json> {
  return new Promise((resolve, reject) => {
    http
      .get(new URL('/openapi.json', inject('baseUrl')), (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json);
          } catch (err) {
            reject(err as Error);
          }
        });
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function loadContract(): Promise<Contract> {
  const doc = await fetchDocument();
  // strict off: the document around the schemas (paths, operations) is not itself a JSON Schema.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  addFormats(ajv);
  ajv.addSchema(doc, 'openapi.json');
  const templates = Object.keys(doc.paths).map((path) => ({ path, segments: path.split('/').filter(Boolean) }));
  // Static segments beat parameters, as API Gateway and the local router match.
  templates.sort((a, b) => specificity(a.segments) - specificity(b.segments));
  return { doc, ajv, templates, compiled: new Map() };
}

function specificity(segments: string[]): number {
  return segments.reduce((n, s, i) => n + (s.startsWith('{') ? 2 ** (32 - i) : 0), 0);
}

function matchTemplate(templates: Template[], pathname: string, doc: Json, method: string): string | undefined {
  const parts = pathname.split('/').filter(Boolean);
  for (const t of templates) {
    if (t.segments.length !== parts.length) continue;
    if (!doc.paths[t.path][method]) continue;
    if (t.segments.every((s, i) => s.startsWith('{') || s === decodeURIComponent(parts[i]!))) return t.path;
  }
  return undefined;
}

const pointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

function resolvePointer(doc: Json, ref: string): unknown {
  const [, fragment = ''] = ref.split('#');
  return fragment
    .split('/')
    .filter(Boolean)
    .reduce<any>((node, part) => node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
}

function validatorAt(c: Contract, ref: string): ValidateFunction {
  // A schema that is only a reference (every error answer: the Error schema) shares its target's validator.
  const target = (resolvePointer(c.doc, ref) as Json | undefined)?.$ref;
  if (typeof target === 'string' && Object.keys(resolvePointer(c.doc, ref) as Json).length === 1) ref = `openapi.json${target}`;
  let v = c.compiled.get(ref);
  if (!v) {
    v = c.ajv.getSchema(ref);
    if (!v) throw new Error(`no schema at ${ref}`);
    c.compiled.set(ref, v);
  }
  return v;
}

/**
 * The compiled document, loaded once per test file. Clients await it before their first request, so
 * that loading it never holds a kept-alive socket idle between two requests (the runtime closes idle
 * sockets after 5 s, and a client reusing one as it closes gets ECONNRESET).
 */
export function contractReady(): Promise<unknown> {
  contract ??= loadContract().catch((err) => {
    contract = undefined;
    throw err;
  });
  return contract;
}

export class ContractViolation extends Error {}

/** Throws a ContractViolation when the response is not one the document declares. */
export async function checkResponse(
  method: string,
  url: string | URL,
  status: number,
  contentType: string | undefined,
  text: string,
): Promise<void> {
  const m = method.toLowerCase();
  const { pathname } = new URL(url, inject('baseUrl'));
  if (m === 'options' || pathname.startsWith('/@connections')) return;
  await contractReady();
  const c = (await contract)!;
  const lookup = m === 'head' ? 'get' : m;
  const template = matchTemplate(c.templates, pathname, c.doc, lookup);
  const where = `${method.toUpperCase()} ${pathname} → ${status}`;
  const fail = (why: string): never => {
    throw new ContractViolation(`contract violation: ${where}: ${why}\nbody: ${text.slice(0, 600)}`);
  };
  let schemaRef: string;
  let declaredTypes: string[];
  if (!template) {
    // Nothing routes here: the answer is still an error in the contract's format.
    if (status < 400) fail('a success for a path and method the document does not declare');
    schemaRef = 'openapi.json#/components/schemas/Error';
    declaredTypes = ['application/json'];
  } else {
    const responses = c.doc.paths[template][lookup].responses as Json;
    const declared = responses[String(status)] ?? responses.default;
    if (!declared) fail(`status not declared (declared: ${Object.keys(responses).join(', ')})`);
    const content = (declared.content ?? {}) as Json;
    declaredTypes = Object.keys(content);
    if (m === 'head' || status === 204 || status === 304) return;
    if (!declaredTypes.length) {
      if (text.length) fail('a body where the document declares none');
      return;
    }
    const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
    if (!declaredTypes.includes(type)) fail(`content type ${type || '(none)'} not declared (declared: ${declaredTypes.join(', ')})`);
    if (!/json$/.test(type)) return;
    schemaRef = `openapi.json#/paths/${pointer(template)}/${lookup}/responses/${status in responses ? status : 'default'}/content/${pointer(type)}/schema`;
  }
  if (m === 'head') return;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    fail('the body is not JSON');
  }
  const validate = validatorAt(c, schemaRef);
  if (!validate(body)) {
    fail(`body does not match the schema: ${(validate.errors ?? []).slice(0, 8).map((e) => `${e.instancePath || '/'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`).join('; ')}`);
  }
}
