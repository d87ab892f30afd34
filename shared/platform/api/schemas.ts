import * as z from 'zod';

/** Building blocks the route schemas share. */
export const ulidSchema = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a ULID');
export const isoDate = z.iso.datetime({ offset: true });
export const limitSchema = z.coerce.number().int().min(1).max(100).default(20);
export const cursorSchema = z.string().max(2048).optional();
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

export const booleanQuery = z.enum(['true', 'false']).transform((v) => v === 'true');
