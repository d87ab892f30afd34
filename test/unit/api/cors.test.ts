import { describe, expect, it } from 'vitest';
import middy, { type MiddlewareObj } from '@middy/core';
import httpCors from '@middy/http-cors';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { securityHeaders } from '../../../shared/platform/api/middleware.js';

/**
 * The CORS and security-header middlewares as shared/platform/api/http-handler.ts stacks them: no answer
 * carries `Access-Control-Allow-Credentials`, and so none pairs it with `*` or with an echoed origin,
 * even when an operation's answer names it.
 */
type Mw = MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>;

function handler(origins: string[], answerHeaders: Record<string, string>) {
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
    .use(httpCors({ origins, credentials: false, headers: 'Authorization,Content-Type,Idempotency-Key' }) as unknown as Mw)
    .use(securityHeaders() as unknown as Mw)
    .handler(async () => ({ statusCode: 200, headers: answerHeaders, body: '{}' }));
}

const event = (origin: string) =>
  ({ version: '2.0', headers: { origin }, requestContext: { http: { method: 'GET' }, requestId: 'r' } }) as unknown as APIGatewayProxyEventV2;

describe('CORS answers', () => {
  it('never send Access-Control-Allow-Credentials, so never with * nor with an echoed origin', async () => {
    for (let i = 0; i < 2; i++) {
      // Twice: the CORS middleware used to remember a credentials header across requests.
      const res = (await handler(['*'], { 'Access-Control-Allow-Credentials': 'true' })(event('https://evil.example'), {} as never)) as APIGatewayProxyStructuredResultV2;
      expect(res.headers?.['Access-Control-Allow-Origin']).toBe('*');
      expect(res.headers?.['Access-Control-Allow-Credentials']).toBeUndefined();
    }
  });

  it('allow a listed origin without credentials, and no other', async () => {
    const h = handler(['https://app.example'], {});
    const listed = (await h(event('https://app.example'), {} as never)) as APIGatewayProxyStructuredResultV2;
    expect(listed.headers?.['Access-Control-Allow-Origin']).toBe('https://app.example');
    expect(listed.headers?.['Access-Control-Allow-Credentials']).toBeUndefined();
    const other = (await h(event('https://evil.example'), {} as never)) as APIGatewayProxyStructuredResultV2;
    expect(other.headers?.['Access-Control-Allow-Origin']).toBeUndefined();
  });
});
