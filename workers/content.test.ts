// Content purchases and royalties in the shard state machine, against real LMDB environments: a table
// test of one sale's legs (buyer, vendor payable, royalty through the outbox to another shard), the
// royalty's rounding to the unit, declines, idempotency, views and the access window; and a fast-check
// property over random sales (random prices and basis points): Σ buyer debits = Σ vendor credits +
// Σ royalties, every royalty arrives once, and both shards' audits are conserved once the outbox drains.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard as openShardOf, tempShardPath, accountId, V1 } from './shard-test-support.ts';
import { ShardState, type Outcome } from './shard-state.ts';
import { Op, Format, royaltyOf, type Command, type ContentSale } from './contract.ts';

function openShard(id: number, path?: string): { state: ShardState; path: string } {
  const p = path ?? tempShardPath('content-');
  return { state: openShardOf({ path: p, shardId: id }), path: p };
}

const T0 = Date.parse('2026-01-01T00:00:00Z');
let tag = 1;

const sale = (o: Partial<ContentSale> = {}): ContentSale => ({
  itemId: 'ci_0007' + '0'.repeat(15) + '1', vendorId: V1, title: 'Song', url: 'https://cdn.example/song', price: 999, currency: 'USD',
  viewLimit: null, accessMs: null, expiresAtMs: null, rightsHolder: null, rightsShard: null, royaltyBp: 0, ...o,
});
const cmd = {
  open: (acc: string, cur = 'USD'): Command => [Op.openAccount, 0, tag++, Format.http, null, acc, cur],
  fund: (acc: string, amount: number): Command => [Op.fund, 0, tag++, Format.http, null, acc, amount, 'USD', `f${tag}`],
  buy: (acc: string, s: ContentSale, idem = `b${tag}`): Command => [Op.contentBuy, 0, tag++, Format.http, null, acc, s, idem],
  list: (acc: string): Command => [Op.purchases, 0, tag++, Format.http, null, acc, 50],
  openP: (acc: string, purchaseId: string, idem = `o${tag}`): Command => [Op.purchaseOpen, 0, tag++, Format.http, null, acc, purchaseId, idem],
  account: (acc: string): Command => [Op.getAccount, 0, tag++, Format.http, null, acc],
  history: (acc: string): Command => [Op.history, 0, tag++, Format.http, null, acc, null, 50, null],
  vhist: (v: string): Command => [Op.vendorHistory, 0, tag++, Format.http, null, v, null, 50, { fromMs: null, toMs: null, kinds: null, currency: null }],
};

type Body = Record<string, any>;
const body = (o: Outcome): Body => (o as unknown as { body: Body }).body;

/** Two shards and a channel that carries outbox items and acknowledgements at once. */
function twoShards() {
  const shards = [openShard(0).state, openShard(1).state];
  const apply = (at: number, cmds: Command[], now = T0): Outcome[] => {
    const r = shards[at].applyBatch(cmds, now);
    for (const e of r.events) {
      if (e.k === 'outbox') for (const item of e.items) apply(e.dest, [[Op.deliver, 0, 0, Format.http, null, item]], now);
      else if (e.k === 'delivered') apply(e.src, [[Op.ackOutbox, 0, 0, Format.http, null, at, e.seqs]], now);
    }
    return r.outcomes;
  };
  return { shards, apply };
}

describe('royalty arithmetic', () => {
  it('is floor(price × bp / 10000), exact beyond 2^53, and never more than the price', () => {
    const rows: Array<[price: number, bp: number, royalty: number]> = [
      [999, 0, 0], [999, 1, 0], [999, 1000, 99], [999, 3333, 332], [1, 9999, 0], [1, 10_000, 1], [10_000, 1, 1],
      [1_000_000_000_000, 9_999, 999_900_000_000], [999_999_999_999, 7_777, 777_699_999_999], [999_999_999_999, 10_000, 999_999_999_999],
    ];
    for (const [price, bp, royalty] of rows) {
      expect(royaltyOf(price, bp), `${price} × ${bp}`).toBe(royalty);
      expect(BigInt(royaltyOf(price, bp))).toBe(BigInt(price) * BigInt(bp) / 10_000n);
    }
  });
});

describe('a content sale, one row per step', () => {
  it('debits the buyer, credits the vendor price − royalty, sends the royalty once, records the purchase', () => {
    const { shards, apply } = twoShards();
    const buyer = accountId(10, 1); // shard 0
    const holder = accountId(11, 2); // shard 1
    apply(0, [cmd.open(buyer), cmd.fund(buyer, 5000)]);
    apply(1, [cmd.open(holder)]);
    const s = sale({ price: 999, royaltyBp: 3333, rightsHolder: holder, rightsShard: 1, viewLimit: 2, accessMs: 3_600_000 });
    const buy = cmd.buy(buyer, s, 'buy-1');
    const [out] = apply(0, [buy]);
    const b = body(out);
    expect(b).toMatchObject({ status: 'bought', itemId: s.itemId, amount: 999, currency: 'USD', balance: 4001, viewLimit: 2,
      accessUntil: new Date(T0 + 3_600_000).toISOString() });
    expect(b.purchaseId).toMatch(/^cp_0010[0-9a-z]+$/);
    // The royalty: floor(999 × 3333 / 10000) = 332 (332.9667); the .9667 stays with the vendor.
    expect(body(apply(1, [cmd.account(holder)])[0]).balance).toBe(332);
    const a0 = shards[0].audit(0);
    expect(a0).toMatchObject({ conserved: true, problems: [] });
    expect(a0.currencies.USD).toMatchObject({ vendorPayable: 999 - 332, sentOut: 332, outboxPending: 0 });
    expect(shards[1].audit(1)).toMatchObject({ conserved: true, currencies: { USD: { receivedIn: 332 } } });
    // A replay answers the same purchase and moves nothing; another item under the same idem conflicts.
    expect(body(apply(0, [buy])[0])).toEqual(b);
    expect(body(apply(0, [cmd.buy(buyer, sale({ itemId: 'ci_0007' + '0'.repeat(15) + '2' }), 'buy-1')])[0]).code).toBe('IDEMPOTENCY_CONFLICT');
    expect(body(apply(0, [cmd.account(buyer)])[0]).balance).toBe(4001);
    expect(body(apply(1, [cmd.account(holder)])[0]).balance).toBe(332);
    // History (amounts as moved; statements sign them): the buyer sees one leg, the price to the vendor; the
    // holder the royalty; the vendor both, signed from its side.
    expect(body(apply(0, [cmd.history(buyer)])[0]).entries.map((e: Body) => [e.kind, e.amount])).toEqual([['content-purchase', 999], ['fund', 5000]] );
    expect(body(apply(1, [cmd.history(holder)])[0]).entries.map((e: Body) => [e.kind, e.amount])).toEqual([['royalty-in', 332]]);
    const vh = body(apply(0, [cmd.vhist(V1)])[0]).entries;
    expect(vh.map((e: Body) => [e.kind, e.amount, e.itemId])).toEqual([['royalty-out', -332, s.itemId], ['content-purchase', 999, s.itemId]]);
    // The purchases list, then views until they run out.
    const listed = body(apply(0, [cmd.list(buyer)])[0]).purchases;
    expect(listed).toEqual([expect.objectContaining({ purchaseId: b.purchaseId, title: 'Song', views: 0, viewsLeft: 2, state: 'active' })]);
    const open1 = cmd.openP(buyer, b.purchaseId, 'o-1');
    expect(body(apply(0, [open1])[0])).toMatchObject({ status: 'opened', url: s.url, views: 1, viewsLeft: 1 });
    expect(body(apply(0, [open1])[0])).toMatchObject({ views: 1, viewsLeft: 1 }); // the same idem counts once
    expect(body(apply(0, [cmd.openP(buyer, b.purchaseId)])[0])).toMatchObject({ views: 2, viewsLeft: 0 });
    expect(body(apply(0, [cmd.openP(buyer, b.purchaseId)])[0])).toMatchObject({ status: 'declined', code: 'VIEWS_USED_UP' });
    expect(body(apply(0, [cmd.list(buyer)])[0]).purchases[0]).toMatchObject({ state: 'used-up', viewsLeft: 0 });
    // Someone else's purchase, or a made-up one, is not found.
    const other = accountId(12, 3);
    apply(0, [cmd.open(other)]);
    expect(body(apply(0, [cmd.openP(other, b.purchaseId)])[0]).code).toBe('NOT_FOUND');
    expect(body(apply(0, [cmd.openP(buyer, 'cp_0010zzzzzz')])[0]).code).toBe('NOT_FOUND');
    // Settlement pays the vendor what it kept: content sales count as payments, net of royalties.
    const settled = body(apply(0, [[Op.settleVendor, 0, tag++, Format.http, null, V1, 'st_content', 'operator']])[0]);
    expect(settled.part.currencies.USD).toMatchObject({ opening: 0, captured: 0, payments: 999 - 332, payout: 999 - 332, carried: 0 });
    expect(shards[0].audit(0)).toMatchObject({ conserved: true, currencies: { USD: { vendorPayable: 0, paidOut: 667 } } });
  });

  it('declines in order, ends access at the window or the expiry, and keeps the vendor whole without a rights holder', () => {
    const { shards, apply } = twoShards();
    const buyer = accountId(10, 1);
    const eur = accountId(10, 2);
    apply(0, [cmd.open(buyer), cmd.fund(buyer, 1000), cmd.open(eur, 'EUR')]);
    const word = (o: Outcome) => (body(o).code ? `${body(o).status}:${body(o).code}` : body(o).status);
    const rows: Array<[string, Command, string, number?]> = [
      ['expired item', cmd.buy(buyer, sale({ expiresAtMs: T0 })), 'declined:CONTENT_EXPIRED'],
      ['other currency', cmd.buy(eur, sale()), 'declined:CURRENCY_MISMATCH'],
      ['too dear', cmd.buy(buyer, sale({ price: 1001 })), 'declined:INSUFFICIENT_FUNDS'],
      ['no rights holder', cmd.buy(buyer, sale({ price: 400, accessMs: 1000, expiresAtMs: T0 + 60_000 })), 'bought'],
    ];
    let purchaseId = '';
    for (const [name, c, expected] of rows) {
      const o = apply(0, [c])[0];
      expect(word(o), name).toBe(expected);
      if (expected === 'bought') purchaseId = body(o).purchaseId;
    }
    apply(0, [[Op.accountSettings, 0, tag++, Format.http, null, buyer, { paused: true }]]);
    expect(word(apply(0, [cmd.buy(buyer, sale({ price: 1 }))])[0])).toBe('declined:ACCOUNT_PAUSED');
    expect(body(apply(0, [cmd.account(buyer)])[0]).balance).toBe(600);
    expect(shards[0].audit(0).currencies.USD).toMatchObject({ vendorPayable: 400, sentOut: 0 });
    // Access: 1 s from the purchase (sooner than the item's expiry).
    expect(word(apply(0, [cmd.openP(buyer, purchaseId)], T0 + 999)[0])).toBe('opened');
    expect(word(apply(0, [cmd.openP(buyer, purchaseId)], T0 + 1000)[0])).toBe('declined:ACCESS_EXPIRED');
    // The expiry bounds access when it comes first.
    apply(0, [[Op.accountSettings, 0, tag++, Format.http, null, buyer, { paused: false }]]);
    const b = body(apply(0, [cmd.buy(buyer, sale({ price: 1, accessMs: 3_600_000, expiresAtMs: T0 + 5000 }))])[0]);
    expect(b.accessUntil).toBe(new Date(T0 + 5000).toISOString());
    expect(word(apply(0, [cmd.openP(buyer, b.purchaseId)], T0 + 5000)[0])).toBe('declined:ACCESS_EXPIRED');
    expect(shards[0].audit(0).conserved).toBe(true);
  });
});

describe('random content sales', () => {
  it('conserve money: Σ buyer debits = Σ vendor credits + Σ royalties, each royalty arrives once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({
          buyer: fc.nat(3), holder: fc.option(fc.nat(3)), price: fc.integer({ min: 1, max: 5000 }), bp: fc.integer({ min: 0, max: 10_000 }),
          replay: fc.boolean(), vendor: fc.nat(1), drop: fc.boolean(),
        }), { minLength: 1, maxLength: 40 }),
        (steps) => {
          const paths = [tempShardPath('content-a-'), tempShardPath('content-b-')];
          const shards = [openShard(0, paths[0]).state, openShard(1, paths[1]).state];
          const accs = [accountId(20, 1), accountId(20, 2), accountId(21, 3), accountId(21, 4)];
          const shardOf = (a: number) => (a < 2 ? 0 : 1);
          const vendors = [V1, 'vd_0002bbbbbbbbbbbbbbbb'];
          // A channel that may lose an item the first time: the sender's outbox sends it again below.
          const apply = (at: number, cmds: Command[], drop = false): Outcome[] => {
            const r = shards[at].applyBatch(cmds, T0);
            for (const e of r.events) {
              if (e.k === 'outbox' && !drop) for (const item of e.items) apply(e.dest, [[Op.deliver, 0, 0, Format.http, null, item]]);
              else if (e.k === 'delivered') apply(e.src, [[Op.ackOutbox, 0, 0, Format.http, null, at, e.seqs]]);
            }
            return r.outcomes;
          };
          for (let a = 0; a < 4; a++) apply(shardOf(a), [cmd.open(accs[a]), cmd.fund(accs[a], 20_000)]);
          let debits = 0;
          let vendorCredits = 0;
          let royalties = 0;
          let last: Command | null = null;
          const expected = [20_000, 20_000, 20_000, 20_000];
          for (const st of steps) {
            const holder = st.holder === null ? null : accs[st.holder];
            const c: Command = st.replay && last ? last : cmd.buy(accs[st.buyer], sale({
              price: st.price, royaltyBp: holder === null ? 0 : st.bp, rightsHolder: holder, rightsShard: st.holder === null ? null : shardOf(st.holder),
              vendorId: vendors[st.vendor],
            }));
            const b = body(apply(shardOf(accs.indexOf(c[5] as string)), [c], st.drop)[0]);
            if (b.status === 'bought' && c !== last) {
              const s = c[6] as ContentSale;
              const r = s.rightsHolder === null ? 0 : royaltyOf(s.price, s.royaltyBp);
              debits += s.price;
              vendorCredits += s.price - r;
              royalties += r;
              expected[accs.indexOf(c[5] as string)] -= s.price;
              if (s.rightsHolder !== null) expected[accs.indexOf(s.rightsHolder)] += r;
            }
            last = c;
          }
          for (let round = 0; round < 3; round++) {
            for (const i of [0, 1]) {
              for (const [dest, items] of shards[i].outboxItems(10_000)) {
                for (const item of items) apply(dest, [[Op.deliver, 0, 0, Format.http, null, item]]);
              }
            }
          }
          expect(debits).toBe(vendorCredits + royalties);
          const audits = [shards[0].audit(0), shards[1].audit(1)];
          for (const a of audits) expect(a.problems).toEqual([]);
          const sum = (k: 'vendorPayable' | 'sentOut' | 'receivedIn' | 'outboxPending') => audits.reduce((n, a) => n + (a.currencies.USD?.[k] ?? 0), 0);
          expect(sum('vendorPayable')).toBe(vendorCredits);
          expect(sum('sentOut')).toBe(royalties);
          expect(sum('receivedIn')).toBe(royalties);
          expect(sum('outboxPending')).toBe(0);
          for (let a = 0; a < 4; a++) expect(body(apply(shardOf(a), [cmd.account(accs[a])])[0]).balance).toBe(expected[a]);
          shards.forEach((s) => s.close());
        },
      ),
      { numRuns: 40 },
    );
  });
});
