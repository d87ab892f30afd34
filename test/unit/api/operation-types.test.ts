import { describe, expectTypeOf, it } from 'vitest';
import * as z from 'zod';
import { defineRoutes } from '../../../shared/platform/api/route.js';
import type { Operations, ResponseData } from '../../../shared/platform/api/types.js';

/** `ApiResult.data` is typed from the route's response schema: checked by the type checker (`tsc`). */
const _routes = defineRoutes([
  { operationId: 'counted', method: 'GET', path: '/x', group: 'health', permission: null, summary: 'x', response: z.object({ n: z.number().int() }) },
  { operationId: 'free', method: 'GET', path: '/y', group: 'health', permission: null, summary: 'y' },
]);

describe('operation result types', () => {
  it('types data from the response schema', () => {
    expectTypeOf<ResponseData<(typeof _routes)[0]>>().toEqualTypeOf<{ n: number }>();
    expectTypeOf<ResponseData<(typeof _routes)[1]>>().toEqualTypeOf<unknown>();
    type Counted = Operations<typeof _routes>['counted'];
    expectTypeOf<Awaited<ReturnType<Counted>>['data']>().toEqualTypeOf<{ n: number } | undefined>();
    // An operation answering another shape is not an operation of the route.
    expectTypeOf<() => Promise<{ data: { n: string } }>>().not.toExtend<Counted>();
    expectTypeOf<() => Promise<{ data: { n: number } }>>().toExtend<Counted>();
  });
});
