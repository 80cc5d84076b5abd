import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { unpack } from 'msgpackr';
import { ReplyWriter, approvalObject, type ApprovalReply } from './reply-writer.ts';

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
const approvalArb: fc.Arbitrary<ApprovalReply> = fc.record({
  rid: fc.oneof(fc.string({ maxLength: 64, unit: 'grapheme' }), fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(null)),
  authId: fc.string({ maxLength: 40 }),
  vendorId: fc.string({ maxLength: 40 }),
  amount: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
  currency: fc.string({ minLength: 3, maxLength: 3 }),
  approvedAt: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  expiresAt: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  idLast4: fc.string({ minLength: 4, maxLength: 4 }),
  kid: fc.string({ maxLength: 20 }),
  root: hex(64),
  index: fc.nat({ max: 100_000 }),
  size: fc.integer({ min: 1, max: 100_000 }),
  path: fc.array(hex(64), { maxLength: 20 }),
  sig: hex(128),
  // Sales tax: shown next to the approval when the purchase named a country.
  tax: fc.option(fc.record({ country: fc.stringMatching(/^[A-Z]{2}$/), basisPoints: fc.integer({ min: 0, max: 10_000 }), amount: fc.nat() }), { nil: undefined }),
}, { requiredKeys: ['rid', 'authId', 'vendorId', 'amount', 'currency', 'approvedAt', 'expiresAt', 'idLast4', 'kid', 'root', 'index', 'size', 'path', 'sig'] });

describe('ReplyWriter', () => {
  it('hand-encoded approvals decode to the same object msgpackr would encode', () => {
    fc.assert(fc.property(approvalArb, (a) => {
      const w = new ReplyWriter();
      w.approvalMsgpack(a);
      expect(unpack(w.take())).toEqual(approvalObject(a, true));
    }), { numRuns: 500 });
  });

  it('keeps replies back to back and grows past its first buffer', () => {
    const w = new ReplyWriter();
    const spans: Array<[number, number, unknown]> = [];
    for (let i = 0; i < 5000; i++) {
      const start = w.off;
      const value = { rid: i, status: 'declined', code: 'ID_USED', pad: 'x'.repeat(i % 300) };
      w.msgpack(value);
      spans.push([start, w.off, value]);
    }
    const bytes = w.take();
    for (const [s, e, v] of spans) expect(unpack(bytes.subarray(s, e))).toEqual(v);
    expect(w.off).toBe(0);
  });
});
