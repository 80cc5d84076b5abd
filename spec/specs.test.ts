// The committed specs: up to date with spec/source.ts, valid under real validators from the npm
// registry (@readme/openapi-parser for OpenAPI 3.1, @asyncapi/parser for AsyncAPI 3.0), and naming
// every code of workers/contract.ts. Their agreement with a running switch: test/spec-conformance.test.ts.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { validate as validateOpenApi } from '@readme/openapi-parser';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';
import { openapi, asyncapi, renderSpec } from './source.ts';
import { authorizeDeclines, pendingDeclines, authOpDeclines, prepaidDeclines, disputeDeclines, contentDeclines, purchaseOpenDeclines, errorCodes } from '../workers/contract.ts';

const committed = (name: string) => readFileSync(new URL(name, import.meta.url), 'utf8');

describe('spec/openapi.json and spec/asyncapi.json', () => {
  it('are what spec/source.ts writes (run `node --import tsx spec/write.ts` and commit)', () => {
    expect(committed('openapi.json')).toBe(renderSpec(openapi));
    expect(committed('asyncapi.json')).toBe(renderSpec(asyncapi));
  });

  it('OpenAPI 3.1 is valid', async () => {
    const result = await validateOpenApi(JSON.parse(committed('openapi.json')));
    expect(result.valid, JSON.stringify((result as { errors?: unknown }).errors ?? result, null, 1).slice(0, 2000)).toBe(true);
  });

  it('AsyncAPI 3.0 is valid, without errors or warnings beyond "a newer AsyncAPI version exists"', async () => {
    const { document, diagnostics } = await new Parser().parse(committed('asyncapi.json'));
    const problems = diagnostics
      .filter((d) => d.severity <= DiagnosticSeverity.Warning)
      .map((d) => `${DiagnosticSeverity[d.severity]} ${d.code} ${d.path.join('.')}: ${d.message}`);
    expect(problems).toEqual([]);
    expect(document).toBeDefined();
    expect(document!.operations().all().map((o) => o.id()).sort()).toEqual([
      'authEvent', 'authorize', 'capture', 'dispute', 'disputeEvent', 'get', 'refund', 'resume', 'userCard', 'userConfirm', 'userEvents', 'void',
    ]);
  });

  it('name every decline and error code of workers/contract.ts', () => {
    const schemas = openapi.components.schemas as Record<string, { enum: string[] }>;
    expect(schemas.AuthorizeDeclineCode.enum).toEqual(expect.arrayContaining([...authorizeDeclines]));
    expect(schemas.AuthorizeDeclineCode.enum).toEqual([...authorizeDeclines, ...pendingDeclines]);
    expect(schemas.AuthOpDeclineCode.enum).toEqual([...authOpDeclines]);
    expect(schemas.PrepaidDeclineCode.enum).toEqual([...prepaidDeclines]);
    expect(schemas.DisputeDeclineCode.enum).toEqual([...disputeDeclines]);
    expect(schemas.ContentDeclineCode.enum).toEqual([...contentDeclines]);
    expect(schemas.PurchaseOpenDeclineCode.enum).toEqual([...purchaseOpenDeclines]);
    expect(authorizeDeclines).toEqual(expect.arrayContaining(schemas.MoneyDeclineCode.enum));
    expect(schemas.ErrorCode.enum).toEqual(expect.arrayContaining([...errorCodes]));
  });
});

describe('docs/error-codes.md', () => {
  it('explains every decline and error code of the specs', async () => {
    const { authorizeDeclineCodes, pendingDeclineCodes, authOpDeclineCodes, prepaidDeclineCodes, disputeDeclineCodes, errorCodes: specErrors } = await import('./source.ts');
    const doc = readFileSync(new URL('../docs/error-codes.md', import.meta.url), 'utf8');
    const missing = [...authorizeDeclineCodes, ...pendingDeclineCodes, ...authOpDeclineCodes, ...prepaidDeclineCodes, ...disputeDeclineCodes, ...specErrors]
      .filter((code) => !doc.includes('`' + code + '`'));
    expect(missing).toEqual([]);
  });
});
