// Settlement fees and the sales-tax gaps (dispute credits and reversals, remittance) in the shard
// state machine against a real LMDB environment.
//
// Fees: each part deducts floor(gross × bp / 10000) + fixed of its own gross sales (captured +
// payments), never beyond its positive payable, into the `fees` account before the payout. A table of
// the rounding, a table of one vendor's settlements, then a fast-check property over random mixes of
// taxed captures, refunds, disputes, payments, fee schedules, settlements and remittances: every part
// satisfies opening + captured + payments − refunded − disputeCredits + disputeReversals − fees −
// taxWithheld = payout + carried, the audit conserves money (fees and tax remitted included), and the
// vendor's and the authorities' money adds up to what users paid, to the unit.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard, accountId, V1 } from './shard-test-support.ts';
import { ShardState, type Outcome } from './shard-state.ts';
import { Op, Format, feeOfPart, type Command, type PartFee, type RemittancePart, type SettlementPart, type TaxRate } from './contract.ts';

const openState = () => openShard({ name: 'settlement-fees-', holdTtlMs: 3_600_000 });

const T0 = Date.parse('2026-04-01T10:00:00Z');
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
  dispute: (acc: string, authId: string, amount: number | null = null): Command =>
    [Op.openDispute, 0, tag++, Format.http, null, acc, authId, amount, 'not what I ordered', `d${tag}`],
  decide: (authId: string, winner: 'user' | 'vendor'): Command => [Op.disputeDecide, 0, tag++, Format.http, null, authId, winner, 'looked', `o${tag}`],
  pay: (acc: string, amount: number): Command => [Op.payVendor, 0, tag++, Format.http, null, acc, V1, amount, 'USD', `p${tag}`, null],
  settle: (sid: string, fees: Record<string, PartFee> | null = null): Command => [Op.settleVendor, 0, tag++, Format.http, null, V1, sid, 'operator', fees],
  remit: (country: string, rid: string, toMs: number | null = null): Command => [Op.taxRemit, 0, tag++, Format.http, null, country, rid, toMs],
  remittances: (country: string | null): Command => [Op.listRemittances, 0, tag++, Format.http, null, country, 50],
  report: (fromMs: number, toMs: number): Command => [Op.taxReport, 0, tag++, Format.http, null, fromMs, toMs],
  vhist: (): Command => [Op.vendorHistory, 0, tag++, Format.http, null, V1, null, 100, { fromMs: null, toMs: null, kinds: null, currency: null }],
  hist: (acc: string): Command => [Op.history, 0, tag++, Format.http, null, acc, null, 100, { fromMs: null, toMs: null, kinds: null, currency: null }],
};

const one = (state: ShardState, c: Command, now = T0 + 1000): Outcome => state.applyBatch([c], now).outcomes[0];
const body = (o: Outcome) => (o as { body: Record<string, any> }).body;

function approved(state: ShardState, acc: string, amount: number, tax: TaxRate | null): string {
  const id = body(one(state, cmd.issue(acc), T0)) as { id: string; code: string };
  const out = one(state, cmd.auth(id.id, id.code, amount, tax), T0);
  expect(out.kind).toBe('approval');
  return (out as { authId: string }).authId;
}

describe('the fee of a part: floor(gross × bp / 10000) + fixed, at most the positive payable', () => {
  // [gross, closing payable, [bp, fixed], fee]
  const rows: Array<[number, number, PartFee | undefined, number]> = [
    [10_000, 10_000, [250, 0], 250],          // 2.5 % exactly
    [9_999, 9_999, [250, 0], 249],            // 249.975 -> 249 (floor: the vendor keeps the fraction)
    [39, 39, [250, 0], 0],                    // 0.975 -> 0
    [40, 40, [250, 0], 1],                    // 1.0 exactly
    [1_000, 1_000, [0, 30], 30],              // fixed only
    [1_000, 1_000, [100, 30], 40],            // both
    [1_000, 20, [100, 30], 20],               // capped at the payable: the rest is waived, never carried
    [1_000, 0, [100, 30], 0],                 // nothing to pay: no fee
    [1_000, -50, [100, 30], 0],               // the vendor owes: no fee on top
    [0, 500, [100, 0], 0],                    // a period of refunds only: no sales, no percentage
    [-100, 500, [100, 5], 5],                 // gross never counts below zero
    [1_000, 1_000, undefined, 0],             // no schedule in this currency
    [1_000_000_000_000, 1_000_000_000_000, [10_000, 0], 1_000_000_000_000], // 100 % of amountMax, exact
    [999_999_999_999, 999_999_999_999, [1, 0], 99_999_999],                  // past 2^53 in the product, exact
  ];
  it.each(rows)('gross %i, payable %i, fee %j: %i', (gross, closing, fee, expected) => {
    expect(feeOfPart(gross, closing, fee)).toBe(expected);
  });
  it('floor per part: a vendor split over shards pays at most (parts − 1) units less than one floor over the sum', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 1e9 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 10_000 }), (grosses, bp) => {
      const split = grosses.reduce((s, g) => s + feeOfPart(g, g, [bp, 0]), 0);
      const whole = feeOfPart(grosses.reduce((s, g) => s + g, 0), Number.MAX_SAFE_INTEGER, [bp, 0]);
      expect(split).toBeLessThanOrEqual(whole);
      expect(whole - split).toBeLessThanOrEqual(grosses.length - 1);
    }));
  });
});

describe('settlement fees table', () => {
  it('a settlement deducts its fee into the fees account before the payout; the record shows it; the audit counts it', () => {
    const state = openState();
    const acc = accountId(3, 1);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 50_000)], T0);
    const a = approved(state, acc, 10_000, null);
    const b = approved(state, acc, 1190, ['DE', 1900]);
    const fees: Record<string, PartFee> = { USD: [250, 30] };
    type Row = [string, () => Command, string, { vpay: number; paidOut: number; fees: number }];
    const rows: Row[] = [
      ['capture a 10000', () => cmd.capture(a), 'captured', { vpay: 10_000, paidOut: 0, fees: 0 }],
      ['capture b 1190 (190 of it tax)', () => cmd.capture(b), 'captured', { vpay: 11_000, paidOut: 0, fees: 0 }],
      // gross 11190 × 2.5 % = 279.75 -> 279, + 30 fixed = 309; payout 11000 − 309.
      ['settle s1 at 2.5 % + 30', () => cmd.settle('st_1', fees), 'settled', { vpay: 0, paidOut: 10_691, fees: 309 }],
      ['a replay moves nothing', () => cmd.settle('st_1', fees), 'settled', { vpay: 0, paidOut: 10_691, fees: 309 }],
      ['refund 1000 of a after its payout', () => cmd.refund(a, 1000), 'refunded', { vpay: -1000, paidOut: 10_691, fees: 309 }],
      // The vendor owes 1000: no fee on a period without a payout.
      ['settle s2: carried, no fee', () => cmd.settle('st_2', fees), 'settled', { vpay: -1000, paidOut: 10_691, fees: 309 }],
      ['a payment of 1100', () => cmd.pay(acc, 1100), 'paid', { vpay: 100, paidOut: 10_691, fees: 309 }],
      // 1100 × 2.5 % = 27 (+30 = 57), at most the payable of 100: 57 fee, 43 paid out.
      ['settle s3: the fee from what is left after the debt', () => cmd.settle('st_3', fees), 'settled', { vpay: 0, paidOut: 10_734, fees: 366 }],
      ['a payment of 10', () => cmd.pay(acc, 10), 'paid', { vpay: 10, paidOut: 10_734, fees: 366 }],
      ['settle s4: the fee takes it all, no payout', () => cmd.settle('st_4', fees), 'settled', { vpay: 0, paidOut: 10_734, fees: 376 }],
    ];
    const parts: SettlementPart[] = [];
    for (const [name, make, expected, money] of rows) {
      const b = body(one(state, make()));
      expect(b.status, name).toBe(expected);
      if (expected === 'settled' && !parts.some((p) => p.settlementId === b.part.settlementId)) parts.push(b.part);
      const audit = state.audit(0);
      expect(audit.problems, name).toEqual([]);
      const usd = audit.currencies.USD;
      expect({ vpay: usd.vendorPayable, paidOut: usd.paidOut, fees: usd.fees }, name).toEqual(money);
    }
    expect(parts[0].currencies.USD).toEqual({
      opening: 0, captured: 11_190, payments: 0, refunded: 0, disputeCredits: 0, disputeReversals: 0, fees: 309, taxWithheld: 190, payout: 10_691, carried: 0, tokensRedeemed: 0, tokenProceeds: 0,
    });
    expect(parts[2].currencies.USD).toMatchObject({ opening: -1000, refunded: 0, payments: 1100, fees: 57, payout: 43, carried: 0 });
    expect(parts[3].currencies.USD).toMatchObject({ payments: 10, fees: 10, payout: 0, carried: 0 });
    for (const p of parts) {
      for (const f of Object.values(p.currencies)) {
        expect(f.opening + f.captured + f.payments - f.refunded - f.disputeCredits + f.disputeReversals - f.fees - f.taxWithheld).toBe(f.payout + f.carried);
      }
    }
    // The fee is a vendor history entry, signed out of the vendor.
    const hist = body(one(state, cmd.vhist())).entries as Array<{ kind: string; amount: number }>;
    expect(hist.filter((e) => e.kind === 'fee').map((e) => e.amount)).toEqual([-10, -57, -309]);
  });
});

describe('sales tax and disputes table', () => {
  it('a dispute credit takes its tax share back from tax:CC; a reversal re-collects it; never more than collected', () => {
    const state = openState();
    const acc = accountId(4, 1);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 5000)], T0);
    const a = approved(state, acc, 1190, ['DE', 1900]); // tax 190
    const b = approved(state, acc, 100, ['DE', 1900]);  // tax 16
    type Row = [string, () => Command, string, { vpay: number; tax: number; avail: number }];
    const rows: Row[] = [
      ['capture a', () => cmd.capture(a), 'captured', { vpay: 1000, tax: 190, avail: 3710 }],
      ['refund 119 of a: 19 tax back', () => cmd.refund(a, 119), 'refunded', { vpay: 900, tax: 171, avail: 3829 }],
      // cumulative: floor(190 × (119 + 476) / 1190) = 95, less 19 already = 76.
      ['dispute 476 of a: 76 tax back', () => cmd.dispute(acc, a, 476), 'opened', { vpay: 500, tax: 95, avail: 4305 }],
      ['the vendor wins: 476 reversed, 76 re-collected', () => cmd.decide(a, 'vendor'), 'won_vendor', { vpay: 900, tax: 171, avail: 3829 }],
      ['capture b', () => cmd.capture(b), 'captured', { vpay: 984, tax: 187, avail: 3829 }],
      ['dispute all of b: all 16 tax back', () => cmd.dispute(acc, b), 'opened', { vpay: 900, tax: 171, avail: 3929 }],
      ['the user wins: the credit stands', () => cmd.decide(b, 'user'), 'won_user', { vpay: 900, tax: 171, avail: 3929 }],
      // The reversal took the credit back, so all but the first refund is refundable: 1071, 171 of it tax.
      ['refund the rest of a (1071): the rest of its tax', () => cmd.refund(a), 'refunded', { vpay: 0, tax: 0, avail: 5000 }],
    ];
    for (const [name, make, expected, money] of rows) {
      const o = body(one(state, make()));
      expect(o.status, name).toBe(expected);
      const audit = state.audit(0);
      expect(audit.problems, name).toEqual([]);
      const usd = audit.currencies.USD;
      expect({ vpay: usd.vendorPayable, tax: usd.taxCollected, avail: usd.available }, name).toEqual(money);
    }
    // Re-collected tax counts as collected in the report; everything was given back in the end.
    const hour = Math.floor((T0 + 1000) / hourMs) * hourMs;
    expect(body(one(state, cmd.report(hour, hour + hourMs))).figures.DE.USD).toEqual({
      sales: 1290, collected: 190 + 16 + 76, refunded: 19 + 76 + 16 + 171, net: 0, remitted: 0,
    });
    const kinds = (body(one(state, cmd.hist(acc))).entries as Array<{ kind: string }>).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['dispute-tax-credit', 'dispute-tax-reversal']));
  });
});

describe('tax remittance table', () => {
  it('pays each country what its tax account holds, once per id; a give-back after it leaves the authority owing, netted next time', () => {
    const state = openState();
    const acc = accountId(5, 1);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 5000)], T0);
    const a = approved(state, acc, 1190, ['DE', 1900]); // tax 190
    const b = approved(state, acc, 600, ['FR', 2000]);  // tax 100
    const c = approved(state, acc, 1190, ['DE', 1900]); // tax 190
    one(state, cmd.capture(a));
    one(state, cmd.capture(b));
    type Row = [string, () => Command, { DE: number; FR: number; taxCollected: number; taxRemitted: number }, Record<string, { remitted: number; left: number }> | null];
    const rows: Row[] = [
      ['remit DE (r1)', () => cmd.remit('DE', 'tr_1'), { DE: 1, FR: 0, taxCollected: 100, taxRemitted: 190 }, { USD: { remitted: 190, left: 0 } }],
      ['a replay of r1 pays nothing more', () => cmd.remit('DE', 'tr_1'), { DE: 1, FR: 0, taxCollected: 100, taxRemitted: 190 }, { USD: { remitted: 190, left: 0 } }],
      ['refund 119 of a: 19 of remitted tax given back', () => cmd.refund(a, 119), { DE: 1, FR: 0, taxCollected: 81, taxRemitted: 190 }, null],
      ['remit DE (r2): nothing, the authority owes 19', () => cmd.remit('DE', 'tr_2'), { DE: 2, FR: 0, taxCollected: 81, taxRemitted: 190 }, { USD: { remitted: 0, left: -19 } }],
      ['capture c (190 tax)', () => cmd.capture(c), { DE: 2, FR: 0, taxCollected: 271, taxRemitted: 190 }, null],
      ['remit DE (r3): 190 less the 19 owed', () => cmd.remit('DE', 'tr_3'), { DE: 3, FR: 0, taxCollected: 100, taxRemitted: 361 }, { USD: { remitted: 171, left: 0 } }],
      ['remit FR (r4)', () => cmd.remit('FR', 'tr_4'), { DE: 3, FR: 1, taxCollected: 0, taxRemitted: 461 }, { USD: { remitted: 100, left: 0 } }],
      ['remit GB: no tax there, an empty part', () => cmd.remit('GB', 'tr_5'), { DE: 3, FR: 1, taxCollected: 0, taxRemitted: 461 }, {}],
    ];
    for (const [name, make, money, currencies] of rows) {
      const o = body(one(state, make()));
      if (currencies) expect(o.part.currencies, name).toEqual(currencies);
      const audit = state.audit(0);
      expect(audit.problems, name).toEqual([]);
      const usd = audit.currencies.USD;
      const listed = (country: string) => (body(one(state, cmd.remittances(country))).parts as RemittancePart[]).length;
      expect({ DE: listed('DE'), FR: listed('FR'), taxCollected: usd.taxCollected, taxRemitted: usd.taxRemitted }, name).toEqual(money);
    }
    const all = body(one(state, cmd.remittances(null))).parts as RemittancePart[];
    expect(all.map((p) => p.remittanceId)).toEqual(['tr_5', 'tr_4', 'tr_3', 'tr_2', 'tr_1']);
    expect(all[2].fromMs).toBe(all[3].toMs);
    const hour = Math.floor((T0 + 1000) / hourMs) * hourMs;
    const figures = body(one(state, cmd.report(hour, hour + hourMs))).figures;
    expect(figures.DE.USD).toMatchObject({ collected: 380, refunded: 19, net: 361, remitted: 361 });
    expect(figures.FR.USD).toMatchObject({ collected: 100, net: 100, remitted: 100 });
  });
});

describe('tax remittance for a period', () => {
  it('pays the tax collected before the period\'s end, each unit once; a give-back nets the next one', () => {
    const state = openShard({ name: 'settlement-fees-', holdTtlMs: 86_400_000 }); // holds outlive the hours below
    const acc = accountId(8, 1);
    const h0 = Math.floor(T0 / hourMs) * hourMs;
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 5000)], T0);
    const a = approved(state, acc, 1190, ['DE', 1900]); // 190 tax
    const c = approved(state, acc, 1190, ['DE', 1900]); // 190 tax
    one(state, cmd.capture(a), h0 + 1000);              // hour 0
    expect(body(one(state, cmd.capture(c), h0 + 1.5 * hourMs)).status).toBe('captured'); // hour 1
    one(state, cmd.refund(a, 119), h0 + 2.2 * hourMs);  // hour 2: 19 back
    // [name, command, at, expected part currencies (or an error code), tax collected after]
    type Row = [string, () => Command, number, Record<string, { remitted: number; left: number }> | string, number];
    const rows: Row[] = [
      ['up to hour 1: hour 0\'s 190; hour 1\'s stays', () => cmd.remit('DE', 'tr_p1', h0 + hourMs), h0 + 2.3 * hourMs, { USD: { remitted: 190, left: 171 } }, 171],
      ['the same id and period: the same part', () => cmd.remit('DE', 'tr_p1', h0 + hourMs), h0 + 2.4 * hourMs, { USD: { remitted: 190, left: 171 } }, 171],
      ['the same id, another period: a conflict', () => cmd.remit('DE', 'tr_p1', h0 + 2 * hourMs), h0 + 2.4 * hourMs, 'IDEMPOTENCY_CONFLICT', 171],
      ['up to hour 2: hour 1\'s 190 (the refund of hour 2 is later)', () => cmd.remit('DE', 'tr_p2', h0 + 2 * hourMs), h0 + 2.5 * hourMs, { USD: { remitted: 190, left: -19 } }, -19],
      ['up to hour 1 again: nothing is paid twice', () => cmd.remit('DE', 'tr_p3', h0 + hourMs), h0 + 2.6 * hourMs, { USD: { remitted: 0, left: -19 } }, -19],
      ['up to now: the refund is owed back, nothing to pay', () => cmd.remit('DE', 'tr_p4'), h0 + 2.7 * hourMs, { USD: { remitted: 0, left: -19 } }, -19],
    ];
    for (const [name, make, at, expected, taxAfter] of rows) {
      const b = body(one(state, make(), at));
      if (typeof expected === 'string') expect(b.code, name).toBe(expected);
      else expect(b.part.currencies, name).toEqual(expected);
      const audit = state.audit(0);
      expect(audit.problems, name).toEqual([]);
      expect(audit.currencies.USD.taxCollected, name).toBe(taxAfter);
      expect(audit.currencies.USD.taxRemitted + audit.currencies.USD.taxCollected, name).toBe(190 + 190 - 19);
    }
    const parts = body(one(state, cmd.remittances('DE'), h0 + 3 * hourMs)).parts as RemittancePart[];
    expect(parts.map((p) => [p.remittanceId, p.fromMs === null ? null : (p.fromMs - h0) / hourMs, (p.toMs - h0) / hourMs]))
      .toEqual([['tr_p4', 2, 2.7], ['tr_p3', 2, 1], ['tr_p2', 1, 2], ['tr_p1', null, 1]]);
  });
});

describe('tax remittance in several currencies', () => {
  it('pays each currency of the country in one part', () => {
    const state = openState();
    const usd = accountId(6, 1);
    const eur = accountId(6, 2);
    state.applyBatch([cmd.open(usd), cmd.fund(usd, 5000), [Op.openAccount, 0, tag++, Format.http, null, eur, 'EUR'],
      [Op.fund, 0, tag++, Format.http, null, eur, 5000, 'EUR', `f${tag}`]], T0);
    const a = approved(state, usd, 1190, ['DE', 1900]);
    const id = body(one(state, cmd.issue(eur), T0)) as { id: string; code: string };
    const out = one(state, [Op.authorize, 1, tag++, Format.wsMsgpack, tag, V1, id.id, id.code, 595, 'EUR', `a${tag}`, null, null, null, ['DE', 1900]], T0);
    const b = (out as { authId: string }).authId;
    one(state, cmd.capture(a));
    one(state, cmd.capture(b));
    const part = body(one(state, cmd.remit('DE', 'tr_m'))).part as RemittancePart;
    expect(part.currencies).toEqual({ EUR: { remitted: 95, left: 0 }, USD: { remitted: 190, left: 0 } });
    const audit = state.audit(0);
    expect(audit.problems).toEqual([]);
    expect([audit.currencies.USD.taxRemitted, audit.currencies.EUR.taxRemitted, audit.currencies.USD.taxCollected, audit.currencies.EUR.taxCollected]).toEqual([190, 95, 0, 0]);
  });
});

type Step =
  | { k: 'capture'; auth: number; amount: number | null }
  | { k: 'refund'; auth: number; amount: number | null }
  | { k: 'dispute'; auth: number; amount: number | null }
  | { k: 'decide'; auth: number; winner: 'user' | 'vendor' }
  | { k: 'pay'; amount: number }
  | { k: 'settle'; fee: PartFee | null; replay: boolean }
  | { k: 'remit'; country: string };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('capture' as const), auth: fc.nat(5), amount: fc.option(fc.integer({ min: 1, max: 3000 })) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('refund' as const), auth: fc.nat(5), amount: fc.option(fc.integer({ min: 1, max: 3000 })) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('dispute' as const), auth: fc.nat(5), amount: fc.option(fc.integer({ min: 1, max: 3000 })) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('decide' as const), auth: fc.nat(5), winner: fc.constantFrom('user' as const, 'vendor' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('pay' as const), amount: fc.integer({ min: 1, max: 500 }) }) },
  { weight: 3, arbitrary: fc.record({
    k: fc.constant('settle' as const), replay: fc.boolean(),
    fee: fc.option(fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 500 })) as fc.Arbitrary<PartFee>),
  }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('remit' as const), country: fc.constantFrom('DE', 'FR') }) },
);
const rateArb: fc.Arbitrary<TaxRate | null> = fc.option(fc.tuple(fc.constantFrom('DE', 'FR'), fc.integer({ min: 0, max: 10_000 })), { freq: 4 });

describe('fees, tax and disputes property', () => {
  it('every part balances with fees and tax withheld; money is conserved; vendor + fees + tax = what users paid', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(rateArb, fc.integer({ min: 1, max: 3000 })), { minLength: 6, maxLength: 6 }),
      fc.array(fc.array(stepArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 25 }),
      (auths, batches) => {
        const state = openState();
        const acc = accountId(7, 1);
        state.applyBatch([cmd.open(acc), cmd.fund(acc, 100_000)], T0);
        const ids = auths.map(([rate, amount]) => approved(state, acc, amount, rate));
        let paidIn = 0; // captured + paid − refunded − dispute credits + reversals: what users paid net
        let sid = 0;
        let rid = 0;
        const parts = new Map<string, SettlementPart>();
        for (const batch of batches) {
          const cmds = batch.map((s): Command => {
            switch (s.k) {
              case 'capture': return cmd.capture(ids[s.auth], s.amount);
              case 'refund': return cmd.refund(ids[s.auth], s.amount);
              case 'dispute': return cmd.dispute(acc, ids[s.auth], s.amount);
              case 'decide': return cmd.decide(ids[s.auth], s.winner);
              case 'pay': return cmd.pay(acc, s.amount);
              case 'settle': return cmd.settle(`st_${s.replay && sid > 0 ? sid : ++sid}`, s.fee ? { USD: s.fee } : null);
              case 'remit': return cmd.remit(s.country, `tr_${++rid}`);
            }
          });
          state.applyBatch(cmds, T0 + 1000).outcomes.forEach((o, i) => {
            const b = body(o);
            if (b.status === 'captured') paidIn += b.captured;
            else if (b.status === 'refunded') paidIn -= b.refunded;
            else if (b.status === 'paid') paidIn += b.amount;
            else if (b.status === 'opened') paidIn -= b.amount;
            else if (b.status === 'won_vendor' && batch[i].k === 'decide') paidIn += b.reversed;
            else if (b.status === 'settled') parts.set(b.part.settlementId, b.part);
          });
        }
        const audit = state.audit(0);
        expect(audit.problems).toEqual([]);
        const usd = audit.currencies.USD ?? { vendorPayable: 0, paidOut: 0, fees: 0, taxCollected: 0, taxRemitted: 0 };
        let fees = 0;
        let payouts = 0;
        for (const p of parts.values()) {
          const f = p.currencies.USD;
          if (!f) continue;
          expect(f.fees).toBeGreaterThanOrEqual(0);
          expect(f.opening + f.captured + f.payments - f.refunded - f.disputeCredits + f.disputeReversals - f.fees - f.taxWithheld).toBe(f.payout + f.carried);
          fees += f.fees;
          payouts += f.payout;
        }
        expect(usd.fees).toBe(fees);
        expect(usd.paidOut).toBe(payouts);
        expect(usd.vendorPayable + usd.paidOut + usd.fees + usd.taxCollected + usd.taxRemitted).toBe(paidIn);
        // Never more tax given back than collected: what the authorities hold and were paid is ≥ 0.
        expect(usd.taxCollected + usd.taxRemitted).toBeGreaterThanOrEqual(0);
      },
    ), { numRuns: 80 });
  });
});
