import type * as z from 'zod';

/**
 * An API view of a stored record, driven by the view's zod schema: the schema's fields in its order,
 * taken from the record (a missing one is null), except those the caller computes (masked keys,
 * derived figures). Nothing the schema does not name leaves, so a private field added to a record
 * never reaches a client by accident.
 */
export function viewOf<S extends z.ZodObject>(schema: S, record: object, computed: Partial<z.infer<S>> = {}): z.infer<S> {
  const source = record as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(schema.shape)) out[key] = Object.hasOwn(computed, key) ? (computed as Record<string, unknown>)[key] : (source[key] ?? null);
  return out as z.infer<S>;
}
