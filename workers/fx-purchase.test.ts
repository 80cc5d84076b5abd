// Currencies at purchase (issue 5 item 3): a purchase in a currency the user holds no wallet in is
// converted from the primary at the operator's rate, held in the primary's currency, and every later
// step (capture, partial capture, void, expiry, refunds, disputes, sales tax) keeps each currency
// balanced with its fx pool. The rounding rules (workers/fx.ts coverMinor, shareMinor) on exponents
// 0, 2 and 3, tiny amounts, spreads 0 and max, rates at their limits; a table test one step at a time;
// and a fast-check property over random mixes of every step with rate changes between them.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard as openShardOf, removeShardPaths, V1 } from './shard-test-support.ts';
import { ShardState, type Outcome, type ApprovalOutcome } from './shard-state.ts';
import { Op, Format, type Command, type FxRateEntry } from './contract.ts';
import { partitionPrefix } from './partitions.ts';
import { convertMinor, coverMinor, parseRate, shareMinor, spreadBasisPointsMax } from './fx.ts';

const accountId = (n: number) => `ac_${partitionPrefix(7)}${n.toString(16).padStart(16, '0')}`;
const U1 = accountId(1);
const T0 = Date.parse('2026-01-01T00:00:00Z');
const holdTtlMs = 60_000;
let tag = 1;

const rate = (from: string, to: string, text: string, bp = 0, asOf = T0): FxRateEntry => ({ from, to, ...parseRate(text)!, bp, asOf });
type Body = Record<string, any>;
const body = (o: Outcome): Body => (o as unknown as { body: Body }).body;

class Fixture {
  readonly s: ShardState;
  now = T0;
  constructor(primary = 'USD', funds = 100_000) {
    this.s = openShardOf({ name: 'fxbuy-', holdTtlMs });
    this.s.applyBatch([[Op.openAccount, 0, tag++, Format.http, null, U1, primary], [Op.fund, 0, tag++, Format.http, null, U1, funds, primary, `f${tag}`]], T0);
  }
  run(c: Command): Outcome {
    return this.s.applyBatch([c], this.now).outcomes[0];
  }
  one(c: Command): Body {
    return body(this.run(c));
  }
  issue(): { id: string; code: string } {
    return this.one([Op.issueIds, 0, tag++, Format.http, null, U1, 3600, null, null, `i${tag}`, null, null, null]) as any;
  }
  /** An authorization; tax: [country, basis points]. Returns the outcome (approval or decline). */
  authorize(amount: number, currency: string, idem = `a${tag}`, tax: [string, number] | null = null, id = this.issue()): Outcome {
    const c = [Op.authorize, 1, tag++, Format.wsMsgpack, tag, V1, id.id, id.code, amount, currency, idem, null, null, null] as unknown as Command;
    if (tax) (c as unknown[])[14] = tax;
    return this.run(c);
  }
  op(o: 2 | 3 | 4, authId: string, amount: number | null, idem = `o${tag}`): Body {
    return this.one([o, 1, tag++, Format.wsMsgpack, tag, V1, authId, amount, idem] as Command);
  }
  dispute(authId: string, amount: number | null): Body {
    return this.one([Op.openDispute, 0, tag++, Format.http, null, U1, authId, amount, 'not as described', `d${tag}`] as Command);
  }
  decide(authId: string, winner: 'user' | 'vendor'): Body {
    return this.one([Op.disputeDecide, 0, tag++, Format.http, null, authId, winner, 'decided', `dd${tag}`] as Command);
  }
  account(): Body {
    return this.one([Op.getAccount, 0, tag++, Format.http, null, U1]);
  }
  auth(authId: string): Body {
    return this.one([Op.getAuth, 1, tag++, Format.wsMsgpack, tag, V1, authId] as Command);
  }
  history(): Body[] {
    return this.one([Op.history, 0, tag++, Format.http, null, U1, null, 50, null]).entries;
  }
  audit() {
    const a = this.s.audit(0);
    expect(a.problems).toEqual([]);
    return a;
  }
}

describe('fx at purchase: the rounding rules', () => {
  // [X amount, Y (held), X (purchase), rate Y->X, spread bp, Y held]
  const rows: Array<[number, string, string, string, number, number]> = [
    [1_000, 'USD', 'EUR', '0.92', 100, 1_098],  // 10.00 EUR at 0.92 less 1%: 1097.94 cents -> 1098
    [1_000, 'USD', 'EUR', '0.92', 0, 1_087],    // 1086.96 -> 1087
    [1, 'USD', 'EUR', '0.92', 0, 2],            // 1 cent EUR costs 1.087 cents -> 2
    [1, 'USD', 'JPY', '150', 0, 1],             // 1 yen is 0.67 cents -> 1 (exponent 2 -> 0)
    [150, 'USD', 'JPY', '150', 0, 100],         // exactly 1.00 USD: no rounding
    [151, 'USD', 'JPY', '150', 0, 101],
    [1, 'JPY', 'USD', '0.00666667', 0, 2],      // 1 cent is 1.49999 yen -> 2 (exponent 0 -> 2)
    [1, 'BHD', 'JPY', '400', 0, 3],             // 1 yen is 2.5 fils -> 3 (exponent 3 -> 0)
    [100, 'USD', 'BHD', '0.376', 0, 27],        // 0.100 BHD is 26.6 cents -> 27 (exponent 2 -> 3)
    [1, 'USD', 'EUR', '1', spreadBasisPointsMax, 2], // the widest spread: 1 / 0.9 -> 2
    [9, 'USD', 'EUR', '1', spreadBasisPointsMax, 10],
    [1, 'USD', 'JPY', '0.000000000001', 0, 100_000_000_000_000], // a rate at its smallest: beyond any balance
    [1_000_000_000_000, 'USD', 'JPY', '123456789012', 0, 811],      // at its largest: a trillion yen for 8.11 USD
  ];
  it.each(rows)('%d %s of a %s purchase at %s, %d bp: %d held', (amount, y, x, text, bp, held) => {
    const r = parseRate(text)!;
    expect(coverMinor(amount, y, x, r, bp)).toBe(held);
    // The smallest that covers: converting it gives at least the amount, one unit less does not.
    expect(convertMinor(held, y, x, r, bp)).toBeGreaterThanOrEqual(amount);
    expect(convertMinor(held - 1, y, x, r, bp)).toBeLessThan(amount);
  });

  it('coverMinor is the smallest cover and monotone, for any rate, spread and exponents', () => {
    const cur = fc.constantFrom('USD', 'JPY', 'BHD', 'EUR');
    fc.assert(fc.property(cur, cur, fc.integer({ min: 1, max: 10 ** 9 }), fc.integer({ min: 1, max: 10 ** 6 }), fc.integer({ min: 0, max: spreadBasisPointsMax }),
      fc.integer({ min: 1, max: 10 ** 10 }), fc.integer({ min: 0, max: 10 ** 10 }), (y, x, num, den, bp, a, b) => {
        const r = { num, den };
        const ca = coverMinor(a, y, x, r, bp);
        if (ca < Number.MAX_SAFE_INTEGER / 10) {
          expect(convertMinor(ca, y, x, r, bp)).toBeGreaterThanOrEqual(a);
          expect(convertMinor(ca - 1, y, x, r, bp)).toBeLessThan(a);
        }
        // A smaller purchase never costs more (so a partial capture never costs more than its hold).
        expect(coverMinor(Math.min(a, b), y, x, r, bp)).toBeLessThanOrEqual(coverMinor(Math.max(a, b), y, x, r, bp));
      }), { numRuns: 300 });
  });

  it('shareMinor rounds down, cumulatively exact at the whole', () => {
    expect(shareMinor(659, 300, 600)).toBe(329);
    expect(shareMinor(659, 600, 600)).toBe(659);
    expect(shareMinor(Number.MAX_SAFE_INTEGER, 3, 7)).toBe(Number(BigInt(Number.MAX_SAFE_INTEGER) * 3n / 7n));
    expect(shareMinor(5, 1, 0)).toBe(0);
  });
});

describe('fx at purchase: one step at a time', () => {
  it('holds USD for a EUR purchase, captures part, refunds in two steps at the original rate, and every pool balances', () => {
    const f = new Fixture('USD', 10_000);
    f.s.setFxRates([rate('USD', 'EUR', '0.92', 100, T0 - 3_600_000)]);
    // No rate for GBP: as before, the currency is refused.
    expect(body(f.authorize(100, 'GBP'))).toMatchObject({ status: 'declined', code: 'CURRENCY_MISMATCH' });
    // More than the wallet covers once converted.
    expect(body(f.authorize(9_200, 'EUR'))).toMatchObject({ status: 'declined', code: 'INSUFFICIENT_FUNDS' });
    const id1 = f.issue();
    const a = f.authorize(1_000, 'EUR', 'buy1', null, id1) as ApprovalOutcome;
    expect(a.kind).toBe('approval');
    // The approval (what the HSM signs) is in EUR; the hold is in USD.
    expect(a.auth).toMatchObject({ amt: 1_000, cur: 'EUR', fx: ['USD', 1_098, 23, 25, 100, T0 - 3_600_000] });
    expect(f.account()).toMatchObject({ currency: 'USD', balance: 10_000, held: 1_098, wallets: [] });
    // A replay after the operator changed the rate answers the first answer.
    f.s.setFxRates([rate('USD', 'EUR', '0.5', 0)]);
    const again = f.authorize(1_000, 'EUR', 'buy1', null, id1) as ApprovalOutcome;
    expect(again.kind).toBe('approval');
    expect(again.authId).toBe(a.authId);
    expect(again.auth.fx).toEqual(a.auth.fx);
    expect(f.account()).toMatchObject({ held: 1_098 });
    expect(f.auth(a.authId)).toMatchObject({
      status: 'held', amount: 1_000, currency: 'EUR',
      fx: { held: { currency: 'USD', amount: 1_098 }, rate: '0.92', spreadBasisPoints: 100, asOf: new Date(T0 - 3_600_000).toISOString(), charged: 0, givenBack: 0 },
    });
    // Capture 6.00 EUR of 10.00: what 6.00 EUR cost at the authorization's rate, ceil(658.77) = 659.
    expect(f.op(Op.capture, a.authId, 600)).toMatchObject({
      status: 'captured', captured: 600, released: 400, currency: 'EUR',
      fx: { charged: { currency: 'USD', amount: 659 }, released: { currency: 'USD', amount: 439 }, rate: '0.92' },
    });
    expect(f.account()).toMatchObject({ balance: 10_000 - 659, held: 0 });
    let audit = f.audit();
    expect(audit.currencies.USD).toMatchObject({ fxPosition: 659, available: 10_000 - 659 });
    expect(audit.currencies.EUR).toMatchObject({ fxPosition: -600, vendorPayable: 600 });
    // Refund half: floor(659 × 300 / 600) = 329; then the rest: exactly 659 in all.
    expect(f.op(Op.refund, a.authId, 300)).toMatchObject({ status: 'refunded', refunded: 300, fx: { returned: { currency: 'USD', amount: 329 } } });
    expect(f.op(Op.refund, a.authId, 300)).toMatchObject({ status: 'refunded', refundedTotal: 600, fx: { returned: { currency: 'USD', amount: 330 } } });
    expect(f.op(Op.refund, a.authId, 1)).toMatchObject({ status: 'declined', code: 'AMOUNT_OVER_LIMIT' });
    expect(f.account()).toMatchObject({ balance: 10_000, held: 0 });
    audit = f.audit();
    expect(audit.currencies.USD.fxPosition).toBe(0);
    expect(audit.currencies.EUR).toMatchObject({ fxPosition: 0, vendorPayable: 0 });
    // The user's history is in USD and names the EUR purchase.
    const hist = f.history();
    expect(hist.map((e) => [e.kind, e.amount, e.currency])).toEqual([
      ['fx-return', 330, 'USD'], ['fx-return', 329, 'USD'], ['release', 439, 'USD'], ['fx-capture', 659, 'USD'], ['fx-hold', 1_098, 'USD'], ['fund', 10_000, 'USD'],
    ]);
    expect(hist[0]).toMatchObject({ authId: a.authId, vendorId: V1, purchase: { amount: 1_000, currency: 'EUR' } });
  });

  it('voids and expires a converted hold in full, and a wallet in the purchase currency is used without converting', () => {
    const f = new Fixture('USD', 10_000);
    f.s.setFxRates([rate('USD', 'EUR', '0.92'), rate('USD', 'JPY', '150')]);
    const a = f.authorize(500, 'EUR') as ApprovalOutcome;
    expect(f.op(Op.void, a.authId, null)).toMatchObject({ status: 'voided', released: 500, currency: 'EUR' });
    const b = f.authorize(500, 'EUR') as ApprovalOutcome;
    expect(f.account()).toMatchObject({ held: 544 }); // ceil(500 / 0.92)
    f.now = T0 + holdTtlMs + 1;
    expect(f.s.sweep(f.now).holdsExpired).toBe(1);
    expect(f.auth(b.authId)).toMatchObject({ status: 'expired' });
    expect(f.account()).toMatchObject({ balance: 10_000, held: 0 });
    // With a JPY wallet the JPY purchase draws on it, not on the primary, despite the rate.
    f.one([Op.openWallet, 0, tag++, Format.http, null, U1, 'JPY']);
    f.one([Op.fund, 0, tag++, Format.http, null, U1, 1_000, 'JPY', `fj${tag}`]);
    const c = f.authorize(300, 'JPY') as ApprovalOutcome;
    expect(c.auth.fx).toBeUndefined();
    expect(c.auth.w).toBe(U1 + '/JPY');
    f.audit();
  });

  it('exponents 0 and 3, the smallest purchase, the widest spread, and sales tax on the purchase amount', () => {
    const f = new Fixture('BHD', 100_000); // 100.000 BHD
    f.s.setFxRates([rate('BHD', 'JPY', '400', spreadBasisPointsMax), rate('BHD', 'USD', '2.65')]);
    // 1 yen at 400 less 10%: 2.78 fils -> 3.
    const a = f.authorize(1, 'JPY') as ApprovalOutcome;
    expect(a.auth.fx?.[1]).toBe(3);
    expect(f.op(Op.capture, a.authId, null)).toMatchObject({ fx: { charged: { amount: 3 } } });
    expect(f.op(Op.refund, a.authId, null)).toMatchObject({ fx: { returned: { amount: 3 } } });
    // 10.00 USD with 20% tax: the tax is of the USD amount, collected in USD.
    const b = f.authorize(1_000, 'USD', 'tx', ['DE', 2_000]) as ApprovalOutcome;
    expect(b.auth.fx?.[1]).toBe(3_774); // ceil(10.00 / 2.65 BHD) = 3.774 BHD
    expect(f.op(Op.capture, b.authId, null)).toMatchObject({ captured: 1_000, tax: { amount: 167 }, fx: { charged: { currency: 'BHD', amount: 3_774 } } });
    const audit = f.audit();
    expect(audit.currencies.USD).toMatchObject({ taxCollected: 167, vendorPayable: 833, fxPosition: -1_000 });
    expect(audit.currencies.BHD.fxPosition).toBe(3 - 3 + 3_774);
    expect(f.op(Op.refund, b.authId, 500)).toMatchObject({ tax: { amount: 83 }, fx: { returned: { amount: 1_887 } } });
    f.audit();
  });

  it('a dispute credits back at the original rate; the vendor winning takes it back as far as the wallet reaches', () => {
    const f = new Fixture('USD', 2_000);
    f.s.setFxRates([rate('USD', 'EUR', '0.92')]);
    const a = f.authorize(1_000, 'EUR') as ApprovalOutcome; // 1087 USD held
    f.op(Op.capture, a.authId, null);
    expect(f.op(Op.refund, a.authId, 200)).toMatchObject({ fx: { returned: { amount: 217 } } }); // floor(1087 × 200 / 1000)
    expect(f.dispute(a.authId, null)).toMatchObject({ status: 'opened', amount: 800, currency: 'EUR', credited: { currency: 'USD', amount: 1_087 - 217 } });
    expect(f.account()).toMatchObject({ balance: 2_000 });
    // A refund now would exceed what is left: the dispute took it.
    expect(f.op(Op.refund, a.authId, 1)).toMatchObject({ status: 'declined', code: 'AMOUNT_OVER_LIMIT' });
    // The user spends most of it before the operator decides for the vendor.
    const b = f.authorize(1_500, 'USD') as ApprovalOutcome;
    f.op(Op.capture, b.authId, null);
    expect(f.decide(a.authId, 'vendor')).toMatchObject({ disputeStatus: 'won_vendor', reversed: 459, owed: 341 }); // 500 of 870 USD: floor(800 × 500 / 870)
    expect(f.account()).toMatchObject({ balance: 0 });
    let audit = f.audit();
    expect(audit.currencies.EUR).toMatchObject({ disputeOwed: 341 });
    // What the reversal took back can be refunded again (the refund budget grew by it), never past the charge.
    expect(f.op(Op.refund, a.authId, 459)).toMatchObject({ status: 'refunded', fx: { returned: { amount: 500 } } });
    audit = f.audit();
    expect(f.auth(a.authId).fx.givenBack).toBeLessThanOrEqual(f.auth(a.authId).fx.charged);
    expect(audit.currencies.USD.available + audit.currencies.USD.fxPosition + audit.currencies.USD.vendorPayable).toBe(2_000);
  });

  it('a dispute of a converted, taxed purchase takes the tax share back from the tax account, not the vendor; a reversal re-collects it', () => {
    const f = new Fixture('USD', 5_000);
    f.s.setFxRates([rate('USD', 'EUR', '0.92')]);
    const a = f.authorize(1_200, 'EUR', 'taxed', ['DE', 2_000]) as ApprovalOutcome; // tax 200 EUR of 1200
    f.op(Op.capture, a.authId, null);
    let audit = f.audit();
    expect(audit.currencies.EUR).toMatchObject({ taxCollected: 200, vendorPayable: 1_000 });
    // The whole charge disputed: the vendor gives back what it got (1000), the tax account the tax (200).
    expect(f.dispute(a.authId, null)).toMatchObject({ status: 'opened', amount: 1_200 });
    audit = f.audit();
    expect(audit.currencies.EUR).toMatchObject({ taxCollected: 0, vendorPayable: 0 });
    expect(f.account()).toMatchObject({ balance: 5_000 });
    // The vendor wins and the wallet covers it all: vendor and tax authority are whole again.
    expect(f.decide(a.authId, 'vendor')).toMatchObject({ disputeStatus: 'won_vendor', reversed: 1_200, owed: 0 });
    audit = f.audit();
    expect(audit.currencies.EUR).toMatchObject({ taxCollected: 200, vendorPayable: 1_000 });
    expect(audit.currencies.USD.available + audit.currencies.USD.fxPosition).toBe(5_000);
  });

  // Found by the all-movements property: a refund after a partial dispute of a converted, taxed purchase
  // counted only earlier refunds as given back (not the dispute credit), so it gave back too little tax
  // (the vendor paid it instead), or a negative share that failed the whole batch on an assertion.
  it('a refund after a partial dispute of a converted, taxed purchase gives back the rest of the tax, as for a held wallet', () => {
    const f = new Fixture('USD', 5_000);
    f.s.setFxRates([rate('USD', 'EUR', '0.92')]);
    const a = f.authorize(1_200, 'EUR', 'taxed2', ['DE', 2_000]) as ApprovalOutcome; // tax 200 EUR of 1200
    f.op(Op.capture, a.authId, null);
    // Half disputed: 100 of tax back from the tax account.
    expect(f.dispute(a.authId, 600)).toMatchObject({ status: 'opened', amount: 600 });
    expect(f.audit().currencies.EUR).toMatchObject({ taxCollected: 100, vendorPayable: 500 });
    // A small refund while the credit stands: its share of the tax counts the credit as given back too.
    expect(f.op(Op.refund, a.authId, 60)).toMatchObject({ status: 'refunded', tax: { amount: 10 } }); // floor(200 × 660 / 1200) − 100
    // The rest: all of the tax is back, and the vendor gave back only what it got.
    expect(f.op(Op.refund, a.authId, null)).toMatchObject({ status: 'refunded', refunded: 540, tax: { amount: 90 } });
    expect(f.audit().currencies.EUR).toMatchObject({ taxCollected: 0, vendorPayable: 0 });
  });

  it('a converted refund that would pass the balance limit is refused with BALANCE_LIMIT, and the batch goes on', () => {
    const f = new Fixture('USD', 2_000);
    f.s.setFxRates([rate('USD', 'EUR', '0.92')]);
    const a = f.authorize(1_000, 'EUR') as ApprovalOutcome; // 1087 USD held
    f.op(Op.capture, a.authId, null);
    const funds: Command[] = [];
    for (let left = 2 ** 50 - 10 - 913, n = 1; left > 0; n++) { // workers/limits.ts balanceMax; 913 USD left after the capture
      const amount = Math.min(left, 1e12);
      funds.push([Op.fund, 0, tag++, Format.http, null, U1, amount, 'USD', `top${n}`]);
      left -= amount;
    }
    f.s.applyBatch(funds, f.now);
    expect(f.account()).toMatchObject({ balance: 2 ** 50 - 10 });
    // 100 EUR back is 108 USD: past the limit. Refused, not asserted: the other command of the batch stands.
    const r = f.s.applyBatch([
      [Op.refund, 1, tag++, Format.wsMsgpack, tag, V1, a.authId, 100, 'big-refund'] as Command,
      [Op.openAccount, 0, tag++, Format.http, null, accountId(33), 'USD'],
    ], f.now).outcomes;
    expect(body(r[0])).toMatchObject({ status: 'error', code: 'BALANCE_LIMIT' });
    expect(r[1].kind).toBe('reply');
    expect(body(r[1])).toMatchObject({ accountId: accountId(33) });
    expect(f.auth(a.authId)).toMatchObject({ refunded: 0 });
    f.audit();
  });

  it('pending (confirmation mode) converted holds are released when the user declines', () => {
    const f = new Fixture('USD', 5_000);
    f.s.setFxRates([rate('USD', 'EUR', '0.92')]);
    f.one([Op.accountSettings, 0, tag++, Format.http, null, U1, { mode: 'confirm' }]);
    const id = f.issue();
    const c = [Op.authorize, 1, tag++, Format.wsMsgpack, tag, V1, id.id, id.code, 1_000, 'EUR', `a${tag}`, null, null, null] as unknown as Command;
    const r = f.s.applyBatch([c], f.now);
    const p = body(r.outcomes[0]);
    expect(p).toMatchObject({ status: 'pending', amount: 1_000, currency: 'EUR', fx: { held: { currency: 'USD', amount: 1_087 } } });
    // The user's prompt shows what leaves their own wallet, beside the vendor's figure.
    expect(r.events.find((e) => e.k === 'ask')).toMatchObject({ amount: 1_000, currency: 'EUR', held: ['USD', 1_087] });
    expect(f.account()).toMatchObject({ held: 1_087 });
    f.one([Op.decide, 0, tag++, Format.http, null, U1, p.authId, 'decline']);
    expect(f.account()).toMatchObject({ held: 0, balance: 5_000 });
    f.audit();
  });

  it('spending limits count the converted amount, in the primary currency', () => {
    const f = new Fixture('USD', 100_000);
    f.s.setFxRates([rate('USD', 'JPY', '100')]);
    f.one([Op.accountSettings, 0, tag++, Format.http, null, U1, { limits: { perTxn: 50_000, day: 80_000 } }]);
    expect(body(f.authorize(50_001, 'JPY'))).toMatchObject({ code: 'LIMIT_PER_TXN' }); // 500.01 USD
    expect(f.authorize(50_000, 'JPY').kind).toBe('approval');               // 500.00 USD
    expect(body(f.authorize(30_001, 'JPY'))).toMatchObject({ code: 'LIMIT_DAY' });
    f.audit();
  });

  it('a secondary wallet\'s purchase counts its value in the primary\'s currency, and a void uncounts it', () => {
    const f = new Fixture('USD', 1);
    f.one([Op.openWallet, 0, tag++, Format.http, null, U1, 'EUR']);
    f.one([Op.fund, 0, tag++, Format.http, null, U1, 10_000, 'EUR', `f${tag}`]);
    f.s.setFxRates([rate('USD', 'EUR', '0.5')]); // 1 EUR is worth 2 USD
    f.one([Op.accountSettings, 0, tag++, Format.http, null, U1, { limits: { perTxn: 1_000, day: 1_500 } }]);
    expect(body(f.authorize(501, 'EUR'))).toMatchObject({ code: 'LIMIT_PER_TXN' }); // 10.02 USD
    const a = f.authorize(500, 'EUR') as ApprovalOutcome;                            // 10.00 USD, from the EUR wallet
    expect(a.kind).toBe('approval');
    expect(a.auth.fx).toBeUndefined();
    expect(body(f.authorize(251, 'EUR'))).toMatchObject({ code: 'LIMIT_DAY' });       // 10.00 + 5.02 > 15.00
    f.op(Op.void, a.authId, null);
    expect(f.authorize(500, 'EUR').kind).toBe('approval');                           // the void gave the 10.00 back
    // Without any rate between the two, the wallet's own minor units count as they are.
    f.s.setFxRates([]);
    expect(f.authorize(500, 'EUR').kind).toBe('approval');                           // 10.00 + 5.00
    expect(body(f.authorize(1, 'EUR'))).toMatchObject({ code: 'LIMIT_DAY' });
    f.audit();
  });
});

describe('secondary wallets everywhere money moves', () => {
  const U2 = accountId(2);
  it('transfers, payments, token purchases and history from a secondary wallet; a transfer opens the receiver\'s wallet on arrival', () => {
    const f = new Fixture('USD', 1_000);
    f.one([Op.openWallet, 0, tag++, Format.http, null, U1, 'EUR']);
    f.one([Op.fund, 0, tag++, Format.http, null, U1, 5_000, 'EUR', `fe${tag}`]);
    f.one([Op.openAccount, 0, tag++, Format.http, null, U2, 'USD']);
    f.one([Op.setCredit, 0, tag++, Format.http, null, U1, 10_000, 'active'] as Command);
    // A secondary wallet spends what it holds: the primary's credit line does not lend euros.
    const xfer = (amount: number, cur: string): Command => [Op.transfer, 0, tag++, Format.http, null, U1, U2, 0, amount, cur, `t${tag}`, 'hi'];
    expect(f.one(xfer(5_001, 'EUR'))).toMatchObject({ status: 'declined', code: 'INSUFFICIENT_FUNDS' });
    expect(f.one(xfer(100, 'GBP'))).toMatchObject({ status: 'declined', code: 'CURRENCY_MISMATCH' });
    const r = f.s.applyBatch([xfer(1_200, 'EUR')], f.now);
    expect(body(r.outcomes[0])).toMatchObject({ status: 'sent', amount: 1_200, currency: 'EUR', balance: 3_800 });
    const item = (r.events.find((e) => e.k === 'outbox') as unknown as { items: Array<Record<string, unknown>> }).items[0];
    // Delivered (twice: applied once): U2 holds USD only, so an EUR wallet is opened for it.
    f.one([Op.deliver, 0, 0, Format.http, null, item] as unknown as Command);
    f.one([Op.deliver, 0, 0, Format.http, null, item] as unknown as Command);
    expect(f.one([Op.getAccount, 0, tag++, Format.http, null, U2])).toMatchObject({ balance: 0, wallets: [{ currency: 'EUR', balance: 1_200 }] });
    // A payment to a vendor and a token purchase, both in EUR, from the EUR wallet.
    expect(f.one([Op.payVendor, 0, tag++, Format.http, null, U1, V1, 800, 'EUR', `p${tag}`, null] as Command)).toMatchObject({ status: 'paid', balance: 3_000 });
    expect(f.one([Op.tokenBuy, 0, tag++, Format.http, null, U1, 10, 'EUR', 50, `tb${tag}`] as Command)).toMatchObject({ status: 'bought', amount: 500, balance: 2_500 });
    expect(f.account()).toMatchObject({ balance: 1_000, wallets: [{ currency: 'EUR', balance: 2_500 }] });
    // History: the EUR wallet's legs under a currency filter, the primary's without one.
    const hist = (cur: string | null) => f.one([Op.history, 0, tag++, Format.http, null, U1, null, 50, { fromMs: null, toMs: null, kinds: null, currency: cur }]).entries;
    expect(hist('EUR').map((e: Body) => [e.kind, e.amount, e.currency])).toEqual([['token-purchase', 500, 'EUR'], ['payment', 800, 'EUR'], ['transfer-out', 1_200, 'EUR'], ['fund', 5_000, 'EUR']]);
    expect(hist(null).map((e: Body) => e.kind)).toEqual(['fund']);
    expect(hist('GBP')).toEqual([]);
    // Statements likewise.
    const st = f.one([Op.statement, 0, tag++, Format.http, null, U1, T0 - 1, T0 + 1, 'EUR'] as Command);
    expect(st).toMatchObject({ accountId: U1, currency: 'EUR', opening: { balance: 0 }, closing: { balance: 2_500 } });
    expect(f.one([Op.statement, 0, tag++, Format.http, null, U1, T0 - 1, T0 + 1, 'GBP'] as Command)).toMatchObject({ code: 'NOT_FOUND' });
    const audit = f.audit();
    expect(audit.currencies.EUR).toMatchObject({ funding: 5_000, available: 2_500 + 1_200, vendorPayable: 800, sentOut: 1_200, receivedIn: 1_200 });
  });
});

describe('fx at purchase: property', () => {
  it('random holds, captures, voids, expiries, refunds, disputes, conversions and rate changes keep every currency whole', () => {
    const X = fc.constantFrom('USD', 'EUR', 'JPY', 'BHD');
    const step = fc.oneof(
      fc.record({ k: fc.constant('auth' as const), cur: X, n: fc.integer({ min: 1, max: 40_000 }), tax: fc.boolean() }),
      fc.record({ k: fc.constant('capture' as const), i: fc.nat(), part: fc.integer({ min: 0, max: 100 }) }),
      fc.record({ k: fc.constant('void' as const), i: fc.nat() }),
      fc.record({ k: fc.constant('refund' as const), i: fc.nat(), part: fc.integer({ min: 1, max: 100 }) }),
      fc.record({ k: fc.constant('dispute' as const), i: fc.nat(), part: fc.integer({ min: 1, max: 100 }) }),
      fc.record({ k: fc.constant('decide' as const), i: fc.nat(), vendor: fc.boolean() }),
      fc.record({ k: fc.constant('expire' as const) }),
      fc.record({ k: fc.constant('convert' as const), n: fc.integer({ min: 1, max: 5_000 }) }),
      fc.record({ k: fc.constant('rates' as const), eur: fc.constantFrom('0.92', '1.0832', '0.5', '3'), bhd: fc.constantFrom('0.376', '0.4', '0.001'),
        bp: fc.integer({ min: 0, max: spreadBasisPointsMax }) }),
    );
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
      const f = new Fixture('USD', 100_000);
      // A JPY wallet (no conversion for yen) funded separately; EUR and BHD purchases convert from USD.
      f.one([Op.openWallet, 0, tag++, Format.http, null, U1, 'JPY']);
      f.one([Op.fund, 0, tag++, Format.http, null, U1, 50_000, 'JPY', `fj${tag}`]);
      const funded: Record<string, number> = { USD: 100_000, JPY: 50_000, EUR: 0, BHD: 0 };
      f.s.setFxRates([rate('USD', 'EUR', '0.92', 50), rate('USD', 'BHD', '0.376'), rate('USD', 'JPY', '150')]);
      const auths: string[] = [];
      const pick = (i: number) => auths[i % auths.length];
      for (const s of steps) {
        if (s.k === 'auth') {
          const o = f.authorize(s.n, s.cur, `p${tag}`, s.tax ? ['FR', 2_000] : null);
          if (o.kind === 'approval') auths.push((o as ApprovalOutcome).authId);
        } else if (s.k === 'rates') {
          f.s.setFxRates([rate('USD', 'EUR', s.eur, s.bp), rate('USD', 'BHD', s.bhd, s.bp)]);
        } else if (s.k === 'expire') {
          f.now += holdTtlMs + 1;
          f.s.sweep(f.now);
        } else if (s.k === 'convert') {
          const r = parseRate('150')!;
          f.one([Op.fxConvert, 0, tag++, Format.http, null, U1, 'USD', 'JPY', s.n, r.num, r.den, 0, T0, `c${tag}`]);
        } else if (auths.length > 0) {
          const id = pick(s.i);
          const v = f.auth(id);
          if (s.k === 'capture') f.op(Op.capture, id, Math.floor((v.amount * s.part) / 100));
          else if (s.k === 'void') f.op(Op.void, id, null);
          else if (s.k === 'refund') f.op(Op.refund, id, Math.max(1, Math.floor((v.captured * s.part) / 100)));
          else if (s.k === 'dispute') f.dispute(id, Math.max(1, Math.floor((v.captured * s.part) / 100)));
          else f.decide(id, s.vendor ? 'vendor' : 'user');
        }
      }
      const audit = f.audit(); // every balance within its credit line, held = open holds, journal = records
      for (const id of auths) {
        const v = f.auth(id);
        if (!v.fx) continue;
        // Never charged more than the hold, never given back more than the charge.
        expect(v.fx.charged).toBeLessThanOrEqual(v.fx.held.amount);
        expect(v.fx.givenBack).toBeGreaterThanOrEqual(0);
        expect(v.fx.givenBack).toBeLessThanOrEqual(v.fx.charged);
        if (v.status === 'refunded' && !v.dispute) expect(v.fx.givenBack).toBe(v.fx.charged);
      }
      // Per currency, to the unit: funded = the user's + the vendor's + the tax authorities' + the fx pool.
      for (const [c, n] of Object.entries(funded)) {
        const a = audit.currencies[c] ?? { funding: 0, available: 0, held: 0, vendorPayable: 0, taxCollected: 0, fxPosition: 0 };
        expect(a.funding).toBe(n);
        expect(a.available + a.held + a.vendorPayable + a.taxCollected + a.fxPosition, c).toBe(n);
      }
      removeShardPaths();
    }), { numRuns: 80 });
  });
});
