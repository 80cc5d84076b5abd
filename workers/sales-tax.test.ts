// Sales tax (seed 002 claim 12) in the shard state machine against a real LMDB environment.
//
// The vendor's amount is what the buyer pays, tax included. At capture the tax part of the captured
// amount, round_half_up(amount × bp / (10000 + bp)), goes to tax:<country>; the vendor's payable gets
// the rest. A refund gives back floor(collected × refundedAfter / captured) − taxRefundedBefore of
// tax, so the refunds of a capture give back exactly what was collected once they reach it, never more.
// Table tests for the rounding and the lifecycle, then a fast-check property: Σ collected − Σ refunded
// = the tax accounts, vendor + tax = captured − refunded, settlements reconcile, the audit conserves.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard, accountId, V1 } from './shard-test-support.ts';
import { ShardState, type Outcome } from './shard-state.ts';
import { Op, Format, taxOfGross, taxOfRefund, type Command, type SettlementPart, type TaxRate } from './contract.ts';

const openState = () => openShard({ name: 'sales-tax-', holdTtlMs: 3_600_000 });

const T0 = Date.parse('2026-03-01T10:00:00Z');
const hourMs = 3_600_000;

let tag = 1;
const cmd = {
  open: (acc: string): Command => [Op.openAccount, 0, tag++, Format.http, null, acc, 'USD'],
  fund: (acc: string, amount: number): Command => [Op.fund, 0, tag++, Format.http, null, acc, amount, 'USD', `f${tag}`],
  issue: (acc: string): Command => [Op.issueIds, 0, tag++, Format.http, null, acc, 600, null, null, `i${tag}`, null, null, null],
  auth: (id: string, code: string, amount: number, tax: TaxRate | null): Command =>
    [Op.authorize, 1, tag++, Format.wsMsgpack, tag, V1, id, code, amount, 'USD', `a${tag}`, null, null, null, tax],
  capture: (authId: string, amount: number | null = null): Command => [Op.capture, 1, tag++, Format.wsMsgpack, tag, V1, authId, amount, `c${tag}`],
  refund: (authId: string, amount: number | null = null): Command => [Op.refund, 1, tag++, Format.wsMsgpack, tag, V1, authId, amount, `r${tag}`],
  get: (authId: string): Command => [Op.getAuth, 1, tag++, Format.wsMsgpack, tag, V1, authId],
  settle: (sid: string): Command => [Op.settleVendor, 0, tag++, Format.http, null, V1, sid, 'operator'],
  report: (fromMs: number, toMs: number): Command => [Op.taxReport, 0, tag++, Format.http, null, fromMs, toMs],
  statement: (acc: string, fromMs: number, toMs: number): Command => [Op.statement, 0, tag++, Format.http, null, acc, fromMs, toMs],
};

const one = (state: ShardState, c: Command, now: number): Outcome => state.applyBatch([c], now).outcomes[0];
const body = (o: Outcome) => (o as { body: Record<string, any> }).body;

function approved(state: ShardState, acc: string, amount: number, tax: TaxRate | null, now = T0): string {
  const id = body(one(state, cmd.issue(acc), now)) as { id: string; code: string };
  const out = one(state, cmd.auth(id.id, id.code, amount, tax), now);
  expect(out.kind).toBe('approval');
  return (out as { authId: string }).authId;
}

describe('tax of a tax-included amount: round half up, amount = tax + vendor part', () => {
  // [amount, bp, tax]
  const rows: Array<[number, number, number]> = [
    [1190, 1900, 190],          // 19 %: exact
    [100, 1900, 16],            // 15.966… -> 16
    [1, 1900, 0],               // 0.159… -> 0
    [21, 500, 1],               // 1.0 exactly
    [105, 500, 5],              // 5 %: exact
    [10, 500, 0],               // 0.476… -> 0
    [11, 500, 1],               // 0.5238… -> 1
    [1, 10_000, 1],             // 0.5 exactly: half up -> 1 (the vendor keeps 0)
    [3, 10_000, 2],             // 1.5 -> 2
    [2, 10_000, 1],             // 1.0
    [201, 100, 2],              // 1.99… -> 2
    [1005, 50, 5],              // 5.0 exactly
    [12345, 0, 0],              // a 0 rate
    [1_000_000_000_000, 10_000, 500_000_000_000], // amountMax at 100 %: exact past 2^53 in the product
    [999_999_999_999, 2500, 200_000_000_000],     // 199 999 999 999.8 -> 200 000 000 000
  ];
  it.each(rows)('amount %i at %i bp: tax %i', (amount, bp, tax) => {
    expect(taxOfGross(amount, bp)).toBe(tax);
    expect(tax).toBeLessThanOrEqual(amount);
  });
  it('a refund gives back tax proportionally, cumulative and rounded down, all of it at the end', () => {
    // collected 16 of a capture of 100, refunded in 3 + 3 + 94.
    const a = taxOfRefund(16, 100, 0, 3, 0);     // floor(0.48) = 0
    const b = taxOfRefund(16, 100, 3, 6, a);     // floor(0.96) = 0
    const c = taxOfRefund(16, 100, 6, 100, a + b);
    expect([a, b, c]).toEqual([0, 0, 16]);
    expect(taxOfRefund(16, 100, 0, 50, 0)).toBe(8);
    expect(taxOfRefund(0, 100, 0, 100, 0)).toBe(0);
  });
});

describe('sales tax table', () => {
  it('authorize shows the tax, capture collects it, refunds give it back, settlement withholds it, the report adds up', () => {
    const state = openState();
    const acc = accountId(3, 1);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 100_000)], T0);
    const a = approved(state, acc, 1190, ['DE', 1900]);
    const b = approved(state, acc, 1000, ['DE', 1900]);
    const c = approved(state, acc, 500, ['ZZ', 0]);  // a country with no rate: 0 tax, but a taxable sale
    const d = approved(state, acc, 700, null);       // no country: no tax at all
    expect(body(one(state, cmd.get(a), T0)).tax).toEqual({ country: 'DE', basisPoints: 1900, amount: 190, collected: 0, refunded: 0 });
    expect(body(one(state, cmd.get(d), T0)).tax).toBeUndefined();

    type Row = [string, () => Command, Record<string, unknown>, { vpay: number; tax: number }];
    const rows: Row[] = [
      ['capture a in full: 190 tax', () => cmd.capture(a), { status: 'captured', captured: 1190, tax: { country: 'DE', basisPoints: 1900, amount: 190 } }, { vpay: 1000, tax: 190 }],
      // 600 × 1900 / 11900 = 95.798… -> 96
      ['capture 600 of b: the tax of the captured part', () => cmd.capture(b, 600), { captured: 600, released: 400, tax: { country: 'DE', basisPoints: 1900, amount: 96 } }, { vpay: 1504, tax: 286 }],
      ['capture c: 0 tax', () => cmd.capture(c), { captured: 500, tax: { country: 'ZZ', basisPoints: 0, amount: 0 } }, { vpay: 2004, tax: 286 }],
      ['capture d: no tax', () => cmd.capture(d), { captured: 700 }, { vpay: 2704, tax: 286 }],
      // floor(190 × 119 / 1190) = 19
      ['refund 119 of a: 19 tax back', () => cmd.refund(a, 119), { refunded: 119, tax: { country: 'DE', basisPoints: 1900, amount: 19 } }, { vpay: 2604, tax: 267 }],
      // floor(96 × 1 / 600) = 0
      ['refund 1 of b: no tax back yet', () => cmd.refund(b, 1), { refunded: 1, tax: { country: 'DE', basisPoints: 1900, amount: 0 } }, { vpay: 2603, tax: 267 }],
      ['settle (s1)', () => cmd.settle('st_1'), { status: 'settled' }, { vpay: 0, tax: 267 }],
      // the rest of b: 599, tax back 96 − 0 = 96 (all collected comes back)
      ['refund the rest of b: all its tax back', () => cmd.refund(b), { refunded: 599, refundedTotal: 600, tax: { country: 'DE', basisPoints: 1900, amount: 96 } }, { vpay: -503, tax: 171 }],
      ['refund the rest of a', () => cmd.refund(a), { refunded: 1071, tax: { country: 'DE', basisPoints: 1900, amount: 171 } }, { vpay: -1403, tax: 0 }],
    ];
    for (const [name, make, expected, money] of rows) {
      const out = one(state, make(), T0 + 1000);
      expect(body(out), name).toMatchObject(expected);
      const audit = state.audit(0);
      expect(audit.problems, name).toEqual([]);
      expect(audit.conserved, name).toBe(true);
      expect({ vpay: audit.currencies.USD.vendorPayable, tax: audit.currencies.USD.taxCollected }, name).toEqual(money);
    }
    expect(body(one(state, cmd.get(b), T0 + 2000)).tax).toEqual({ country: 'DE', basisPoints: 1900, amount: 160, collected: 96, refunded: 96 });
    const s2 = body(one(state, cmd.settle('st_2'), T0 + 2000)).part as SettlementPart;
    const p1 = body(one(state, [Op.listSettlements, 0, tag++, Format.http, null, V1, 10], T0 + 2000)).parts as SettlementPart[];
    const f1 = p1.find((p) => p.settlementId === 'st_1')!.currencies.USD;
    // Captured and refunded are gross; taxWithheld is the tax of the period, net of its refunds.
    expect(f1).toMatchObject({ captured: 1190 + 600 + 500 + 700, refunded: 120, taxWithheld: 286 - 19, payout: 2603, carried: 0 });
    expect(s2.currencies.USD).toMatchObject({ refunded: 1670, taxWithheld: -267, payout: 0, carried: -1403 });
    for (const f of [f1, s2.currencies.USD]) {
      expect(f.opening + f.captured + f.payments - f.refunded - f.disputeCredits + f.disputeReversals - f.taxWithheld).toBe(f.payout + f.carried);
    }
    // The report: the hour of T0 + 1000; an earlier hour is empty.
    const hour = Math.floor(T0 / hourMs) * hourMs;
    expect(body(one(state, cmd.report(hour, hour + hourMs), T0 + 3000)).figures).toEqual({
      DE: { USD: { sales: 1790, collected: 286, refunded: 286, net: 0, remitted: 0 } },
      ZZ: { USD: { sales: 500, collected: 0, refunded: 0, net: 0, remitted: 0 } },
    });
    expect(body(one(state, cmd.report(hour - hourMs, hour), T0 + 3000)).figures).toEqual({});
    // The user's statement shows the tax legs and still reconciles (the shard asserts it).
    const st = body(one(state, cmd.statement(acc, T0, T0 + 5000), T0 + 5000));
    expect(Object.keys(st.totals)).toEqual(expect.arrayContaining(['sales-tax', 'tax-refund']));
  });

  it('a 100 % rate on 1 unit: the whole unit is tax, the vendor keeps nothing, no zero legs', () => {
    const state = openState();
    const acc = accountId(4, 1);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 10)], T0);
    const a = approved(state, acc, 1, ['XA', 10_000]);
    expect(body(one(state, cmd.capture(a), T0))).toMatchObject({ captured: 1, tax: { amount: 1 } });
    expect(state.audit(0).currencies.USD).toMatchObject({ vendorPayable: 0, taxCollected: 1 });
    expect(body(one(state, cmd.refund(a), T0))).toMatchObject({ refunded: 1, tax: { amount: 1 } });
    const audit = state.audit(0);
    expect(audit.problems).toEqual([]);
    expect(audit.currencies.USD).toMatchObject({ vendorPayable: 0, taxCollected: 0, available: 10 });
  });

  it('a retry naming another country is an idempotency conflict; the same one replays the approval', () => {
    const state = openState();
    const acc = accountId(5, 1);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 1000)], T0);
    const id = body(one(state, cmd.issue(acc), T0)) as { id: string; code: string };
    const first: Command = [Op.authorize, 1, tag++, Format.wsMsgpack, 1, V1, id.id, id.code, 100, 'USD', 'same', null, null, null, ['FR', 2000]];
    expect(one(state, first, T0).kind).toBe('approval');
    const again = [...first] as Command;
    expect(one(state, again, T0).kind).toBe('approval');
    const other = [...first] as unknown as unknown[];
    other[14] = ['DE', 1900];
    expect(body(one(state, other as Command, T0)).code).toBe('IDEMPOTENCY_CONFLICT');
  });
});

type Step =
  | { k: 'capture'; auth: number; amount: number | null }
  | { k: 'refund'; auth: number; amount: number | null }
  | { k: 'settle' };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('capture' as const), auth: fc.nat(5), amount: fc.option(fc.integer({ min: 1, max: 5000 })) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('refund' as const), auth: fc.nat(5), amount: fc.option(fc.integer({ min: 1, max: 5000 })) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('settle' as const) }) },
);
const rateArb: fc.Arbitrary<TaxRate | null> = fc.option(fc.tuple(fc.constantFrom('DE', 'FR', 'GB'), fc.integer({ min: 0, max: 10_000 })), { freq: 4 });

describe('sales tax property', () => {
  it('random rates, captures, refunds and settlements: Σ collected − Σ refunded = tax accounts, vendor + tax = captured − refunded', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(rateArb, fc.integer({ min: 1, max: 5000 })), { minLength: 6, maxLength: 6 }),
      fc.array(fc.array(stepArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 20 }),
      (auths, batches) => {
        const state = openState();
        const acc = accountId(7, 1);
        state.applyBatch([cmd.open(acc), cmd.fund(acc, 100_000)], T0);
        const ids = auths.map(([rate, amount]) => approved(state, acc, amount, rate));
        let captured = 0;
        let refunded = 0;
        let taxIn = 0;
        let taxOut = 0;
        let sid = 0;
        const parts: SettlementPart[] = [];
        for (const batch of batches) {
          const cmds = batch.map((s): Command => s.k === 'capture' ? cmd.capture(ids[s.auth], s.amount)
            : s.k === 'refund' ? cmd.refund(ids[s.auth], s.amount) : cmd.settle(`st_${++sid}`));
          for (const o of state.applyBatch(cmds, T0 + 1000).outcomes) {
            const b = body(o);
            if (b.status === 'captured') {
              captured += b.captured;
              taxIn += b.tax?.amount ?? 0;
              if (b.tax) expect(b.tax.amount).toBe(taxOfGross(b.captured, b.tax.basisPoints));
            } else if (b.status === 'refunded') {
              refunded += b.refunded;
              taxOut += b.tax?.amount ?? 0;
            } else if (b.status === 'settled') parts.push(b.part);
          }
        }
        const audit = state.audit(0);
        expect(audit.problems).toEqual([]);
        const usd = audit.currencies.USD;
        expect(usd.taxCollected).toBe(taxIn - taxOut);
        expect(usd.vendorPayable + usd.paidOut + usd.taxCollected).toBe(captured - refunded);
        let withheld = 0;
        for (const p of parts) {
          const f = p.currencies.USD;
          if (!f) continue;
          withheld += f.taxWithheld;
          expect(f.opening + f.captured + f.payments - f.refunded - f.disputeCredits + f.disputeReversals - f.taxWithheld).toBe(f.payout + f.carried);
        }
        // Tax after the last settlement is not in any part yet: the report has it all.
        const hour = Math.floor(T0 / hourMs) * hourMs;
        const figures = body(one(state, cmd.report(hour, hour + hourMs), T0 + 2000)).figures as Record<string, Record<string, { collected: number; refunded: number; net: number }>>;
        let net = 0;
        for (const c of Object.values(figures)) net += c.USD.net;
        expect(net).toBe(taxIn - taxOut);
        expect(withheld).toBeLessThanOrEqual(taxIn);
      },
    ), { numRuns: 60 });
  });
});
