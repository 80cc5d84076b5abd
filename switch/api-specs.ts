// The API specs the switch serves (GET /v1/openapi.json, /v1/asyncapi.json): the committed files of
// spec/ (written from spec/source.ts), read once at start and sent as they are.

import { readFileSync } from 'node:fs';

export const apiSpecs = {
  'openapi.json': readFileSync(new URL('../spec/openapi.json', import.meta.url)),
  'asyncapi.json': readFileSync(new URL('../spec/asyncapi.json', import.meta.url)),
} as const;
