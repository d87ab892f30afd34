import type * as z from 'zod';
import type { FieldError } from '../errors.js';

/** A zod error as the contract's `errors[]`: one entry per field, unknown keys named one by one. */
export function zodIssues(error: z.ZodError, prefix?: string): FieldError[] {
  const out: FieldError[] = [];
  // zod 4 still runs length checks after a type mismatch (`roles: "admin"` also fails `max(4)` as a
  // string): once a field has the wrong type, its other complaints only confuse.
  const wrongType = new Set(error.issues.filter((i) => i.code === 'invalid_type').map((i) => i.path.map(String).join('.')));
  for (const issue of error.issues) {
    const base = [...(prefix ? [prefix] : []), ...issue.path.map(String)];
    if (issue.code !== 'invalid_type' && wrongType.has(issue.path.map(String).join('.'))) continue;
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: [...base, key].join('.'), message: 'Unknown field' });
    } else {
      out.push({ path: base.join('.'), message: issue.message });
    }
  }
  return out;
}
