// Settling vendors' tokens (seed 003 claims 1, 16) in the shard state machine, against real LMDB
// environments: a table test (redemption once per settlement id, replays, zero tokens, no rate,
// proceeds rounding, a vendor with tokens in two shards merged into one record, tokens-sold below
// zero as the switch's float, a token currency other than the one tokens were bought in), then a
// fast-check property over random buys, grants, spends, transfers (on one shard and across shards)
// and settlements on two shards: money is conserved per currency, tokens are conserved, each earned
// token is redeemed once, and every part's figures satisfy the settlement identity.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard, tempShardPath, removeShardPaths, accountId, V1, V2 } from './shard-test-support.ts';
import { ShardState, type Outcome } from './shard-state.ts';
import { Op, Format, tokenProceedsOf, type Command, type SettlementFigures, type SettlementPart, type TokenRate } from './contract.ts';
import { mergeParts } from '../switch/settlement-tasks.ts';

const T0 = Date.parse('2026-04-01T00:00:00Z');
let tag = 1;

const cmd = {
  open: (acc: string, cur = 'USD'): Command => [Op.openAccount, 0, tag++, Format.http, null, acc, cur],
  fund: (acc: string, amount: number, cur = 'USD'): Command => [Op.fund, 0, tag++, Format.http, null, acc, amount, cur, `f${tag}`],
  buy: (acc: string, count: number, price = 5, cur = 'USD'): Command => [Op.tokenBuy, 0, tag++, Format.http, null, acc, count, cur, price, `b${tag}`],
  grant: (acc: string, count: number, vendor: string | null = null): Command => [Op.tokenGrant, 0, tag++, Format.http, null, acc, count, null, vendor, `g${tag}`],
  spend: (acc: string, vendor: string, count: number): Command => [Op.tokenSpend, 0, tag++, Format.http, null, acc, vendor, count, `s${tag}`, null],
  send: (from: string, to: string, toShard: number, count: number): Command => [Op.tokenTransfer, 0, tag++, Format.http, null, from, to, toShard, count, `t${tag}`, null],
  pay: (acc: string, amount: number, vid = V1): Command => [Op.payVendor, 0, tag++, Format.http, null, acc, vid, amount, 'USD', `p${tag}`, null],
  settle: (sid: string, rate: TokenRate | null, vid = V1, fees: Record<string, [number, number]> | null = null): Command =>
    [Op.settleVendor, 0, tag++, Format.http, null, vid, sid, 'operator', fees, rate],
  vendor: (vid = V1): Command => [Op.vendorTokens, 0, tag++, Format.http, null, vid],
  payables: (): Command => [Op.vendorPayables, 0, tag++, Format.http, null],
  vhist: (vid = V1): Command => [Op.vendorHistory, 0, tag++, Format.http, null, vid, null, 100, { fromMs: null, toMs: null, kinds: null, currency: null }],
};

type Body = Record<string, any>;
const body = (o: Outcome): Body => (o as unknown as { body: Body }).body;
const one = (s: ShardState, c: Command): Body => body(s.applyBatch([c], T0).outcomes[0]);
const part = (s: ShardState, c: Command): SettlementPart => one(s, c).part as SettlementPart;

/** The settlement identity, to the unit. */
function identity(f: SettlementFigures): void {
  expect(f.opening + f.captured + f.payments + (f.tokenProceeds ?? 0) - f.refunded - f.disputeCredits + f.disputeReversals - f.fees - f.taxWithheld)
    .toBe(f.payout + f.carried);
}

function clean(s: ShardState, shardId = 0) {
  const a = s.audit(shardId);
  expect(a.problems).toEqual([]);
  expect(a.conserved).toBe(true);
  return a;
}

const U1 = accountId(40, 1);
const U2 = accountId(40, 2);
const W1 = accountId(41, 3);
const usd10pc: TokenRate = ['USD', 5, 1_000]; // 5 cents a token, 10 % commission: 4.5 cents to the vendor

describe('token settlement table', () => {
  it('redeems every earned token once per settlement id, rounds the proceeds down, and pays them out', () => {
    const s = openShard({ name: 'toksettle-' });
    try {
      s.applyBatch([cmd.open(U1), cmd.fund(U1, 10_000), cmd.open(U2), cmd.fund(U2, 1_000)], T0);
      one(s, cmd.buy(U1, 100)); // tokens-sold USD 500
      expect(one(s, cmd.spend(U1, V1, 30))).toMatchObject({ status: 'spent' });
      one(s, cmd.pay(U2, 200)); // money the vendor was paid directly, settled beside the tokens
      // [step, settlement, expected figures in USD (null: nothing), vendor tokens left, tokens-sold after]
      const rows: Array<[string, Command, Partial<SettlementFigures> | null, number, number]> = [
        ['no rate: the tokens wait', cmd.settle('st_a', null), { payments: 200, tokensRedeemed: 0, tokenProceeds: 0, payout: 200 }, 30, 500],
        ['30 tokens at 4.5: 135', cmd.settle('st_b', usd10pc), { payments: 0, tokensRedeemed: 30, tokenProceeds: 135, payout: 135, carried: 0 }, 0, 365],
        ['the same id again: nothing more', cmd.settle('st_b', usd10pc), { tokensRedeemed: 30, tokenProceeds: 135, payout: 135 }, 0, 365],
        ['no tokens left: nothing', cmd.settle('st_c', usd10pc), null, 0, 365],
      ];
      for (const [step, c, figures, left, sold] of rows) {
        const p = part(s, c);
        if (figures === null) expect(p.currencies, step).toEqual({});
        else {
          expect(p.currencies.USD, step).toMatchObject(figures);
          identity(p.currencies.USD);
        }
        expect(one(s, cmd.vendor()).tokens, step).toBe(left);
        expect(clean(s).tokensSold, step).toEqual({ USD: sold });
      }
      // Rounding: 7 tokens × 4.5 = 31.5 → 31; the half cent stays in tokens-sold (the switch's).
      one(s, cmd.spend(U1, V1, 7));
      const p = part(s, cmd.settle('st_d', usd10pc));
      expect(p.currencies.USD).toMatchObject({ tokensRedeemed: 7, tokenProceeds: 31, payout: 31 });
      expect(tokenProceedsOf(7, usd10pc)).toBe(31);
      const a = clean(s);
      expect(a.tokensSold).toEqual({ USD: 500 - 135 - 31 });
      expect(a.tokens).toMatchObject({ bought: 100, held: 63, vendor: 0, redeemed: 37 });
      // The vendor's history shows the proceeds coming in and the payouts going out.
      const kinds = (one(s, cmd.vhist()).entries as Body[]).map((e) => [e.kind, e.amount]);
      expect(kinds).toContainEqual(['token-proceeds', 135]);
      expect(kinds).toContainEqual(['token-proceeds', 31]);
      expect(kinds).toContainEqual(['payout', -31]);
    } finally {
      s.close();
      removeShardPaths();
    }
  });

  it('fees are not charged on token proceeds; a spend in the same batch as the settlement is counted once', () => {
    const s = openShard({ name: 'toksettle-' });
    try {
      s.applyBatch([cmd.open(U1), cmd.fund(U1, 10_000)], T0);
      one(s, cmd.buy(U1, 100, 10));
      one(s, cmd.pay(U1, 1_000));
      const r = s.applyBatch([cmd.spend(U1, V1, 20), cmd.settle('st_1', ['USD', 10, 0], V1, { USD: [1_000, 0] }), cmd.spend(U1, V1, 5)], T0);
      const p = body(r.outcomes[1]).part as SettlementPart;
      // 10 % of the 1,000 paid; the 200 of token proceeds come in whole.
      expect(p.currencies.USD).toMatchObject({ payments: 1_000, fees: 100, tokensRedeemed: 20, tokenProceeds: 200, payout: 1_100, carried: 0 });
      identity(p.currencies.USD);
      expect(one(s, cmd.vendor()).tokens).toBe(5);
      const q = part(s, cmd.settle('st_2', ['USD', 10, 0]));
      expect(q.currencies.USD).toMatchObject({ opening: 0, payments: 0, tokensRedeemed: 5, tokenProceeds: 50, payout: 50 });
      clean(s);
    } finally {
      s.close();
      removeShardPaths();
    }
  });

  it('incentive tokens we granted, or a token currency nobody bought in, take tokens-sold below zero: the float, audited', () => {
    const s = openShard({ name: 'toksettle-' });
    try {
      s.applyBatch([cmd.open(U1), cmd.fund(U1, 1_000)], T0);
      one(s, cmd.grant(U1, 40)); // ours: nothing was sold for them
      one(s, cmd.spend(U1, V1, 40));
      expect(part(s, cmd.settle('st_1', ['USD', 3, 0])).currencies.USD).toMatchObject({ tokensRedeemed: 40, tokenProceeds: 120, payout: 120 });
      expect(clean(s).tokensSold).toEqual({ USD: -120 });
      // V2 is paid in EUR; its tokens were bought in USD here.
      one(s, cmd.buy(U1, 10, 5));
      one(s, cmd.spend(U1, V2, 10));
      const p = part(s, cmd.settle('st_2', ['EUR', 4, 2_500], V2));
      expect(Object.keys(p.currencies)).toEqual(['EUR']);
      expect(p.currencies.EUR).toMatchObject({ tokensRedeemed: 10, tokenProceeds: 30, payout: 30 });
      const a = clean(s);
      expect(a.tokensSold).toEqual({ USD: -70, EUR: -30 });
      expect(a.currencies.EUR).toMatchObject({ paidOut: 30 });
    } finally {
      s.close();
      removeShardPaths();
    }
  });

  it('a vendor with tokens in two shards: each part redeems its own under the same id, merged into one record', () => {
    const a = openShard({ path: tempShardPath('toksettle-a-'), shardId: 0 });
    const b = openShard({ path: tempShardPath('toksettle-b-'), shardId: 1 });
    try {
      a.applyBatch([cmd.open(U1), cmd.fund(U1, 1_000)], T0);
      b.applyBatch([cmd.open(W1), cmd.fund(W1, 1_000)], T0);
      one(a, cmd.buy(U1, 11));
      one(b, cmd.buy(W1, 13));
      one(a, cmd.spend(U1, V1, 11));
      one(b, cmd.spend(W1, V1, 13));
      // Two payables of the scheduler's view: the tokens are listed per shard.
      expect(one(a, cmd.payables()).tokens).toEqual({ [V1]: 11 });
      const parts = [part(a, cmd.settle('st_x', usd10pc)), part(b, cmd.settle('st_x', usd10pc))];
      // floor(11 × 4.5) = 49, floor(13 × 4.5) = 58: rounded per part (one floor over 24 would give 108).
      expect(parts.map((p) => p.currencies.USD.tokenProceeds)).toEqual([49, 58]);
      const rec = mergeParts(parts)!;
      expect(rec.currencies.USD).toMatchObject({ tokensRedeemed: 24, tokenProceeds: 107, payout: 107, carried: 0 });
      identity(rec.currencies.USD);
      // A replay on either shard changes nothing.
      expect(part(b, cmd.settle('st_x', usd10pc))).toEqual(parts[1]);
      for (const [i, sh] of [a, b].entries()) expect(clean(sh, i).tokens).toMatchObject({ vendor: 0 });
    } finally {
      a.close();
      b.close();
      removeShardPaths();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The property: two shards, four users (two on each), two vendors; random buys, grants (ours and a
// vendor's), spends, transfers (delivered at once) and settlements under one id on both shards.

const A = [accountId(40, 1), accountId(40, 2), accountId(41, 3), accountId(41, 4)];
const shardOf = (i: number) => (i < 2 ? 0 : 1);
const rates: TokenRate[] = [['USD', 5, 0], ['USD', 7, 333], ['EUR', 3, 10_000], ['EUR', 9, 1]];

const stepArb = fc.oneof(
  fc.record({ k: fc.constant('buy' as const), u: fc.nat(3), n: fc.integer({ min: 1, max: 60 }), eur: fc.boolean() }),
  fc.record({ k: fc.constant('grant' as const), u: fc.nat(3), n: fc.integer({ min: 1, max: 20 }), v: fc.integer({ min: -1, max: 1 }) }),
  fc.record({ k: fc.constant('spend' as const), u: fc.nat(3), n: fc.integer({ min: 1, max: 40 }), v: fc.nat(1) }),
  fc.record({ k: fc.constant('send' as const), u: fc.nat(3), to: fc.nat(3), n: fc.integer({ min: 1, max: 30 }) }),
  fc.record({ k: fc.constant('settle' as const), v: fc.nat(1), rate: fc.integer({ min: -1, max: rates.length - 1 }), replay: fc.boolean() }),
);

describe('token settlement: property', () => {
  it('money is conserved per currency, tokens are conserved, each earned token is redeemed once, every part satisfies the identity', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 40 }), (steps) => {
        const paths = [tempShardPath('toksettle-pa-'), tempShardPath('toksettle-pb-')];
        const shards = paths.map((path, i) => openShard({ path, shardId: i }));
        const apply = (at: number, c: Command): Body => {
          const r = shards[at].applyBatch([c], T0);
          for (const e of r.events) {
            if (e.k !== 'outbox') continue;
            for (const item of e.items) {
              const d = shards[e.dest].applyBatch([[Op.deliver, 0, 0, Format.http, null, item]], T0);
              for (const x of d.events) if (x.k === 'delivered') shards[x.src].applyBatch([[Op.ackOutbox, 0, 0, Format.http, null, e.dest, x.seqs]], T0);
            }
          }
          return body(r.outcomes[0]);
        };
        try {
          for (let i = 0; i < 4; i++) {
            apply(shardOf(i), cmd.open(A[i], i % 2 === 0 ? 'USD' : 'EUR'));
            apply(shardOf(i), cmd.fund(A[i], 5_000, i % 2 === 0 ? 'USD' : 'EUR'));
          }
          const vendors = [V1, V2];
          const earned = [new Map<string, number>(), new Map<string, number>()]; // model: per shard, vendor -> tokens
          const redeemed = new Map<string, number>(); // vendor -> tokens redeemed, over every settlement
          const proceeds = new Map<string, number>(); // currency -> money paid out of tokens-sold
          const seen = new Map<string, SettlementPart[]>();
          let n = 0;
          for (const st of steps) {
            if (st.k === 'buy') {
              // Each user buys in its own account's currency (EUR users at 4 a token).
              const cur = st.u % 2 === 0 ? 'USD' : 'EUR';
              apply(shardOf(st.u), cmd.buy(A[st.u], st.n, cur === 'USD' ? 5 : 4, cur));
            } else if (st.k === 'grant') {
              const v = st.v < 0 ? null : vendors[st.v];
              const out = apply(shardOf(st.u), cmd.grant(A[st.u], st.n, v));
              if (v !== null && out.status === 'granted') earned[shardOf(st.u)].set(v, earned[shardOf(st.u)].get(v)! - st.n);
            } else if (st.k === 'spend') {
              const v = vendors[st.v];
              const out = apply(shardOf(st.u), cmd.spend(A[st.u], v, st.n));
              if (out.status === 'spent') earned[shardOf(st.u)].set(v, (earned[shardOf(st.u)].get(v) ?? 0) + st.n);
            } else if (st.k === 'send') {
              if (st.to !== st.u) apply(shardOf(st.u), cmd.send(A[st.u], A[st.to], shardOf(st.to), st.n));
            } else {
              const v = vendors[st.v];
              const rate = st.rate < 0 ? null : rates[st.rate];
              const ids = [...seen.keys()].filter((k) => k.startsWith(v + '|'));
              const sid = st.replay && ids.length > 0 ? ids[0].slice(v.length + 1) : `st_${(n++).toString().padStart(4, '0')}`;
              const first = seen.get(v + '|' + sid);
              const parts = [0, 1].map((sh) => apply(sh, cmd.settle(sid, rate, v)).part as SettlementPart);
              seen.set(v + '|' + sid, parts);
              for (const [sh, p] of parts.entries()) {
                // A replay answers the stored part and moves nothing (a part with nothing in it is not
                // stored: the replay is a settlement of its own in that shard).
                if (first && Object.keys(first[sh].currencies).length > 0) {
                  expect(p).toEqual(first[sh]);
                  continue;
                }
                const tokens = rate === null ? 0 : earned[sh].get(v) ?? 0;
                let got = 0;
                for (const [c, f] of Object.entries(p.currencies)) {
                  identity(f);
                  got += f.tokensRedeemed ?? 0;
                  if (rate !== null && c === rate[0]) expect(f.tokenProceeds).toBe(tokenProceedsOf(tokens, rate));
                  else expect(f.tokenProceeds ?? 0).toBe(0);
                  proceeds.set(c, (proceeds.get(c) ?? 0) + (f.tokenProceeds ?? 0));
                }
                expect(got).toBe(tokens);
                if (rate !== null) earned[sh].set(v, 0);
                redeemed.set(v, (redeemed.get(v) ?? 0) + got);
              }
              if (parts.every((p) => Object.keys(p.currencies).length === 0)) continue;
              const rec = mergeParts(parts)!;
              for (const f of Object.values(rec.currencies)) identity(f);
            }
          }
          // Each shard: money and tokens conserved (the audit's identities); the vendors' tokens are
          // what the model says; across shards every token issued is held, at a vendor, expired or redeemed.
          let issued = 0;
          let placed = 0;
          let inFlight = 0;
          const sold: Record<string, number> = {};
          for (const [i, sh] of shards.entries()) {
            const a = clean(sh, i);
            const t = a.tokens!;
            issued += t.bought + t.granted + (t.rewarded ?? 0);
            placed += t.held + t.incentive + t.vendor + t.expired + (t.redeemed ?? 0);
            inFlight += (t.sentOut ?? 0) - (t.receivedIn ?? 0);
            for (const [c, m] of Object.entries(a.tokensSold ?? {})) sold[c] = (sold[c] ?? 0) + m;
            for (const v of vendors) expect(apply(i, cmd.vendor(v)).tokens).toBe(earned[i].get(v) ?? 0);
          }
          expect(inFlight).toBe(0); // every transfer was delivered at once
          expect(issued).toBe(placed);
          const redeemedAll = shards.reduce((k, sh, i) => k + (sh.audit(i).tokens!.redeemed ?? 0), 0);
          expect(redeemedAll).toBe([...redeemed.values()].reduce((k, x) => k + x, 0));
          // Money: what users paid for tokens less what settlement paid vendors for them, per currency.
          for (const c of ['USD', 'EUR']) {
            const sum = (k: 'funding' | 'available' | 'paidOut') => shards.reduce((x, sh, i) => x + (sh.audit(i).currencies[c]?.[k] ?? 0), 0);
            expect((sold[c] ?? 0) + (proceeds.get(c) ?? 0), c).toBe(sum('funding') - sum('available'));
            // Nothing else pays vendors here: every unit paid out is token proceeds.
            expect(sum('paidOut'), c).toBe(proceeds.get(c) ?? 0);
          }
        } finally {
          for (const sh of shards) sh.close();
          removeShardPaths();
        }
      }),
      { numRuns: 80 },
    );
  });
});
