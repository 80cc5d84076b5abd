// Micropayment tokens in the shard state machine, against a real LMDB environment: a table test of a
// purchase (money to tokens-sold, tokens issued), our grants and a vendor's (from its earned tokens),
// spending (incentive first, earliest expiry first, then bought), expiry on touch, declines and
// idempotency; and a fast-check property over random mixes of buys, grants, spends, payments and
// time: money and tokens are each conserved (never summed together), every token leg is in the
// journal, and the audit agrees with the running totals, the scan and the journal.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard as openShardOf } from './shard-test-support.ts';

import { ShardState, type Outcome } from './shard-state.ts';
import { Op, Format, type Command } from './contract.ts';
import { partitionPrefix } from './partitions.ts';

const openShard = () => openShardOf({ name: 'tokens-' });
const accountId = (n: number) => `ac_${partitionPrefix(7)}${n.toString(16).padStart(16, '0')}`;
const U1 = accountId(1);
const U2 = accountId(2);
const V1 = 'vd_0001aaaaaaaaaaaaaaaa';
const V2 = 'vd_0001bbbbbbbbbbbbbbbb';
const T0 = Date.parse('2026-01-01T00:00:00Z');
const hour = 3_600_000;
let tag = 1;

const cmd = {
  open: (acc: string, cur = 'USD'): Command => [Op.openAccount, 0, tag++, Format.http, null, acc, cur],
  fund: (acc: string, amount: number): Command => [Op.fund, 0, tag++, Format.http, null, acc, amount, 'USD', `f${tag}`],
  buy: (acc: string, count: number, price = 5, cur = 'USD', idem = `b${tag}`): Command =>
    [Op.tokenBuy, 0, tag++, Format.http, null, acc, count, cur, price, idem],
  grant: (acc: string, count: number, exp: number | null = null, vendor: string | null = null, idem = `g${tag}`): Command =>
    [Op.tokenGrant, 0, tag++, Format.http, null, acc, count, exp, vendor, idem],
  spend: (acc: string, vendor: string, count: number, idem = `s${tag}`): Command =>
    [Op.tokenSpend, 0, tag++, Format.http, null, acc, vendor, count, idem, null],
  balance: (acc: string): Command => [Op.tokenBalance, 0, tag++, Format.http, null, acc],
  account: (acc: string): Command => [Op.getAccount, 0, tag++, Format.http, null, acc],
  history: (acc: string): Command => [Op.history, 0, tag++, Format.http, null, acc, null, 50, null],
  pay: (acc: string, vendor: string, amount: number): Command => [Op.payVendor, 0, tag++, Format.http, null, acc, vendor, amount, 'USD', `p${tag}`, null],
};

type Body = Record<string, any>;
const body = (o: Outcome): Body => (o as unknown as { body: Body }).body;
const one = (s: ShardState, c: Command, now = T0): Body => body(s.applyBatch([c], now).outcomes[0]);

describe('tokens: one step at a time', () => {
  it('buys, grants, spends incentive first, expires on touch, and the audit agrees', () => {
    const s = openShard();
    s.applyBatch([cmd.open(U1), cmd.fund(U1, 1_000), cmd.open(U2)], T0);
    // [step, command, time, expected body fields, then U1's bought / incentive tokens after it]
    const rows: Array<[string, Command, number, Body, number, number]> = [
      ['buy 100 at 5', cmd.buy(U1, 100), T0, { status: 'bought', count: 100, amount: 500, balance: 500 }, 100, 0],
      ['buy beyond the money', cmd.buy(U1, 101), T0, { status: 'declined', code: 'INSUFFICIENT_FUNDS' }, 100, 0],
      ['buy in another currency', cmd.buy(U1, 1, 5, 'EUR'), T0, { status: 'declined', code: 'CURRENCY_MISMATCH' }, 100, 0],
      ['our grant, expiring in 2 h', cmd.grant(U1, 10, T0 + 2 * hour), T0, { status: 'granted', count: 10, by: 'operator' }, 100, 10],
      ['our grant, expiring in 1 h', cmd.grant(U1, 5, T0 + hour), T0, { status: 'granted', count: 5 }, 100, 15],
      ['our grant, never expiring', cmd.grant(U1, 3), T0, { status: 'granted', count: 3 }, 100, 18],
      ['spend 7: the 1 h lot, then 2 of the 2 h lot', cmd.spend(U1, V1, 7), T0, { status: 'spent', fromIncentive: 7, fromBought: 0 }, 100, 11],
      ['vendor grant beyond its earned tokens', cmd.grant(U2, 8, null, V1), T0, { status: 'declined', code: 'VENDOR_TOKENS_INSUFFICIENT' }, 100, 11],
      ['vendor grant from its earned tokens', cmd.grant(U2, 6, null, V1), T0, { status: 'granted', by: V1 }, 100, 11],
      ['after 2 h the 8 left of the 2 h lot expired', cmd.balance(U1), T0 + 2 * hour, { bought: 100, incentive: 3, total: 103 }, 100, 3],
      ['spend 10: 3 incentive, then 7 bought', cmd.spend(U1, V2, 10), T0 + 2 * hour, { status: 'spent', fromIncentive: 3, fromBought: 7 }, 93, 0],
      ['spend beyond the tokens', cmd.spend(U1, V2, 94), T0 + 2 * hour, { status: 'declined', code: 'TOKENS_INSUFFICIENT' }, 93, 0],
    ];
    for (const [step, c, now, expected, bought, incentive] of rows) {
      expect(one(s, c, now), step).toMatchObject(expected);
      expect(one(s, cmd.balance(U1), now), step).toMatchObject({ bought, incentive });
    }
    expect(one(s, cmd.balance(U2), T0 + 2 * hour)).toMatchObject({ bought: 0, incentive: 6 });
    const audit = s.audit(0);
    expect(audit.problems).toEqual([]);
    // Tokens: 100 bought + 18 granted = 93 + 0 + 6 held, 7 + 10 − 6 = 11 at vendors, 8 expired.
    expect(audit.tokens).toEqual({ bought: 100, granted: 18, held: 93, incentive: 6, vendor: 11, expired: 8, rewarded: 0, sentOut: 0, receivedIn: 0, redeemed: 0, outboxPending: 0 });
    // Money: only the purchase moved it; the currency's figures never include a token.
    expect(audit.tokensSold).toEqual({ USD: 500 });
    expect(audit.currencies.USD).toMatchObject({ funding: 1_000, available: 500 });
    expect(Object.keys(audit.currencies)).toEqual(['USD']);
    // The user's history shows the money leg (token-purchase), with the balance after it.
    const hist = one(s, cmd.history(U1), T0 + 2 * hour);
    expect(JSON.stringify(hist)).toContain('token-purchase');
    s.close();
  });

  it('replays by idem (even after a price change), conflicts on other parameters', () => {
    const s = openShard();
    s.applyBatch([cmd.open(U1), cmd.fund(U1, 1_000)], T0);
    const first = one(s, cmd.buy(U1, 10, 5, 'USD', 'k1'));
    expect(one(s, cmd.buy(U1, 10, 7, 'USD', 'k1'))).toEqual(first);
    expect(one(s, cmd.buy(U1, 11, 5, 'USD', 'k1'))).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    const g = one(s, cmd.grant(U1, 4, null, null, 'g1'));
    expect(one(s, cmd.grant(U1, 4, null, null, 'g1'))).toEqual(g);
    const sp = one(s, cmd.spend(U1, V1, 2, 's1'));
    expect(one(s, cmd.spend(U1, V1, 2, 's1'))).toEqual(sp);
    expect(one(s, cmd.balance(U1))).toMatchObject({ bought: 10, incentive: 2 });
    expect(one(s, cmd.account(U1))).toMatchObject({ balance: 950 });
    expect(s.audit(0).problems).toEqual([]);
    s.close();
  });

  it('answers unknown accounts and paused accounts', () => {
    const s = openShard();
    expect(one(s, cmd.buy(U1, 1))).toMatchObject({ code: 'ACCOUNT_UNKNOWN' });
    expect(one(s, cmd.grant(U1, 1))).toMatchObject({ code: 'ACCOUNT_UNKNOWN' });
    expect(one(s, cmd.spend(U1, V1, 1))).toMatchObject({ code: 'ACCOUNT_UNKNOWN' });
    s.applyBatch([cmd.open(U1), cmd.fund(U1, 100), [Op.accountSettings, 0, tag++, Format.http, null, U1, { paused: true }]], T0);
    expect(one(s, cmd.buy(U1, 1))).toMatchObject({ status: 'declined', code: 'ACCOUNT_PAUSED' });
    expect(one(s, cmd.grant(U1, 1, T0 - 1))).toMatchObject({ code: 'BAD_REQUEST' });
    s.close();
  });
});

describe('tokens: property', () => {
  it('money and tokens are each conserved over random mixes, and the audit agrees', () => {
    const users = [U1, U2];
    const vendors = [V1, V2];
    const op = fc.oneof(
      fc.record({ k: fc.constant('buy' as const), u: fc.nat(1), n: fc.integer({ min: 1, max: 50 }), price: fc.integer({ min: 1, max: 9 }) }),
      fc.record({ k: fc.constant('grant' as const), u: fc.nat(1), n: fc.integer({ min: 1, max: 20 }), v: fc.integer({ min: -1, max: 1 }),
        ttlH: fc.option(fc.integer({ min: 1, max: 5 })) }),
      fc.record({ k: fc.constant('spend' as const), u: fc.nat(1), n: fc.integer({ min: 1, max: 40 }), v: fc.nat(1) }),
      fc.record({ k: fc.constant('pay' as const), u: fc.nat(1), n: fc.integer({ min: 1, max: 100 }), v: fc.nat(1) }),
      fc.record({ k: fc.constant('wait' as const), h: fc.integer({ min: 1, max: 3 }) }),
    );
    fc.assert(
      fc.property(fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 }), (batches) => {
        const s = openShard();
        try {
          s.applyBatch([cmd.open(U1), cmd.open(U2), cmd.fund(U1, 2_000), cmd.fund(U2, 2_000)], T0);
          let now = T0;
          let moneyPaid = 0;
          for (const batch of batches) {
            const cmds: Command[] = [];
            // The batch runs at one instant: after its waits (so a grant's expiry is always ahead of it).
            for (const o of batch) if (o.k === 'wait') now += o.h * hour;
            for (const o of batch) {
              if (o.k === 'wait') continue;
              else if (o.k === 'buy') cmds.push(cmd.buy(users[o.u], o.n, o.price));
              else if (o.k === 'grant') cmds.push(cmd.grant(users[o.u], o.n, o.ttlH === null ? null : now + o.ttlH * hour, o.v < 0 ? null : vendors[o.v]));
              else if (o.k === 'spend') cmds.push(cmd.spend(users[o.u], vendors[o.v], o.n));
              else cmds.push(cmd.pay(users[o.u], vendors[o.v], o.n));
            }
            if (cmds.length === 0) continue;
            for (const out of s.applyBatch(cmds, now).outcomes) {
              const b = body(out);
              expect(b.status, JSON.stringify(b)).not.toBe('error');
              if (b.status === 'bought') moneyPaid += b.amount;
            }
          }
          // Touch every account at the end so expired lots are swept, then audit.
          const balances = s.applyBatch(users.map((u) => cmd.balance(u)), now).outcomes.map(body);
          const audit = s.audit(0);
          expect(audit.problems).toEqual([]);
          expect(audit.conserved).toBe(true);
          const t = audit.tokens!;
          expect(t.bought + t.granted).toBe(t.held + t.incentive + t.vendor + t.expired);
          expect(t.held + t.incentive).toBe(balances.reduce((n, b) => n + b.total, 0));
          expect(audit.tokensSold?.USD ?? 0).toBe(moneyPaid);
          const usd = audit.currencies.USD;
          expect(usd.funding).toBe(usd.available + usd.held + usd.vendorPayable + moneyPaid);
          expect(Object.keys(audit.currencies)).toEqual(['USD']);
        } finally {
          s.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
