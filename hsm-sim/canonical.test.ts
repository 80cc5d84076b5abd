import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalApprovalJson, canonicalJson, approvalLeafInput } from './canonical.ts';
import { leafHash } from './merkle.ts';
import { createHash } from 'node:crypto';

const fieldsArb = fc.record({
  amount: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  approvedAt: fc.string(),
  authId: fc.string(),
  currency: fc.string(),
  expiresAt: fc.string(),
  idLast4: fc.string(),
  vendorId: fc.string({ unit: 'grapheme' }),
});

describe('canonicalApprovalJson', () => {
  it('is byte-identical to the generic canonicalJson for any approval fields', () => {
    fc.assert(fc.property(fieldsArb, (f) => {
      expect(canonicalApprovalJson(f)).toBe(canonicalJson(f));
    }), { numRuns: 2000 });
  });

  it('gives the same leaf as leafHash over the canonical bytes', () => {
    fc.assert(fc.property(fieldsArb, (f) => {
      const viaInput = createHash('sha256').update(approvalLeafInput(f)).digest();
      expect(viaInput).toEqual(leafHash(Buffer.from(canonicalJson(f), 'utf8')));
    }), { numRuns: 500 });
  });
});
