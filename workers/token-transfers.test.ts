// Tokens between users, referral rewards and content priced in tokens, in the shard state machine
// against real LMDB environments (two shards where it matters): table tests per flow, then a
// fast-check property over random mixes of buys, grants, spends, transfers on one shard and across
// shards over a channel that loses, repeats and reorders outbox items, shard restarts, referrals and
// token-priced content with royalties. Every transfer is applied once, tokens and money are each
// conserved per shard and across shards (with what is in flight), no token balance goes negative,
// and every balance is what a simple model says it is.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard, tempShardPath, removeShardPaths, accountId, V1, V2 } from './shard-test-support.ts';
import { ShardState, type Outcome } from './shard-state.ts';
import { Op, Format, tokenUnit, royaltyOf, type Command, type ContentSale, type ShardEvent } from './contract.ts';

const T0 = Date.parse('2026-03-01T00:00:00Z');
const hour = 3_600_000;
let tag = 1;

const cmd = {
  open: (acc: string, referredBy: string | null = null): Command => [Op.openAccount, 0, tag++, Format.http, null, acc, 'USD', referredBy],
  fund: (acc: string, amount: number): Command => [Op.fund, 0, tag++, Format.http, null, acc, amount, 'USD', `f${tag}`],
  buy: (acc: string, count: number, reward = 0, idem = `b${tag}`, price = 2): Command =>
    [Op.tokenBuy, 0, tag++, Format.http, null, acc, count, 'USD', price, idem, reward],
  grant: (acc: string, count: number, vendor: string | null = null, exp: number | null = null): Command =>
    [Op.tokenGrant, 0, tag++, Format.http, null, acc, count, exp, vendor, `g${tag}`],
  spend: (acc: string, vendor: string, count: number): Command => [Op.tokenSpend, 0, tag++, Format.http, null, acc, vendor, count, `s${tag}`, null],
  send: (from: string, to: string, toShard: number, count: number, idem = `t${tag}`, memo: string | null = null): Command =>
    [Op.tokenTransfer, 0, tag++, Format.http, null, from, to, toShard, count, idem, memo],
  balance: (acc: string): Command => [Op.tokenBalance, 0, tag++, Format.http, null, acc],
  vendor: (vendorId: string): Command => [Op.vendorTokens, 0, tag++, Format.http, null, vendorId],
  buyContent: (acc: string, sale: ContentSale, idem = `c${tag}`): Command => [Op.contentBuy, 0, tag++, Format.http, null, acc, sale, idem],
  purchases: (acc: string): Command => [Op.purchases, 0, tag++, Format.http, null, acc, 50],
  pause: (acc: string, paused: boolean): Command => [Op.accountSettings, 0, tag++, Format.http, null, acc, { paused }],
  account: (acc: string): Command => [Op.getAccount, 0, tag++, Format.http, null, acc],
};

type Body = Record<string, any>;
const body = (o: Outcome): Body => (o as unknown as { body: Body }).body;

/** A token-priced content item (currency tokenUnit, price a count of tokens). */
function tokenItem(price: number, holder: string | null = null, holderShard: number | null = null, bp = 0, expiresAtMs: number | null = null): ContentSale {
  return {
    itemId: 'ci_0001' + 'ab'.repeat(8), vendorId: V1, title: 'a song', url: 'https://example.com/song', price, currency: tokenUnit,
    viewLimit: 3, accessMs: null, expiresAtMs, rightsHolder: holder, rightsShard: holderShard, royaltyBp: bp,
  };
}

/**
 * Two shards and a channel between them. `apply` runs one batch on a shard and carries its events:
 * outbox items to their receiver (as the channel says: deliver, drop, twice, or late), the receiver's
 * acknowledgement back to the sender (unless lost); `drain` delivers the late items (newest first),
 * then makes every sender resend what is unacknowledged until nothing is left.
 */
class TwoShards {
  readonly paths = [tempShardPath('ttx-a-'), tempShardPath('ttx-b-')];
  readonly shards: ShardState[] = [this.open(0), this.open(1)];
  readonly late: Array<[number, Command]> = [];
  readonly events: ShardEvent[] = [];
  now = T0;

  private open(i: number): ShardState {
    return openShard({ path: this.paths[i], shardId: i });
  }

  restart(i: number): void {
    this.shards[i].close();
    this.shards[i] = this.open(i);
  }

  apply(at: number, cmds: Command[], channel: 'deliver' | 'drop' | 'twice' | 'late' = 'deliver', ackLost = false): Body[] {
    const r = this.shards[at].applyBatch(cmds, this.now);
    for (const e of r.events) {
      if (e.k === 'outbox') {
        for (const item of e.items) {
          const c: Command = [Op.deliver, 0, 0, Format.http, null, item];
          if (channel === 'drop') continue;
          if (channel === 'late') this.late.push([e.dest, c]);
          else for (let k = channel === 'twice' ? 2 : 1; k > 0; k--) this.apply(e.dest, [c], 'deliver', ackLost);
        }
      } else if (e.k === 'delivered') {
        if (!ackLost) this.apply(e.src, [[Op.ackOutbox, 0, 0, Format.http, null, at, e.seqs]]);
      } else this.events.push(e);
    }
    return r.outcomes.map(body);
  }

  one(at: number, c: Command, channel: 'deliver' | 'drop' | 'twice' | 'late' = 'deliver', ackLost = false): Body {
    return this.apply(at, [c], channel, ackLost)[0];
  }

  drain(): void {
    for (const [dest, c] of this.late.splice(0).reverse()) this.apply(dest, [c]);
    for (let round = 0; round < 4; round++) {
      for (const i of [0, 1]) {
        for (const [dest, items] of this.shards[i].outboxItems(10_000)) {
          for (const item of items) this.apply(dest, [[Op.deliver, 0, 0, Format.http, null, item]]);
        }
      }
    }
  }

  /** Each shard's audit must be clean; across shards, tokens issued = where they are + in flight. */
  audit(): { inFlight: number; pending: number; issued: number; placed: number } {
    let inFlight = 0;
    let pending = 0;
    let issued = 0;
    let placed = 0;
    for (const [i, sh] of this.shards.entries()) {
      const a = sh.audit(i);
      expect(a.problems).toEqual([]);
      expect(a.conserved).toBe(true);
      expect(a.currencies[tokenUnit]).toBeUndefined();
      const t = a.tokens!;
      inFlight += t.sentOut! - t.receivedIn!;
      pending += t.outboxPending!;
      issued += t.bought + t.granted + t.rewarded!;
      placed += t.held + t.incentive + t.vendor + t.expired;
    }
    expect(issued).toBe(placed + inFlight);
    return { inFlight, pending, issued, placed };
  }

  close(): void {
    for (const sh of this.shards) sh.close();
  }
}

// Accounts 0 and 1 live on shard 0 (partition 40), 2 and 3 on shard 1 (partition 41).
const A = [accountId(40, 1), accountId(40, 2), accountId(41, 3), accountId(41, 4)];
const shardOf = (i: number) => (i < 2 ? 0 : 1);

describe('token transfers', () => {
  it('move bought tokens once, on one shard and across shards; incentive tokens stay; the receiver learns only the count', () => {
    const w = new TwoShards();
    for (let i = 0; i < 4; i++) w.apply(shardOf(i), [cmd.open(A[i]), cmd.fund(A[i], 1_000)]);
    w.one(0, cmd.buy(A[0], 100));
    w.one(0, cmd.grant(A[0], 30));
    w.shards[1].setPresence(A[2], ['127.0.0.1']);
    // [step, shard, command, channel, expected answer, then A0's bought and incentive tokens after it]
    const rows: Array<[string, number, Command, 'deliver' | 'drop' | 'late', Body, number, number]> = [
      ['same shard', 0, cmd.send(A[0], A[1], 0, 10, 'k1'), 'deliver', { status: 'sent', count: 10, tokens: { bought: 90, incentive: 30 } }, 90, 30],
      ['replay', 0, cmd.send(A[0], A[1], 0, 10, 'k1'), 'deliver', { status: 'sent', count: 10 }, 90, 30],
      ['same key, other count', 0, cmd.send(A[0], A[1], 0, 11, 'k1'), 'deliver', { status: 'error', code: 'IDEMPOTENCY_CONFLICT' }, 90, 30],
      ['across shards, with a memo', 0, cmd.send(A[0], A[2], 1, 25, 'k2', 'thanks'), 'deliver', { status: 'sent', count: 25 }, 65, 30],
      ['across shards, item lost (resent later)', 0, cmd.send(A[0], A[3], 1, 5, 'k3'), 'drop', { status: 'sent', count: 5 }, 60, 30],
      ['incentive would cover it: not transferable', 0, cmd.send(A[0], A[2], 1, 61, 'k4'), 'deliver', { status: 'declined', code: 'TOKENS_NOT_TRANSFERABLE' }, 60, 30],
      ['beyond every token', 0, cmd.send(A[0], A[2], 1, 91, 'k5'), 'deliver', { status: 'declined', code: 'TOKENS_INSUFFICIENT' }, 60, 30],
      ['all bought ones', 0, cmd.send(A[0], A[2], 1, 60, 'k6'), 'late', { status: 'sent', count: 60 }, 0, 30],
    ];
    for (const [step, at, c, channel, expected, bought, incentive] of rows) {
      expect(w.one(at, c, channel), step).toMatchObject(expected);
      expect(w.one(0, cmd.balance(A[0])), step).toMatchObject({ bought, incentive });
    }
    // In flight: the lost item and the late one, both still in the sender's outbox.
    expect(w.audit()).toMatchObject({ inFlight: 65, pending: 65 });
    w.drain();
    expect(w.audit()).toMatchObject({ inFlight: 0, pending: 0 });
    expect(w.one(0, cmd.balance(A[1]))).toMatchObject({ bought: 10, incentive: 0 });
    expect(w.one(1, cmd.balance(A[2]))).toMatchObject({ bought: 85, incentive: 0 });
    expect(w.one(1, cmd.balance(A[3]))).toMatchObject({ bought: 5 });
    // The receiver's session hears the count and the memo, nothing of the sender.
    const told = w.events.filter((e) => e.k === 'tokens-received');
    expect(told.map((e) => (e as { count: number }).count).sort((p, q) => p - q)).toEqual([25, 60]);
    expect(JSON.stringify(told)).not.toContain(A[0]);
    expect(told[0]).toMatchObject({ accountId: A[2], memo: 'thanks' });
    // Transferred tokens arrive bought: the receiver may pass them on again.
    expect(w.one(1, cmd.send(A[2], A[0], 0, 85, 'back'))).toMatchObject({ status: 'sent' });
    expect(w.one(0, cmd.balance(A[0]))).toMatchObject({ bought: 85, incentive: 30 });
    w.audit();
    w.close();
  });

  it('refuses an unknown or paused sender, and a delivery repeated after a restart changes nothing', () => {
    const w = new TwoShards();
    expect(w.one(0, cmd.send(A[0], A[2], 1, 1))).toMatchObject({ code: 'ACCOUNT_UNKNOWN' });
    w.apply(0, [cmd.open(A[0]), cmd.fund(A[0], 100), cmd.buy(A[0], 10)]);
    w.apply(1, [cmd.open(A[2])]);
    w.one(0, cmd.pause(A[0], true));
    expect(w.one(0, cmd.send(A[0], A[2], 1, 1))).toMatchObject({ status: 'declined', code: 'ACCOUNT_PAUSED' });
    w.one(0, cmd.pause(A[0], false));
    // Delivered, acknowledgement lost; the receiver restarts; the sender resends: applied once.
    expect(w.one(0, cmd.send(A[0], A[2], 1, 4), 'deliver', true)).toMatchObject({ status: 'sent' });
    w.restart(1);
    w.restart(0);
    w.drain();
    expect(w.one(1, cmd.balance(A[2]))).toMatchObject({ bought: 4 });
    expect(w.audit()).toMatchObject({ inFlight: 0, pending: 0 });
    w.close();
  });
});

describe('referral rewards', () => {
  it('reward the referring vendor once, at the first token purchase, in the user\'s shard', () => {
    const s = openShard({ name: 'referral-' });
    const [u, v, x] = [accountId(7, 1), accountId(7, 2), accountId(7, 3)];
    s.applyBatch([cmd.open(u, V1), cmd.fund(u, 1_000), cmd.open(v, V1), cmd.fund(v, 1_000), cmd.open(x), cmd.fund(x, 1_000)], T0);
    const one = (c: Command) => body(s.applyBatch([c], T0).outcomes[0]);
    // [step, command, expected answer, then V1's tokens here, users it brought, tokens from rewards]
    const rows: Array<[string, Command, Body, number, number, number]> = [
      ['declined purchase: no reward', cmd.buy(u, 1_000, 10), { status: 'declined', code: 'INSUFFICIENT_FUNDS' }, 0, 0, 0],
      ['first purchase rewards 10', cmd.buy(u, 5, 10, 'u1'), { status: 'bought', count: 5 }, 10, 1, 10],
      ['its retry rewards nothing more', cmd.buy(u, 5, 10, 'u1'), { status: 'bought', count: 5 }, 10, 1, 10],
      ['a later purchase rewards nothing', cmd.buy(u, 5, 10, 'u2'), { status: 'bought' }, 10, 1, 10],
      ['nobody brought this user', cmd.buy(x, 5, 10), { status: 'bought' }, 10, 1, 10],
      ['reward 0 at the first purchase', cmd.buy(v, 5, 0, 'v1'), { status: 'bought' }, 10, 1, 10],
      ['...and the user\'s first purchase is past', cmd.buy(v, 5, 10, 'v2'), { status: 'bought' }, 10, 1, 10],
    ];
    for (const [step, c, expected, tokens, referrals, referralTokens] of rows) {
      expect(one(c), step).toMatchObject(expected);
      expect(one(cmd.vendor(V1)), step).toEqual({ tokens, referrals, referralTokens });
    }
    // The reward is the vendor's to grant on like any earned token.
    expect(one(cmd.grant(x, 10, V1))).toMatchObject({ status: 'granted', by: V1 });
    expect(one(cmd.vendor(V1))).toEqual({ tokens: 0, referrals: 1, referralTokens: 10 });
    expect(one(cmd.vendor(V2))).toEqual({ tokens: 0, referrals: 0, referralTokens: 0 });
    const a = s.audit(0);
    expect(a.problems).toEqual([]);
    expect(a.tokens).toMatchObject({ rewarded: 10, bought: 10 + 5 + 10, incentive: 10, vendor: 0 });
    // A retried opening cannot add or swap a referral.
    s.applyBatch([cmd.open(x, V2)], T0);
    expect(one(cmd.vendor(V2))).toEqual({ tokens: 0, referrals: 0, referralTokens: 0 });
    s.close();
  });
});

describe('content priced in tokens', () => {
  it('spends incentive first, pays the royalty in tokens to a holder on another shard, and lists the purchase', () => {
    const w = new TwoShards();
    w.apply(0, [cmd.open(A[0]), cmd.fund(A[0], 1_000), cmd.buy(A[0], 100), cmd.grant(A[0], 7)]);
    w.apply(1, [cmd.open(A[2])]);
    const sale = tokenItem(33, A[2], 1, 2_500); // royalty floor(33 × 0.25) = 8, the vendor keeps 25
    expect(royaltyOf(33, 2_500)).toBe(8);
    const bought = w.one(0, cmd.buyContent(A[0], sale, 'c1'), 'late');
    expect(bought).toMatchObject({ status: 'bought', amount: 33, currency: tokenUnit, fromIncentive: 7, fromBought: 26, tokens: { bought: 74, incentive: 0 } });
    expect(w.one(0, cmd.buyContent(A[0], sale, 'c1'))).toEqual(bought);
    expect(w.one(0, cmd.vendor(V1))).toMatchObject({ tokens: 25 });
    expect(w.audit()).toMatchObject({ inFlight: 8, pending: 8 });
    w.drain();
    expect(w.one(1, cmd.balance(A[2]))).toMatchObject({ bought: 8 });
    expect(w.audit()).toMatchObject({ inFlight: 0 });
    // The purchases list shows it like any other, priced in tokens; the money balance is untouched.
    expect(w.one(0, cmd.purchases(A[0])).purchases[0]).toMatchObject({ purchaseId: bought.purchaseId, amount: 33, currency: tokenUnit, viewLimit: 3, state: 'active' });
    expect(w.one(0, cmd.account(A[0]))).toMatchObject({ balance: 800 });
    // Declines: not enough tokens, expired, paused; no rights holder: the vendor keeps everything.
    expect(w.one(0, cmd.buyContent(A[0], tokenItem(75)))).toMatchObject({ status: 'declined', code: 'TOKENS_INSUFFICIENT' });
    expect(w.one(0, cmd.buyContent(A[0], tokenItem(1, null, null, 0, T0)))).toMatchObject({ status: 'declined', code: 'CONTENT_EXPIRED' });
    w.one(0, cmd.pause(A[0], true));
    expect(w.one(0, cmd.buyContent(A[0], tokenItem(1)))).toMatchObject({ status: 'declined', code: 'ACCOUNT_PAUSED' });
    w.one(0, cmd.pause(A[0], false));
    expect(w.one(0, cmd.buyContent(A[0], tokenItem(74)))).toMatchObject({ status: 'bought', fromBought: 74 });
    expect(w.one(0, cmd.vendor(V1))).toMatchObject({ tokens: 25 + 74 });
    expect(w.one(0, cmd.balance(A[0]))).toMatchObject({ bought: 0, incentive: 0, total: 0 });
    w.audit();
    w.close();
  });
});

// ---------------------------------------------------------------------------------------------
// The property: a model of every account's money, bought and incentive tokens, and every vendor's
// earned tokens per shard, against two real shards and a hostile channel.

type Channel = 'deliver' | 'drop' | 'twice' | 'late';
const channel = fc.constantFrom<Channel>('deliver', 'drop', 'twice', 'late');
const stepArb = fc.oneof(
  fc.record({ k: fc.constant('buy' as const), u: fc.nat(3), n: fc.integer({ min: 1, max: 60 }), reward: fc.integer({ min: 0, max: 9 }) }),
  fc.record({ k: fc.constant('grant' as const), u: fc.nat(3), n: fc.integer({ min: 1, max: 20 }), v: fc.integer({ min: -1, max: 1 }) }),
  fc.record({ k: fc.constant('spend' as const), u: fc.nat(3), n: fc.integer({ min: 1, max: 40 }), v: fc.nat(1) }),
  fc.record({ k: fc.constant('send' as const), u: fc.nat(3), to: fc.nat(3), n: fc.integer({ min: 1, max: 50 }), ch: channel, ackLost: fc.boolean() }),
  fc.record({ k: fc.constant('content' as const), u: fc.nat(3), holder: fc.integer({ min: -1, max: 3 }), price: fc.integer({ min: 1, max: 40 }),
    bp: fc.integer({ min: 0, max: 10_000 }), ch: channel }),
  fc.record({ k: fc.constant('replay' as const) }),
  fc.record({ k: fc.constant('restart' as const), s: fc.nat(1) }),
);

describe('tokens between shards: property', () => {
  it('every transfer and royalty is applied once, nothing goes negative, and tokens and money are conserved', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 40 }), fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), (steps, referred) => {
        const w = new TwoShards();
        try {
          const vendors = [V1, V2];
          const money = [2_000, 2_000, 2_000, 2_000];
          const bought = [0, 0, 0, 0];
          const incentive = [0, 0, 0, 0];
          const firstBuy = [true, true, true, true];
          // Tokens on their way: an item the channel dropped or held back arrives with the drain.
          const arriving = [0, 0, 0, 0];
          const credit = (to: number, n: number, ch: Channel) => {
            if (ch === 'deliver' || ch === 'twice') bought[to] += n;
            else arriving[to] += n;
          };
          const earned = [new Map<string, number>(), new Map<string, number>()]; // per shard: vendor -> tokens
          const earn = (shard: number, v: string, n: number) => earned[shard].set(v, (earned[shard].get(v) ?? 0) + n);
          for (let i = 0; i < 4; i++) w.apply(shardOf(i), [cmd.open(A[i], referred[i] ? V2 : null), cmd.fund(A[i], 2_000)]);
          let last: [number, Command, Body] | null = null;
          for (const st of steps) {
            if (st.k === 'restart') {
              w.restart(st.s);
              continue;
            }
            if (st.k === 'replay') {
              // A retry of the last command answers exactly its first answer, and moves nothing.
              if (last) expect(w.one(last[0], last[1])).toEqual(last[2]);
              continue;
            }
            const u = st.u;
            const at = shardOf(u);
            const held = bought[u] + incentive[u];
            let c: Command;
            let expected: string;
            let ch: Channel = 'deliver';
            let ackLost = false;
            if (st.k === 'buy') {
              c = cmd.buy(A[u], st.n, st.reward);
              expected = st.n * 2 <= money[u] ? 'bought' : 'INSUFFICIENT_FUNDS';
              if (expected === 'bought') {
                money[u] -= st.n * 2;
                bought[u] += st.n;
                if (firstBuy[u] && referred[u]) earn(at, V2, st.reward);
                firstBuy[u] = false;
              }
            } else if (st.k === 'grant') {
              const v = st.v < 0 ? null : vendors[st.v];
              c = cmd.grant(A[u], st.n, v);
              expected = v === null || (earned[at].get(v) ?? 0) >= st.n ? 'granted' : 'VENDOR_TOKENS_INSUFFICIENT';
              if (expected === 'granted') {
                incentive[u] += st.n;
                if (v !== null) earn(at, v, -st.n);
              }
            } else if (st.k === 'spend') {
              c = cmd.spend(A[u], vendors[st.v], st.n);
              expected = held >= st.n ? 'spent' : 'TOKENS_INSUFFICIENT';
              if (expected === 'spent') {
                const fromIncentive = Math.min(incentive[u], st.n);
                incentive[u] -= fromIncentive;
                bought[u] -= st.n - fromIncentive;
                earn(at, vendors[st.v], st.n);
              }
            } else if (st.k === 'send') {
              if (st.to === u) continue;
              c = cmd.send(A[u], A[st.to], shardOf(st.to), st.n);
              [ch, ackLost] = [st.ch, st.ackLost];
              expected = bought[u] >= st.n ? 'sent' : held >= st.n ? 'TOKENS_NOT_TRANSFERABLE' : 'TOKENS_INSUFFICIENT';
              if (expected === 'sent') {
                bought[u] -= st.n;
                credit(st.to, st.n, ch);
              }
            } else {
              const holder = st.holder < 0 ? null : st.holder;
              const sale = tokenItem(st.price, holder === null ? null : A[holder], holder === null ? null : shardOf(holder), holder === null ? 0 : st.bp);
              c = cmd.buyContent(A[u], sale);
              ch = st.ch;
              expected = held >= st.price ? 'bought' : 'TOKENS_INSUFFICIENT';
              if (expected === 'bought') {
                const royalty = holder === null ? 0 : royaltyOf(st.price, st.bp);
                const fromIncentive = Math.min(incentive[u], st.price);
                incentive[u] -= fromIncentive;
                bought[u] -= st.price - fromIncentive;
                earn(at, V1, st.price - royalty);
                if (holder !== null && royalty > 0) credit(holder, royalty, ch);
              }
            }
            const out = w.one(at, c, ch, ackLost);
            expect(out.status === 'declined' ? out.code : out.status, JSON.stringify(out)).toBe(expected);
            last = [at, c, out];
            for (const n of [...bought, ...incentive]) expect(n).toBeGreaterThanOrEqual(0);
          }
          w.drain();
          expect(w.audit()).toMatchObject({ inFlight: 0, pending: 0 });
          for (let i = 0; i < 4; i++) bought[i] += arriving[i];
          for (let i = 0; i < 4; i++) {
            expect(w.one(shardOf(i), cmd.balance(A[i])), `account ${i}`).toMatchObject({ bought: bought[i], incentive: incentive[i] });
            expect(w.one(shardOf(i), cmd.account(A[i])).balance, `account ${i}`).toBe(money[i]);
          }
          for (const sh of [0, 1]) {
            for (const v of vendors) expect(w.one(sh, cmd.vendor(v)).tokens, `${v} on shard ${sh}`).toBe(earned[sh].get(v) ?? 0);
          }
          w.close();
        } finally {
          removeShardPaths();
        }
      }),
      { numRuns: 60 },
    );
  });
});

// Incentive lots that expire are swept before a transfer reads the balance: they never make a transfer
// say TOKENS_NOT_TRANSFERABLE when only expired tokens would have covered it.
describe('token transfers and expiry', () => {
  it('count only live incentive tokens when telling not-transferable from insufficient', () => {
    const s = openShard({ name: 'ttx-exp-' });
    const [u, v] = [accountId(7, 1), accountId(7, 2)];
    s.applyBatch([cmd.open(u), cmd.fund(u, 100), cmd.open(v), cmd.buy(u, 5), cmd.grant(u, 10, null, T0 + hour)], T0);
    expect(body(s.applyBatch([cmd.send(u, v, 0, 8)], T0).outcomes[0])).toMatchObject({ code: 'TOKENS_NOT_TRANSFERABLE' });
    expect(body(s.applyBatch([cmd.send(u, v, 0, 8)], T0 + hour).outcomes[0])).toMatchObject({ code: 'TOKENS_INSUFFICIENT' });
    expect(s.audit(0).problems).toEqual([]);
    s.close();
  });
});
