import type { Logger } from '@aws-lambda-powertools/logger';
import type { RouteSpec } from './route.js';
import type { ApiRequest } from './types.js';

/** What the middleware stack learns about a request, shared between middlewares and the operation. */
export interface RequestState {
  route: RouteSpec;
  startedAt: number;
  logger: Logger;
  request: ApiRequest;
  /** A stored answer to replay (idempotency) instead of running the operation. */
  replay?: { statusCode: number; body: string };
  /** The idempotency record this request holds (completed or released when it ends). */
  idempotencyClaim?: { scope: string; token: string };
}
