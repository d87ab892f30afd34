import { describe, expect, it } from 'vitest';
import { docsOperations } from '../../../shared/docs/routes.js';

/** Swagger UI keeps the bearer token out of localStorage and sends the spec to no outside validator. */
describe('/docs/init.js', () => {
  it('does not persist the authorization and has no validator', async () => {
    const result = (await docsOperations.swaggerAsset({ params: { proxy: 'init.js' } } as never)) as { raw: { body: string } };
    const init = result.raw.body;
    expect(init).toContain('persistAuthorization: false');
    expect(init).not.toContain('persistAuthorization: true');
    expect(init).toContain('validatorUrl: null');
  });
});
