/**
 * Writes the OpenAPI document of the route table, exactly as `/openapi.json` serves it, without
 * starting the server:
 *   npm run openapi -- [file]        (default build/openapi.json; `-` for standard output)
 * `npm run lint` lints the written document with Redocly (recommended rules, redocly.yaml).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openApiDocument } from '../shared/docs/routes.js';

const target = process.argv[2] ?? 'build/openapi.json';
const text = `${JSON.stringify(await openApiDocument(), null, 2)}\n`;
if (target === '-') process.stdout.write(text);
else {
  await mkdir(path.dirname(path.resolve(target)), { recursive: true });
  await writeFile(target, text);
  console.log(`wrote ${target}`);
}
