// Writes spec/openapi.json and spec/asyncapi.json from spec/source.ts. Run after changing the source
// and commit both files: `node --import tsx spec/write.ts`. spec/specs.test.ts fails while they differ.
import { writeFileSync } from 'node:fs';
import { openapi, asyncapi, renderSpec } from './source.ts';

for (const [name, doc] of [['openapi.json', openapi], ['asyncapi.json', asyncapi]] as const) {
  const path = new URL(name, import.meta.url);
  writeFileSync(path, renderSpec(doc));
  console.log(`wrote spec/${name}`);
}
