/**
 * The typed client of the Supervisor API: openapi-fetch over the types `npm run client` generates
 * from the route table (client/schema.d.ts), plus bearer authentication that renews itself.
 *
 *   const supervisor = createSupervisorClient({ baseUrl: 'http://127.0.0.1:3000' });
 *   await supervisor.login('admin', password);
 *   const { data, error } = await supervisor.api.GET('/api/v1/tasks/{task_id}', { params: { path: { task_id } } });
 *
 * Every request carries `Authorization: Bearer <access token>`. When the API answers 401 to a request
 * made with a token, the client exchanges its refresh token once (POST /auth/refresh; the refresh
 * token rotates), then sends the request again with the new access token. Concurrent 401s share one
 * refresh. When the refresh is refused the tokens are dropped and the caller sees the original 401.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, operations, paths } from './schema.js';

export type { components, operations, paths };

/** The body of a successful POST /auth/login or /auth/refresh (`data` of the envelope). */
export type TokenSet = operations['login']['responses'][200]['content']['application/json']['data'];

/** What `login` and `refresh` fail with: the API's error body and status (or the network error). */
export class SupervisorAuthError extends Error {
  constructor(
    readonly status: number,
    readonly body: components['schemas']['Error'] | undefined,
  ) {
    super(body ? `${status} ${body.error}: ${body.detail}` : `request failed with status ${status}`);
    this.name = 'SupervisorAuthError';
  }
}

export interface SupervisorClientOptions {
  /** Where the API is, e.g. `http://127.0.0.1:3000` or the stack's `ApiUrl` output. */
  baseUrl: string;
  /** Tokens kept from an earlier session (e.g. a stored refresh token); `login` sets them otherwise. */
  tokens?: Pick<TokenSet, 'access_token' | 'refresh_token'>;
  /** Called with every new token set (login and each refresh), e.g. to persist the refresh token. */
  onTokens?: (tokens: TokenSet | undefined) => void;
  /** The fetch to send requests with (default: the global one). */
  fetch?: (input: Request) => Promise<Response>;
}

export interface SupervisorClient {
  /** The openapi-fetch client: `GET`, `POST`, `PUT`, `PATCH`, `DELETE` on the API's paths, typed by schema.d.ts. */
  readonly api: Client<paths>;
  /** POST /auth/login; keeps the tokens for the requests that follow. */
  login(username: string, password: string): Promise<TokenSet>;
  /** POST /auth/refresh with the kept refresh token; keeps the new tokens. */
  refresh(): Promise<TokenSet>;
  /** POST /auth/logout (revokes the session) and forgets the tokens. */
  logout(): Promise<void>;
  /** The tokens the client holds now, if any. */
  tokens(): Pick<TokenSet, 'access_token' | 'refresh_token'> | undefined;
}

/** Requests that never carry a token nor trigger a refresh: they are how tokens are obtained. */
const TOKEN_ROUTES = /\/auth\/(login|refresh|register)$/;

export function createSupervisorClient(options: SupervisorClientOptions): SupervisorClient {
  const send = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  let tokens = options.tokens ? { access_token: options.tokens.access_token, refresh_token: options.tokens.refresh_token } : undefined;
  let refreshing: Promise<TokenSet> | undefined;

  // Login, refresh and logout go through a client without the renewing fetch (no refresh loop).
  const plain = createClient<paths>({ baseUrl: options.baseUrl, fetch: send });

  const keep = (next: TokenSet | undefined) => {
    tokens = next ? { access_token: next.access_token, refresh_token: next.refresh_token } : undefined;
    options.onTokens?.(next);
  };

  const withToken = (request: Request, accessToken: string | undefined): Request => {
    const headers = new Headers(request.headers);
    if (accessToken) headers.set('Authorization', `Bearer ${accessToken}`);
    return new Request(request, { headers });
  };

  const refresh = (): Promise<TokenSet> => {
    refreshing ??= (async () => {
      const refreshToken = tokens?.refresh_token;
      if (!refreshToken) throw new SupervisorAuthError(401, undefined);
      const { data, error, response } = await plain.POST('/auth/refresh', { body: { refresh_token: refreshToken } });
      if (!data) {
        // A refused refresh token is spent (or its family revoked): nothing left to renew with.
        if (response.status === 401) keep(undefined);
        throw new SupervisorAuthError(response.status, error);
      }
      keep(data.data);
      return data.data;
    })().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };

  const authenticatedFetch = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    if (TOKEN_ROUTES.test(path)) return send(request);
    // Kept before sending: a request's body can be read once, and a retry needs it again.
    const retry = request.clone();
    const sentWith = tokens?.access_token;
    const response = await send(withToken(request, sentWith));
    if (response.status !== 401 || !tokens?.refresh_token) return response;
    try {
      // Another request may have renewed the token while this one was in flight.
      const accessToken = tokens.access_token !== sentWith ? tokens.access_token : (await refresh()).access_token;
      return await send(withToken(retry, accessToken));
    } catch (err) {
      if (err instanceof SupervisorAuthError) return response;
      throw err;
    }
  };

  const api = createClient<paths>({ baseUrl: options.baseUrl, fetch: authenticatedFetch });

  return {
    api,
    async login(username, password) {
      const { data, error, response } = await plain.POST('/auth/login', { body: { username, password } });
      if (!data) throw new SupervisorAuthError(response.status, error);
      keep(data.data);
      return data.data;
    },
    refresh,
    async logout() {
      const current = tokens;
      if (!current) return;
      const { error, response } = await api.POST('/auth/logout', { body: { refresh_token: current.refresh_token } });
      keep(undefined);
      if (error && response.status !== 401) throw new SupervisorAuthError(response.status, error);
    },
    tokens: () => (tokens ? { ...tokens } : undefined),
  };
}
