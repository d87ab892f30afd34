import * as z from 'zod';
import { ROLES, PERMISSIONS } from '../platform/permissions.js';
import { PASSWORD_MAX, PASSWORD_MIN } from './passwords.js';
import { isoDate, pageQuery, ulidSchema, cleanText } from '../platform/api/schemas.js';

export const usernameSchema = z
  .string()
  .min(3)
  .max(64)
  .regex(/^[A-Za-z0-9_.-]+$/, 'may contain letters, digits, dot, dash and underscore');
export const emailSchema = z.email().max(254);
export const passwordSchema = z.string().min(PASSWORD_MIN).max(PASSWORD_MAX);
export const roleSchema = z.enum(ROLES);

export const loginBody = z.strictObject({
  username: cleanText(z.string().min(1).max(254)),
  password: z.string().min(1).max(PASSWORD_MAX),
  // OAuth2 password-grant form fields, accepted and ignored.
  grant_type: z.literal('password').optional(),
  scope: z.string().max(1024).optional(),
  client_id: cleanText(z.string().max(256)).optional(),
  client_secret: cleanText(z.string().max(256)).optional(),
});

export const registerBody = z.strictObject({
  username: usernameSchema,
  password: passwordSchema,
  email: emailSchema.optional(),
  full_name: cleanText(z.string().min(1).max(200)).optional(),
});

export const createUserBody = registerBody.extend({ roles: z.array(roleSchema).min(1).max(4).default(['user']) });

export const refreshBody = z.strictObject({ refresh_token: z.string().min(20).max(200) });
export const logoutBody = z.strictObject({ refresh_token: z.string().min(20).max(200).optional() }).optional();

export const updateUserBody = z
  .strictObject({
    email: emailSchema.optional(),
    full_name: cleanText(z.string().min(1).max(200)).optional(),
    roles: z.array(roleSchema).min(1).max(4).optional(),
    is_active: z.boolean().optional(),
    password: passwordSchema.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'at least one field is required' });

export const userIdParams = z.object({ user_id: ulidSchema });

export const userView = z.object({
  user_id: z.string(),
  username: z.string(),
  email: z.string().nullable(),
  full_name: z.string().nullable(),
  roles: z.array(roleSchema),
  is_active: z.boolean(),
  created_at: isoDate,
  updated_at: isoDate,
  last_login_at: isoDate.nullable(),
});

export const meView = userView.extend({ permissions: z.array(z.enum(PERMISSIONS)) });

export const tokenView = z.object({
  access_token: z.string(),
  refresh_token: z.string(),
  token_type: z.literal('bearer'),
  expires_in: z.number().int(),
  user: meView,
});

export const listUsersQuery = z.object({ ...pageQuery });

/** One public key as `/.well-known/jwks.json` publishes it (RFC 7517): EC (ES256) or RSA (RS256). */
export const jwk = z.looseObject({
  kty: z.enum(['EC', 'RSA']),
  kid: z.string(),
  alg: z.enum(['ES256', 'RS256']),
  use: z.literal('sig'),
  crv: z.string().optional(),
  x: z.string().optional(),
  y: z.string().optional(),
  n: z.string().optional(),
  e: z.string().optional(),
});

/** A JWK Set: the keys that verify access tokens. */
export const jwkSet = z.object({ keys: z.array(jwk) });
