// Currencies: the exact rate parser, the rounding rule (workers/fx.ts) on currencies of exponent 0, 2
// and 3, and the shard's wallets and conversions against a real LMDB environment: a table test, and a
// fast-check property over random fundings and conversions: each currency is conserved on its own with
// the fx-pool positions counted in, the audit agrees, and converting back and forth at the same rate
// never gives the user more than they started with.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard as openShardOf, removeShardPaths } from './shard-test-support.ts';

import { ShardState, type Outcome } from './shard-state.ts';
import { Op, Format, type Command } from './contract.ts';
import { partitionPrefix } from './partitions.ts';
import { convertMinor, parseRate, rateText, type Rate } from './fx.ts';

describe('fx: rates are exact rationals', () => {
  it('reduces a classic rate', () => {
    expect(parseRate('1.0832')).toEqual({ num: 677, den: 625 });
  });
  const rows: Array<[string, Rate | null]> = [
    ['150', { num: 150, den: 1 }],
    ['0.5', { num: 1, den: 2 }],
    ['0.00000667', { num: 667, den: 100_000_000 }],
    ['0.30750000', { num: 123, den: 400 }],
    ['123456789012', { num: 123456789012, den: 1 }],
    ['1234567890123', null], // 13 significant digits
    ['0', null], ['0.000', null], ['-1', null], ['1e3', null], ['1.', null], ['.5', null], ['', null],
  ];
  it.each(rows)('%s -> %j', (text, rate) => {
    expect(parseRate(text)).toEqual(rate);
    if (rate) expect(parseRate(rateText(rate))).toEqual(rate);
  });
  it('refuses non-strings', () => {
    expect(parseRate(1.5)).toBeNull();
  });
});

describe('fx: the rounding rule, floor in the target minor unit', () => {
  // [amount, from, to, rate, spread bp, credited]
  const rows: Array<[number, string, string, string, number, number]> = [
    [100, 'USD', 'JPY', '150', 0, 150],            // 1.00 USD -> 150 JPY (exponent 2 -> 0)
    [1, 'USD', 'JPY', '150', 0, 1],                // 0.01 USD -> 1.5 JPY -> 1
    [1, 'USD', 'JPY', '0.5', 0, 0],                // 0.01 USD -> 0.005 JPY -> 0 (refused by the shard)
    [150, 'JPY', 'USD', '0.00666667', 0, 100],     // 150 JPY -> 1.0000005 USD -> 100 cents
    [1, 'JPY', 'USD', '0.00666667', 0, 0],         // 1 JPY -> 0.67 cents -> 0
    [1000, 'KWD', 'USD', '3.25', 0, 325],          // 1.000 KWD -> 3.25 USD (exponent 3 -> 2)
    [1, 'KWD', 'USD', '3.25', 0, 0],               // 0.001 KWD -> 0.325 cents -> 0
    [100, 'USD', 'KWD', '0.3075', 0, 307],         // 1.00 USD -> 0.3075 KWD -> 307 fils
    [1, 'KWD', 'JPY', '487.8', 0, 0],              // 0.001 KWD -> 0.4878 JPY -> 0 (exponent 3 -> 0)
    [3, 'KWD', 'JPY', '487.8', 0, 1],              // 0.003 KWD -> 1.4634 JPY -> 1
    [10_000, 'USD', 'EUR', '1', 100, 9_900],       // a 1% spread
    [1, 'USD', 'EUR', '1', 1, 0],                  // 1 cent less 0.01% rounds to 0
    [1_000_000_000_000, 'USD', 'JPY', '150', 0, 1_500_000_000_000], // amountMax stays exact in BigInt
  ];
  it.each(rows)('%d %s -> %s at %s, spread %d bp: %d', (amount, from, to, rate, bp, credited) => {
    expect(convertMinor(amount, from, to, parseRate(rate)!, bp)).toBe(credited);
  });
});

const openShard = () => openShardOf({ name: 'fx-' });
const accountId = (n: number) => `ac_${partitionPrefix(7)}${n.toString(16).padStart(16, '0')}`;
const U1 = accountId(1);
const T0 = Date.parse('2026-01-01T00:00:00Z');
let tag = 1;

const cmd = {
  open: (acc: string, cur = 'USD'): Command => [Op.openAccount, 0, tag++, Format.http, null, acc, cur],
  wallet: (acc: string, cur: string): Command => [Op.openWallet, 0, tag++, Format.http, null, acc, cur],
  fund: (acc: string, amount: number, cur = 'USD'): Command => [Op.fund, 0, tag++, Format.http, null, acc, amount, cur, `f${tag}`],
  convert: (acc: string, from: string, to: string, amount: number, rate: string, bp = 0, idem = `x${tag}`): Command => {
    const r = parseRate(rate)!;
    return [Op.fxConvert, 0, tag++, Format.http, null, acc, from, to, amount, r.num, r.den, bp, T0, idem];
  },
  account: (acc: string): Command => [Op.getAccount, 0, tag++, Format.http, null, acc],
  history: (acc: string): Command => [Op.history, 0, tag++, Format.http, null, acc, null, 50, null],
  pause: (acc: string): Command => [Op.accountSettings, 0, tag++, Format.http, null, acc, { paused: true }],
};

type Body = Record<string, any>;
const body = (o: Outcome): Body => (o as unknown as { body: Body }).body;
const status = (o: Outcome): number => (o as unknown as { status: number }).status;
const one = (s: ShardState, c: Command): Body => body(s.applyBatch([c], T0).outcomes[0]);
const wallets = (s: ShardState): Record<string, number> => {
  const a = one(s, cmd.account(U1));
  const out: Record<string, number> = { [a.currency]: a.balance };
  for (const w of a.wallets) out[w.currency] = w.balance;
  return out;
};

describe('fx: wallets and conversions, one step at a time', () => {
  it('opens wallets, funds them, converts with the floor, refuses what rounds to zero, and the audit agrees', () => {
    const s = openShard();
    s.applyBatch([cmd.open(U1, 'USD'), cmd.fund(U1, 10_000)], T0);
    // [step, command, expected body fields, then the wallets' balances after it]
    const rows: Array<[string, Command, Body, Record<string, number>]> = [
      ['convert to a wallet not opened', cmd.convert(U1, 'USD', 'JPY', 100, '150'), { status: 'declined', code: 'WALLET_UNKNOWN' }, { USD: 10_000 }],
      ['open JPY', cmd.wallet(U1, 'JPY'), { currency: 'USD', wallets: [{ currency: 'JPY', balance: 0, held: 0, available: 0 }] }, { USD: 10_000, JPY: 0 }],
      ['open JPY again (idempotent)', cmd.wallet(U1, 'JPY'), { wallets: [{ currency: 'JPY', balance: 0, held: 0, available: 0 }] }, { USD: 10_000, JPY: 0 }],
      ['open KWD', cmd.wallet(U1, 'KWD'), {}, { USD: 10_000, JPY: 0, KWD: 0 }],
      ['USD -> JPY, 1% spread', cmd.convert(U1, 'USD', 'JPY', 1_001, '150', 100), { status: 'converted', debited: 1_001, credited: 1_486 }, { USD: 8_999, JPY: 1_486, KWD: 0 }],
      ['JPY -> USD too small', cmd.convert(U1, 'JPY', 'USD', 1, '0.00666667'), { status: 'declined', code: 'FX_AMOUNT_TOO_SMALL' }, { USD: 8_999, JPY: 1_486, KWD: 0 }],
      ['JPY -> KWD beyond the wallet', cmd.convert(U1, 'JPY', 'KWD', 1_487, '0.00205'), { status: 'declined', code: 'INSUFFICIENT_FUNDS' }, { USD: 8_999, JPY: 1_486, KWD: 0 }],
      ['JPY -> KWD', cmd.convert(U1, 'JPY', 'KWD', 1_486, '0.00205'), { status: 'converted', credited: 3_046 }, { USD: 8_999, JPY: 0, KWD: 3_046 }],
      ['fund the KWD wallet', cmd.fund(U1, 4, 'KWD'), {}, { USD: 8_999, JPY: 0, KWD: 3_050 }],
      ['fund a currency with no wallet', cmd.fund(U1, 4, 'EUR'), { code: 'CURRENCY_MISMATCH' }, { USD: 8_999, JPY: 0, KWD: 3_050 }],
      ['KWD -> USD', cmd.convert(U1, 'KWD', 'USD', 3_050, '3.25'), { status: 'converted', credited: 991 }, { USD: 9_990, JPY: 0, KWD: 0 }],
    ];
    for (const [step, c, expected, after] of rows) {
      expect(one(s, c), step).toMatchObject(expected);
      expect(wallets(s), step).toEqual(after);
    }
    const audit = s.audit(0);
    expect(audit.problems).toEqual([]);
    // The switch's positions: what users converted out of a currency less what they received in it.
    expect(audit.currencies.USD.fxPosition).toBe(1_001 - 991);
    expect(audit.currencies.JPY.fxPosition).toBe(1_486 - 1_486);
    expect(audit.currencies.KWD.fxPosition).toBe(3_050 - 3_046);
    // The history of a wallet is its own, keyed by the wallet's record (newest first; the switch shows the primary's only).
    const hist = one(s, cmd.history(U1 + '/KWD'));
    expect(hist.entries.map((e: Body) => [e.kind, e.amount])).toEqual([['fx-out', 3_050], ['fund', 4], ['fx-in', 3_046]]);
  });

  it('replays a conversion by its idem, refuses a paused account and the eighth foreign wallet', () => {
    const s = openShard();
    s.applyBatch([cmd.open(U1, 'EUR'), cmd.fund(U1, 1_000, 'EUR'), cmd.wallet(U1, 'USD')], T0);
    const first = one(s, cmd.convert(U1, 'EUR', 'USD', 100, '1.0832', 0, 'same'));
    expect(first).toMatchObject({ status: 'converted', credited: 108 });
    // A retry at another rate answers the first conversion.
    expect(one(s, cmd.convert(U1, 'EUR', 'USD', 100, '2', 0, 'same'))).toEqual(first);
    expect(status(s.applyBatch([cmd.convert(U1, 'EUR', 'USD', 101, '1.0832', 0, 'same')], T0).outcomes[0])).toBe(409);
    expect(wallets(s)).toEqual({ EUR: 900, USD: 108 });
    for (const c of ['GBP', 'JPY', 'KWD', 'CHF', 'CAD', 'AUD', 'NZD']) expect(one(s, cmd.wallet(U1, c)).wallets).toBeDefined();
    expect(one(s, cmd.wallet(U1, 'SEK'))).toMatchObject({ code: 'BAD_REQUEST' });
    one(s, cmd.pause(U1));
    expect(one(s, cmd.convert(U1, 'EUR', 'USD', 100, '1.0832'))).toMatchObject({ status: 'declined', code: 'ACCOUNT_PAUSED' });
    expect(s.audit(0).problems).toEqual([]);
  });
});

describe('fx: purchases from a secondary wallet', () => {
  it('holds, captures, refunds and voids in the wallet of the purchase currency; the primary and its credit line are not touched', () => {
    const s = openShard();
    const V = 'vd_0007aaaaaaaaaaaaaaaa';
    s.applyBatch([cmd.open(U1, 'USD'), cmd.fund(U1, 500), cmd.wallet(U1, 'JPY'), cmd.fund(U1, 1_000, 'JPY')], T0);
    s.applyBatch([[Op.setCredit, 0, tag++, Format.http, null, U1, 10_000, 'active'] as Command], T0);
    const issue = (): { id: string; code: string } => one(s, [Op.issueIds, 0, tag++, Format.http, null, U1, 600, null, null, `i${tag}`, null, null, null]) as any;
    const authorize = (amount: number, currency: string): Outcome => {
      const id = issue();
      return s.applyBatch([[Op.authorize, 1, tag++, Format.wsMsgpack, tag, V, id.id, id.code, amount, currency, `a${tag}`] as Command], T0).outcomes[0];
    };
    const op = (o: 2 | 3 | 4, authId: string, amount: number | null): Body => one(s, [o, 1, tag++, Format.wsMsgpack, tag, V, authId, amount, `o${tag}`] as Command);
    const jpy = () => one(s, cmd.account(U1)).wallets[0];

    expect(body(authorize(100, 'EUR'))).toMatchObject({ status: 'declined', code: 'CURRENCY_MISMATCH' });
    // The primary's credit line does not lend yen.
    expect(body(authorize(1_001, 'JPY'))).toMatchObject({ status: 'declined', code: 'INSUFFICIENT_FUNDS' });
    const a1 = authorize(300, 'JPY') as unknown as { kind: string; authId: string; auth: { w?: string } };
    expect(a1.kind).toBe('approval');
    expect(a1.auth.w).toBe(U1 + '/JPY');
    expect(jpy()).toEqual({ currency: 'JPY', balance: 1_000, held: 300, available: 700 });
    expect(op(Op.capture, a1.authId, 200)).toMatchObject({ status: 'captured' });
    expect(jpy()).toEqual({ currency: 'JPY', balance: 800, held: 0, available: 800 });
    expect(op(Op.refund, a1.authId, 50)).toMatchObject({ status: 'refunded' });
    expect(jpy()).toMatchObject({ balance: 850 });
    const a2 = authorize(400, 'JPY') as unknown as { authId: string };
    expect(jpy()).toMatchObject({ held: 400 });
    expect(op(Op.void, a2.authId, null)).toMatchObject({ status: 'voided' });
    expect(jpy()).toEqual({ currency: 'JPY', balance: 850, held: 0, available: 850 });
    const primary = one(s, cmd.account(U1));
    expect(primary).toMatchObject({ currency: 'USD', balance: 500, held: 0 });
    const audit = s.audit(0);
    expect(audit.problems).toEqual([]);
    expect(audit.currencies.JPY).toMatchObject({ funding: 1_000, available: 850, held: 0, vendorPayable: 150 });
  });
});

describe('fx: property', () => {
  it('random fundings and conversions: each currency conserved with its fx-pool, no value created by a round trip', () => {
    const currencies = ['USD', 'JPY', 'KWD', 'EUR'] as const;
    const rates: Record<string, string> = { // one rate per ordered pair, consistent enough to round-trip
      'USD>JPY': '150', 'JPY>USD': '0.00666667', 'USD>KWD': '0.3075', 'KWD>USD': '3.25', 'USD>EUR': '0.92', 'EUR>USD': '1.0832',
      'JPY>KWD': '0.00205', 'KWD>JPY': '487.8', 'JPY>EUR': '0.00613', 'EUR>JPY': '162.9', 'KWD>EUR': '2.99', 'EUR>KWD': '0.334',
    };
    const cur = fc.constantFrom(...currencies);
    const op = fc.oneof(
      fc.record({ k: fc.constant('fund' as const), c: cur, n: fc.integer({ min: 1, max: 1_000_000 }) }),
      fc.record({ k: fc.constant('convert' as const), a: cur, b: cur, n: fc.integer({ min: 1, max: 2_000_000 }), bp: fc.integer({ min: 0, max: 300 }) }),
      fc.record({ k: fc.constant('round' as const), a: cur, b: cur, n: fc.integer({ min: 1, max: 2_000_000 }) }),
    );
    fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => {
      const s = openShard();
      s.applyBatch([cmd.open(U1, 'USD'), ...currencies.slice(1).map((c) => cmd.wallet(U1, c))], T0);
      const funded: Record<string, number> = { USD: 0, JPY: 0, KWD: 0, EUR: 0 };
      for (const o of ops) {
        if (o.k === 'fund') {
          one(s, cmd.fund(U1, o.n, o.c));
          funded[o.c] += o.n;
        } else if (o.a !== o.b) {
          const rate = rates[o.a + '>' + o.b];
          if (o.k === 'convert') {
            one(s, cmd.convert(U1, o.a, o.b, o.n, rate, o.bp));
          } else {
            // A round trip at one and the same rate (forward, then back at its exact inverse) never
            // gives back more than went in.
            const before = wallets(s)[o.a];
            const r = parseRate(rate)!;
            const fwd = one(s, cmd.convert(U1, o.a, o.b, o.n, rate));
            if (fwd.status === 'converted') {
              const inv = [Op.fxConvert, 0, tag++, Format.http, null, U1, o.b, o.a, fwd.credited, r.den, r.num, 0, T0, `i${tag}`] as Command;
              one(s, inv);
              expect(wallets(s)[o.a]).toBeLessThanOrEqual(before);
            }
          }
        }
      }
      const audit = s.audit(0);
      expect(audit.problems).toEqual([]);
      const w = wallets(s);
      for (const c of currencies) {
        const a = audit.currencies[c] ?? { funding: 0, available: 0, fxPosition: 0 };
        // Per currency, exactly: funded = what the user holds + the switch's fx position.
        expect(a.funding).toBe(funded[c]);
        expect(w[c] + a.fxPosition).toBe(funded[c]);
      }
      removeShardPaths();
    }), { numRuns: 60 });
  });
});
