// The settlement pool's tasks (switch/settlement-tasks.ts) as plain functions: which vendors are due,
// each shard part's fee schedule (the fixed fee in one part only), the merge of parts (the identity of
// every part holds for the sum), and the same tasks through a real piscina pool loaded by tsx.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Piscina } from 'piscina';
import { dueVendors, partFees, mergeParts, settlementsCsv, type VendorSchedule } from '../switch/settlement-tasks.ts';
import type { SettlementFigures, SettlementPart } from '../workers/contract.ts';

const hourMs = 3_600_000;
const NOW = Date.parse('2026-06-01T00:00:00Z');
const v = (vendorId: string, o: Partial<VendorSchedule> = {}): VendorSchedule =>
  ({ vendorId, thresholdMinor: 1000, periodHours: 24, lastAt: NOW - hourMs, fees: {}, ...o });

describe('dueVendors', () => {
  // [name, shards' payables, vendor, expected trigger or 'idle' or null]
  const rows: Array<[string, Array<Record<string, Record<string, number>>>, VendorSchedule, string | null]> = [
    ['below the threshold, within the period', [{ a: { USD: 600 } }, {}], v('a'), null],
    ['over the threshold summed over shards', [{ a: { USD: 600 } }, { a: { USD: 400 } }], v('a'), 'threshold'],
    ['in one currency of two', [{ a: { USD: 10, EUR: 1000 } }], v('a'), 'threshold'],
    ['not summed across currencies', [{ a: { USD: 600, EUR: 600 } }], v('a'), null],
    ['past its period with something to pay', [{ a: { USD: 1 } }], v('a', { lastAt: NOW - 25 * hourMs }), 'period'],
    ['past its period with nothing: idle (the next period starts now)', [{ a: { USD: 0 } }], v('a', { lastAt: NOW - 25 * hourMs }), 'idle'],
    // The decision reads the sum over shards (the vendor owes more than it is owed): nothing is due.
    ['owing in one shard more than owed in another, past its period', [{ a: { USD: -50 } }, { a: { USD: 30 } }], v('a', { lastAt: NOW - 25 * hourMs }), 'idle'],
    ['a payable nowhere', [{}, {}], v('a'), null],
  ];
  it.each(rows)('%s', (_name, shards, vendor, expected) => {
    const out = dueVendors({ shards, vendors: [vendor], now: NOW, max: 32 });
    const got = out.idle.includes('a') ? 'idle' : out.due[0]?.trigger ?? null;
    expect(got).toBe(expected);
  });
  it('takes at most max vendors, and counts the rest as deferred', () => {
    const vendors = ['a', 'b', 'c'].map((id) => v(id, { thresholdMinor: 1 }));
    const out = dueVendors({ shards: [{ a: { USD: 5 }, b: { USD: 5 }, c: { USD: 5 } }], vendors, now: NOW, max: 2 });
    expect(out.due.map((d) => d.vendorId)).toEqual(['a', 'b']);
    expect(out.deferred).toBe(1);
  });
  // Settling vendors' tokens: earned tokens count at what settling them would pay, per shard rounded down.
  const rate: VendorSchedule['tokenRate'] = ['USD', 10, 1_000]; // 9 a token
  const tokenRows: Array<[string, Array<Record<string, Record<string, number>>>, Array<Record<string, number>>, VendorSchedule, string | null]> = [
    ['tokens only, worth 1,008 over two shards: over the threshold', [{}, {}], [{ a: 56 }, { a: 56 }], v('a', { tokenRate: rate }), 'threshold'],
    ['tokens only, worth 999: below', [{}, {}], [{ a: 111 }, {}], v('a', { tokenRate: rate }), null],
    ['money and tokens in the same currency add up', [{ a: { USD: 500 } }, {}], [{}, { a: 56 }], v('a', { tokenRate: rate }), 'threshold'],
    ['tokens only, past its period: period', [{}], [{ a: 1 }], v('a', { tokenRate: rate, lastAt: NOW - 25 * hourMs }), 'period'],
    ['tokens without a price: they wait', [{}], [{ a: 1_000 }], v('a', { tokenRate: null }), null],
    ['tokens worth nothing (100 % commission), past its period: idle', [{}], [{ a: 50 }], v('a', { tokenRate: ['USD', 10, 10_000], lastAt: NOW - 25 * hourMs }), 'idle'],
  ];
  it.each(tokenRows)('%s', (_name, shards, tokens, vendor, expected) => {
    const out = dueVendors({ shards, tokens, vendors: [vendor], now: NOW, max: 32 });
    const got = out.idle.includes('a') ? 'idle' : out.due[0]?.trigger ?? null;
    expect(got).toBe(expected);
  });
});

describe('partFees', () => {
  it('gives every part the basis points and the fixed fee to the shard with the largest payable (ties: the lowest)', () => {
    expect(partFees([{ USD: 5 }, { USD: 9 }, { USD: 9 }], { USD: { basisPoints: 250, fixedMinor: 30 } }))
      .toEqual([{ USD: [250, 0] }, { USD: [250, 30] }, { USD: [250, 0] }]);
    expect(partFees([{}, {}], { USD: { basisPoints: 0, fixedMinor: 7 } })).toEqual([{ USD: [0, 7] }, { USD: [0, 0] }]);
    expect(partFees([{ USD: 5 }], {})).toEqual([null]);
    expect(partFees([{ USD: 5 }], { USD: { basisPoints: 0, fixedMinor: 0 } })).toEqual([null]);
  });
  it('charges the fixed fee exactly once, whatever the payables', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 500 }), (payables, fixed) => {
      const fees = partFees(payables.map((p) => ({ USD: p })), { USD: { basisPoints: 100, fixedMinor: fixed } });
      expect(fees.reduce((sum, f) => sum + (f?.USD[1] ?? 0), 0)).toBe(fixed);
    }));
  });
});

const figuresArb: fc.Arbitrary<SettlementFigures> = fc.record({
  opening: fc.integer({ min: -1000, max: 0 }), captured: fc.nat(10_000), payments: fc.nat(1000), refunded: fc.nat(1000),
  disputeCredits: fc.nat(1000), disputeReversals: fc.nat(1000), fees: fc.nat(100), taxWithheld: fc.integer({ min: -100, max: 1000 }),
  tokensRedeemed: fc.nat(100), tokenProceeds: fc.nat(1000),
}, { requiredKeys: ['opening', 'captured', 'payments', 'refunded', 'disputeCredits', 'disputeReversals', 'fees', 'taxWithheld'] }).map((f) => {
  // Parts written before token settlement lack its two fields.
  const closing = f.opening + f.captured + f.payments + (f.tokenProceeds ?? 0) - f.refunded - f.disputeCredits + f.disputeReversals - f.fees - f.taxWithheld;
  return { ...f, payout: Math.max(0, closing), carried: Math.min(0, closing) };
});

describe('mergeParts', () => {
  it('sums the parts per currency: the identity of every part holds for the sum', () => {
    fc.assert(fc.property(fc.array(figuresArb, { minLength: 1, maxLength: 6 }), (figs) => {
      const parts: SettlementPart[] = figs.map((f, shard) => ({
        settlementId: 'st_x', vendorId: 'vd_x', shard, trigger: 'operator', fromMs: NOW - shard, toMs: NOW + shard, fromPos: 0, toPos: 1, currencies: { USD: f },
      }));
      const r = mergeParts(parts)!;
      const f = r.currencies.USD;
      expect(f.opening + f.captured + f.payments + f.tokenProceeds! - f.refunded - f.disputeCredits + f.disputeReversals - f.fees - f.taxWithheld).toBe(f.payout + f.carried);
      expect(f.fees).toBe(figs.reduce((s, x) => s + x.fees, 0));
      expect(f.tokensRedeemed).toBe(figs.reduce((s, x) => s + (x.tokensRedeemed ?? 0), 0));
      // The CSV carries both token columns, 0 for old parts.
      const csv = settlementsCsv({ records: [r] }).split(/\r?\n/);
      expect(csv[0]).toMatch(/,tokensRedeemed,tokenProceeds$/);
      expect(csv[1]).toMatch(new RegExp(`,${f.tokensRedeemed},${f.tokenProceeds}$`));
      expect(r.shards).toHaveLength(figs.length);
      expect(r.from).toBe(new Date(NOW - figs.length + 1).toISOString());
    }));
  });
});

describe('the pool', () => {
  it('runs the tasks in a piscina thread that loads TypeScript through tsx', async () => {
    const pool = new Piscina({ filename: new URL('../switch/settlement-tasks.mjs', import.meta.url).href, maxThreads: 1, minThreads: 0, idleTimeout: 1000 });
    try {
      const out = await pool.run({ shards: [{ a: { USD: 600 } }, { a: { USD: 400 } }], vendors: [v('a', { fees: { USD: { basisPoints: 1, fixedMinor: 2 } } })], now: NOW, max: 32 }, { name: 'dueVendors' });
      expect(out).toEqual({ due: [{ vendorId: 'a', trigger: 'threshold', partFees: [{ USD: [1, 2] }, { USD: [1, 0] }] }], idle: [], deferred: 0 });
      expect(await pool.run({ records: [] }, { name: 'settlementsCsv' })).toMatch(/^settlementId,/);
    } finally {
      await pool.close();
    }
  });
});
