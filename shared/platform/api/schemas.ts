import * as z from 'zod';

/** Building blocks the route schemas share. */
export const ulidSchema = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a ULID');
export const isoDate = z.iso.datetime({ offset: true });
export const limitSchema = z.coerce.number().int().min(1).max(100).default(20).describe('Items per page (1..100, default 20)');
export const cursorSchema = z.string().max(2048).optional().describe('`next_cursor` of the previous page, to read the next one (bound to the same filters)');
export const pageQuery = { limit: limitSchema, cursor: cursorSchema };

export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() });
}

/** A comma-separated or repeated query parameter (API Gateway joins repeated ones with commas). */
export const csv = <T extends z.ZodType<unknown, string>>(item: T) =>
  z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .pipe(z.array(item));

const documented = new WeakMap<object, { as: () => z.ZodType; name?: string }>();

/**
 * Publishes `schema` in the OpenAPI document as the schema `as()` returns: the same values, described
 * more exactly than the validating schema can be (e.g. a union on `type` for a body whose refinement
 * checks `payload` against the schema of its type, with the error paths the contract names).
 */
export function documentAs<T extends z.ZodType>(schema: T, as: () => z.ZodType, name?: string): T {
  documented.set(schema, { as, ...(name ? { name } : {}) });
  return schema;
}

/**
 * The schema to publish in place of `schema`, if one was given with documentAs, and the name under
 * which the members of a union on `type` become named component schemas (`<name>_<type>`).
 */
export function documentedAs(schema: object): { schema: z.ZodType; name?: string } | undefined {
  const entry = documented.get(schema);
  return entry && { schema: entry.as(), ...(entry.name ? { name: entry.name } : {}) };
}

export const booleanQuery = z.enum(['true', 'false']).transform((v) => v === 'true');

/** Nesting allowed in a free-form JSON field (objects and arrays, the field itself being level 1). */
export const MAX_JSON_DEPTH = 20;

/**
 * Whether `value` nests objects or arrays deeper than `maxDepth` levels; iterative, so a hostile value
 * cannot overflow the stack, and it stops at the first level too deep.
 */
export function nestedDeeperThan(value: unknown, maxDepth: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > maxDepth) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

const depthCheck = (maxDepth: number) => (value: unknown, ctx: z.RefinementCtx) => {
  if (nestedDeeperThan(value, maxDepth)) {
    ctx.addIssue({ code: 'custom', message: `must not nest objects or arrays deeper than ${maxDepth} levels`, continue: false });
  }
};

/**
 * Any JSON value, nested at most `maxDepth` levels (default MAX_JSON_DEPTH): the one schema of every
 * free-form field a client sends, so that nothing deeper reaches the store (DynamoDB refuses more than
 * 32 levels) or a recursive walk.
 */
export function jsonValue(options: { maxDepth?: number } = {}) {
  return z.unknown().superRefine(depthCheck(options.maxDepth ?? MAX_JSON_DEPTH));
}

/** A free-form JSON object (`payload`, `metadata`, `settings`…), nested at most `maxDepth` levels. */
export function jsonObject(options: { maxDepth?: number; maxKeyLength?: number } = {}) {
  const key = options.maxKeyLength === undefined ? z.string() : z.string().max(options.maxKeyLength);
  return z.record(key, z.unknown()).superRefine(depthCheck(options.maxDepth ?? MAX_JSON_DEPTH));
}

/** Control characters (C0 and DEL); `multiline` text may hold tab and newline. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001F\u007F]/;
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL_MULTILINE = /[\u0000-\u0008\u000B-\u001F\u007F]/;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `value` is not clean text, or undefined when it is. */
export function textProblem(value: string, options: { multiline?: boolean } = {}): string | undefined {
  if ((options.multiline ? CONTROL_MULTILINE : CONTROL).test(value)) {
    return options.multiline ? 'must not contain control characters (other than tab and newline)' : 'must not contain control characters';
  }
  if (LONE_SURROGATE.test(value)) return 'must be valid Unicode (no lone surrogates)';
  return undefined;
}

/**
 * The one refinement of every name, title, identifier and secret a client sends: no control characters
 * (tab and newline allowed in `multiline` text) and no lone surrogates, else a 422 naming the field.
 */
export function cleanText<T extends z.ZodString>(schema: T, options: { multiline?: boolean } = {}): T {
  return schema.superRefine((value, ctx) => {
    const problem = textProblem(value, options);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }) as T;
}
