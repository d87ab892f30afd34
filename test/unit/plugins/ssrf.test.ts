import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../shared/platform/config.js';
import { systemClock } from '../../../shared/platform/ports.js';
import type { Deps } from '../../../shared/platform/runtime.js';
import { sendEvent, probeUrl } from '../../../shared/plugins/senders.js';
import type { EventRecord } from '../../../shared/plugins/repo.js';

/** Plugin URLs on this machine, with PLUGINS_ALLOW_PRIVATE_URLS off (the default): refused before any connection. */
describe('plugin deliveries with private URLs not allowed', () => {
  let hits = 0;
  let port = 0;
  const listener = http.createServer((_req, res) => {
    hits++;
    res.end('ok');
  });
  beforeAll(async () => {
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
    port = (listener.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => listener.close(() => r())));

  const deps = (env: Record<string, string> = {}) => ({ config: parseConfig(env), clock: systemClock }) as unknown as Deps;
  const event: EventRecord = { event_id: 'evt_1', event_type: 'deploy.done', source: 'test', target_plugin: null, data: {}, metadata: {}, published_at: new Date().toISOString() };
  const webhook = (url: string) => ({ url, signing_secret: `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`, events: ['*'] });

  it('refuses loopback, a name resolving to loopback, and link-local metadata addresses; the listener sees nothing', async () => {
    // OUTBOUND_ALLOW_PRIVATE (which npm start sets for local providers) does not open plugin URLs.
    for (const env of [{}, { OUTBOUND_ALLOW_PRIVATE: 'true' }] as Record<string, string>[]) {
      for (const url of [`http://127.0.0.1:${port}/hook`, `http://localhost:${port}/hook`, 'http://169.254.169.254/latest/meta-data/']) {
        const sent = await sendEvent(deps(env), 'webhook', webhook(url), event);
        expect(sent.ok).toBe(false);
        expect(sent.status_code).toBeNull();
        const probed = await probeUrl(deps(env), url);
        expect(probed.ok).toBe(false);
      }
    }
    expect(hits).toBe(0);
  });

  it('reaches the same listener once PLUGINS_ALLOW_PRIVATE_URLS=true', async () => {
    const sent = await sendEvent(deps({ PLUGINS_ALLOW_PRIVATE_URLS: 'true' }), 'webhook', webhook(`http://127.0.0.1:${port}/hook`), event);
    expect(sent).toMatchObject({ ok: true, status_code: 200 });
    expect(hits).toBe(1);
  });
});
