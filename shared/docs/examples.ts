import type { OperationExample } from '../platform/api/openapi.js';
import examples from './examples.json';

/**
 * Each operation's published example: a request the test suite sends and the success answer it received,
 * recorded by `test/integration/api/examples.test.ts` (`UPDATE_EXAMPLES=1`), which checks them on every run.
 */
export const EXAMPLES = examples as Record<string, OperationExample | undefined>;
export type { OperationExample };
