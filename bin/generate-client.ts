import '../local/quiet-sdk.js';
/**
 * `npm run client`: writes the typed client's types, client/schema.d.ts, from the route table (the
 * OpenAPI document `/openapi.json` serves, built in-process: no server is started).
 *   npm run client            write client/schema.d.ts
 *   npm run client -- --check exit 1 when client/schema.d.ts is not what the route table produces
 */
import { parseArgs } from 'node:util';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { clientSchemaSource } from '../client/generate.js';

const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
const target = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'schema.d.ts');
const source = await clientSchemaSource();
if (values.check) {
  const current = existsSync(target) ? readFileSync(target, 'utf8') : '';
  if (current !== source) {
    console.error('client/schema.d.ts is out of date with the route table: run `npm run client` and commit the result');
    process.exit(1);
  }
  console.log('client/schema.d.ts is up to date');
} else {
  writeFileSync(target, source);
  console.log(`wrote ${path.relative(process.cwd(), target)} (${source.length} bytes)`);
}
