import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { installConfig, parseConfig, resetConfig } from '../../../shared/platform/config.js';
import { outboundFetch, OutboundRefusedError } from '../../../shared/platform/outbound.js';
import { OpenAiProvider } from '../../../shared/providers/llm/openai.js';
import { ProviderError } from '../../../shared/providers/types.js';

/** A loopback listener counting every connection made to it (a refused request must make none). */
function listener(handler: http.RequestListener = (_req, res) => res.end('ok')) {
  const server = http.createServer(handler);
  const seen = { connections: 0 };
  server.on('connection', () => seen.connections++);
  return {
    seen,
    server,
    start: () => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve())),
    get port() {
      return (server.address() as AddressInfo).port;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const allowPrivate = (allowed: boolean) => installConfig({ ...parseConfig({}), outboundAllowPrivate: allowed });

const target = listener();
const other = listener();
let redirector: ReturnType<typeof listener>;

beforeAll(async () => {
  await target.start();
  await other.start();
  redirector = listener((_req, res) => {
    res.writeHead(302, { location: `http://127.0.0.1:${other.port}/latest/meta-data/` });
    res.end();
  });
  await redirector.start();
});
afterAll(async () => {
  resetConfig();
  await Promise.all([target.stop(), other.stop(), redirector.stop()]);
});
afterEach(() => {
  target.seen.connections = 0;
  other.seen.connections = 0;
});

async function refusal(promise: Promise<unknown>): Promise<OutboundRefusedError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutboundRefusedError);
  return err as OutboundRefusedError;
}

describe('outbound guard with OUTBOUND_ALLOW_PRIVATE off (the default)', () => {
  beforeAll(() => allowPrivate(false));

  it('is off by default', () => {
    expect(parseConfig({}).outboundAllowPrivate).toBe(false);
  });

  it('refuses a loopback address without connecting', async () => {
    expect((await refusal(outboundFetch(`http://127.0.0.1:${target.port}/v1/models`))).code).toBe('forbidden_address');
    expect(target.seen.connections).toBe(0);
  });

  it('refuses a name that resolves to loopback (checked after DNS) without connecting', async () => {
    expect((await refusal(outboundFetch(`http://localhost:${target.port}/v1/models`))).code).toBe('forbidden_address');
    expect(target.seen.connections).toBe(0);
  });

  it('refuses IPv4-mapped IPv6 loopback', async () => {
    expect((await refusal(outboundFetch(`http://[::ffff:127.0.0.1]:${target.port}/`))).code).toBe('forbidden_address');
    expect(target.seen.connections).toBe(0);
  });

  it.each(['http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/', 'http://10.0.0.1/', 'http://192.168.1.1/', 'http://100.64.0.1/', 'http://0.0.0.0/'])(
    'refuses %s',
    async (url) => {
      expect((await refusal(outboundFetch(url, {}, { connectTimeoutMs: 2000 }))).code).toBe('forbidden_address');
    },
  );

  it('a provider check against a loopback base_url fails without reaching it', async () => {
    const provider = new OpenAiProvider({ baseUrl: `http://127.0.0.1:${target.port}/v1`, model: 'm' });
    const err = await provider.check().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).code).toBe('forbidden_address');
    expect((err as ProviderError).retryable).toBe(false);
    expect(target.seen.connections).toBe(0);
  });
});

describe('outbound guard with OUTBOUND_ALLOW_PRIVATE=true', () => {
  beforeAll(() => allowPrivate(true));

  it('reaches a loopback server', async () => {
    const res = await outboundFetch(`http://127.0.0.1:${target.port}/`);
    expect(await res.text()).toBe('ok');
  });

  it('still refuses the metadata address', async () => {
    expect((await refusal(outboundFetch('http://169.254.169.254/latest/meta-data/', {}, { connectTimeoutMs: 2000 }))).code).toBe('forbidden_address');
  });

  it('does not follow a redirect (to a private host here): the redirect target sees nothing', async () => {
    expect((await refusal(outboundFetch(`http://127.0.0.1:${redirector.port}/v1/models`))).code).toBe('redirect_refused');
    expect(other.seen.connections).toBe(0);
  });

  it('caps the size of an answer', async () => {
    const big = listener((_req, res) => {
      res.write('x'.repeat(4096));
      res.end('x'.repeat(4096));
    });
    await big.start();
    try {
      const res = await outboundFetch(`http://127.0.0.1:${big.port}/`, {}, { maxResponseBytes: 1024 });
      const err = await res.text().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      const declared = listener((_req, res) => res.end('y'.repeat(4096)));
      await declared.start();
      expect((await refusal(outboundFetch(`http://127.0.0.1:${declared.port}/`, {}, { maxResponseBytes: 1024 }))).code).toBe('response_too_large');
      await declared.stop();
    } finally {
      await big.stop();
    }
  });

  it('ends a request that takes longer than its timeout', async () => {
    const slow = listener(() => undefined);
    await slow.start();
    try {
      const err = await outboundFetch(`http://127.0.0.1:${slow.port}/`, {}, { timeoutMs: 200 }).catch((e: unknown) => e);
      expect((err as Error).name).toBe('TimeoutError');
    } finally {
      slow.server.closeAllConnections();
      await slow.stop();
    }
  });
});
