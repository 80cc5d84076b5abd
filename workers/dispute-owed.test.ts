// Collecting what a lost dispute left owed: money that later arrives in the wallet the dispute
// credited pays the owed amounts first, oldest dispute first, in the same transaction, from positive
// available money only. A table per entry point (fund, a transfer delivered from another shard, a
// refund of another purchase), partial then full, several disputes, nothing owed, and replays.

import { describe, expect, it } from 'vitest';
import { openShard, tempShardPath, accountId, V1, V2 } from './shard-test-support.ts';
import { ShardState, type Outcome } from './shard-state.ts';
import { Op, Format, type Command, type OutboxItem, type ShardEvent } from './contract.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');
let tag = 1;
const cmd = {
  open: (acc: string): Command => [Op.openAccount, 0, tag++, Format.http, null, acc, 'USD'],
  fund: (acc: string, amount: number, idem = `f${tag}`): Command => [Op.fund, 0, tag++, Format.http, null, acc, amount, 'USD', idem],
  issue: (acc: string): Command => [Op.issueIds, 0, tag++, Format.http, null, acc, 600, null, null, `i${tag}`, null, null, null],
  auth: (id: string, code: string, amount: number, vid: string, tax: [string, number] | null = null): Command =>
    [Op.authorize, 1, tag++, Format.wsMsgpack, tag, vid, id, code, amount, 'USD', `a${tag}`, null, null, null, tax],
  capture: (authId: string, vid: string): Command => [Op.capture, 1, tag++, Format.wsMsgpack, tag, vid, authId, null, `c${tag}`],
  refund: (authId: string, amount: number, vid: string): Command => [Op.refund, 1, tag++, Format.wsMsgpack, tag, vid, authId, amount, `r${tag}`],
  dispute: (acc: string, authId: string): Command => [Op.openDispute, 0, tag++, Format.http, null, acc, authId, null, 'never arrived', `d${tag}`],
  decide: (authId: string): Command => [Op.disputeDecide, 0, tag++, Format.http, null, authId, 'vendor', 'delivery proven', `o${tag}`],
  account: (acc: string): Command => [Op.getAccount, 0, tag++, Format.http, null, acc],
  setCredit: (acc: string, limit: number): Command => [Op.setCredit, 0, tag++, Format.http, null, acc, limit, 'active'],
  transfer: (from: string, to: string, toShard: number, amount: number): Command =>
    [Op.transfer, 0, tag++, Format.http, null, from, to, toShard, amount, 'USD', `x${tag}`, null],
  history: (acc: string): Command => [Op.history, 0, tag++, Format.http, null, acc, null, 50, null],
};

const one = (state: ShardState, c: Command, now = T0): Outcome => state.applyBatch([c], now).outcomes[0];
const body = (o: Outcome) => (o as { body: Record<string, any> }).body;
const bal = (state: ShardState, acc: string) => body(one(state, cmd.account(acc))).balance as number;
const usd = (state: ShardState) => state.audit(0).currencies.USD;

/** A captured charge of `amount` by vid, disputed in full, then lost by the user: `owed` is what the
 * balance could not cover (the user spent the credit on V2 before the ruling). */
function lostDispute(state: ShardState, acc: string, amount: number, vid = V1, tax: [string, number] | null = null): string {
  const id = body(one(state, cmd.issue(acc))) as { id: string; code: string };
  const out = one(state, cmd.auth(id.id, id.code, amount, vid, tax));
  expect(out.kind).toBe('approval');
  const authId = (out as { authId: string }).authId;
  expect(body(one(state, cmd.capture(authId, vid))).status).toBe('captured');
  expect(body(one(state, cmd.dispute(acc, authId))).status).toBe('opened');
  return authId;
}

/** Spend everything available at V2 (captured), so a ruling now leaves the whole credit owed. */
function spendAll(state: ShardState, acc: string): void {
  const a = body(one(state, cmd.account(acc)));
  if (a.available <= 0) return;
  const id = body(one(state, cmd.issue(acc))) as { id: string; code: string };
  const out = one(state, cmd.auth(id.id, id.code, a.available, V2));
  one(state, cmd.capture((out as { authId: string }).authId, V2));
}

function dispute(state: ShardState, authId: string): Record<string, any> {
  return (body(one(state, [Op.listDisputes, 0, tag++, Format.http, null, {}, 50])).disputes as Array<Record<string, any>>).find((d) => d.authId === authId)!;
}

const collections = (events: ShardEvent[]) => events.filter((e) => e.k === 'dispute' && e.collected !== undefined) as Array<Extract<ShardEvent, { k: 'dispute' }>>;

describe('collecting what a lost dispute left owed', () => {
  it('a fund pays it, partially then fully; the vendor payable and the audit follow; replays collect nothing more', () => {
    const state = openShard({ name: 'owed-fund-' });
    const acc = accountId(7, 1);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 300)], T0);
    const a = lostDispute(state, acc, 300);
    spendAll(state, acc);
    expect(body(one(state, cmd.decide(a)))).toMatchObject({ status: 'won_vendor', reversed: 0, owed: 300 });
    expect(usd(state)).toMatchObject({ disputeOwed: 300, vendorPayable: 300 }); // V2's 300; V1 short by 300
    type Row = [string, Command, { bal: number; reversed: number; owed: number; vpay: number; collected: number[] }];
    const rows: Row[] = [
      ['fund 120: all of it pays the debt', cmd.fund(acc, 120, 'owed-f1'), { bal: 0, reversed: 120, owed: 180, vpay: 420, collected: [120] }],
      ['replay of that fund: nothing moves', cmd.fund(acc, 120, 'owed-f1'), { bal: 0, reversed: 120, owed: 180, vpay: 420, collected: [] }],
      ['fund 500: the rest of the debt, 320 stays', cmd.fund(acc, 500, 'owed-f2'), { bal: 320, reversed: 300, owed: 0, vpay: 600, collected: [180] }],
      ['fund 50 once nothing is owed: all stays', cmd.fund(acc, 50, 'owed-f3'), { bal: 370, reversed: 300, owed: 0, vpay: 600, collected: [] }],
    ];
    for (const [name, c, want] of rows) {
      const r = state.applyBatch([c], T0);
      expect(body(r.outcomes[0]).balance, name).toBe(want.bal); // the reply shows the balance after collection
      expect(dispute(state, a), name).toMatchObject({ disputeStatus: 'won_vendor', reversed: want.reversed, owed: want.owed });
      expect(collections(r.events).map((e) => e.collected), name).toEqual(want.collected);
      expect(usd(state), name).toMatchObject({ disputeOwed: want.owed, vendorPayable: want.vpay });
      expect(state.audit(0), name).toMatchObject({ conserved: true, problems: [] });
    }
    // The user's history shows each collection as a dispute-reversal of that authorization.
    const hist = body(one(state, cmd.history(acc))).entries as Array<Record<string, any>>;
    expect(hist.filter((e) => e.kind === 'dispute-reversal').map((e) => [e.amount, e.authId])).toEqual([[180, a], [120, a]]);
  });

  it('pays several disputes oldest first, each event to both sides', () => {
    const state = openShard({ name: 'owed-order-' });
    const acc = accountId(7, 2);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 600)], T0);
    const a = lostDispute(state, acc, 100);
    const b = lostDispute(state, acc, 200, V2);
    const c = lostDispute(state, acc, 300);
    spendAll(state, acc);
    // Ruled in another order than opened: collection follows the opening.
    for (const x of [c, a, b]) expect(body(one(state, cmd.decide(x))).owed).toBeGreaterThan(0);
    const r = state.applyBatch([cmd.fund(acc, 250)], T0 + 1);
    expect(collections(r.events).map((e) => [e.authId, e.vendorId, e.collected, e.owed])).toEqual([[a, V1, 100, 0], [b, V2, 150, 50]]);
    expect([dispute(state, a).owed, dispute(state, b).owed, dispute(state, c).owed]).toEqual([0, 50, 300]);
    const r2 = state.applyBatch([cmd.fund(acc, 1000)], T0 + 2);
    expect(collections(r2.events).map((e) => [e.authId, e.collected])).toEqual([[b, 50], [c, 300]]);
    expect(bal(state, acc)).toBe(650);
    expect(usd(state)).toMatchObject({ disputeOwed: 0 });
    expect(state.audit(0)).toMatchObject({ conserved: true, problems: [] });
  });

  it('nothing owed: an arrival moves nothing else and tells nobody', () => {
    const state = openShard({ name: 'owed-none-' });
    const acc = accountId(7, 3);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 300)], T0);
    const a = lostDispute(state, acc, 100); // the user still has the money: the ruling takes it all back
    expect(body(one(state, cmd.decide(a)))).toMatchObject({ reversed: 100, owed: 0 });
    const r = state.applyBatch([cmd.fund(acc, 10)], T0);
    expect(r.events.filter((e) => e.k === 'dispute')).toEqual([]);
    expect(bal(state, acc)).toBe(210);
    expect(state.audit(0)).toMatchObject({ conserved: true, problems: [] });
  });

  it('takes only positive available money, never the credit line, and waits behind holds', () => {
    const state = openShard({ name: 'owed-credit-' });
    const acc = accountId(7, 4);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 200), cmd.setCredit(acc, 100)], T0);
    const a = lostDispute(state, acc, 200);
    spendAll(state, acc); // spends 400: the 200 credited and the credit line's 100 too; balance -100
    expect(body(one(state, cmd.decide(a)))).toMatchObject({ owed: 200 });
    expect(bal(state, acc)).toBe(-100);
    // 60 arrives: the balance is still below zero, nothing is taken.
    let r = state.applyBatch([cmd.fund(acc, 60)], T0);
    expect(collections(r.events)).toEqual([]);
    // 90 more: the balance reaches 50, which pays 50 of the debt; back to 0.
    r = state.applyBatch([cmd.fund(acc, 90)], T0);
    expect(collections(r.events).map((e) => e.collected)).toEqual([50]);
    expect(bal(state, acc)).toBe(0);
    // A hold of 70 on the credit line, then 100 arrives: only the 30 not reserved by the hold pays.
    const id = body(one(state, cmd.issue(acc))) as { id: string; code: string };
    expect(one(state, cmd.auth(id.id, id.code, 70, V2)).kind).toBe('approval'); // held 70 on the line
    r = state.applyBatch([cmd.fund(acc, 100)], T0);
    expect(collections(r.events).map((e) => e.collected)).toEqual([30]);
    expect(body(one(state, cmd.account(acc)))).toMatchObject({ balance: 70, held: 70, available: 100 }); // the line is still there
    expect(dispute(state, a)).toMatchObject({ reversed: 80, owed: 120 });
    expect(state.audit(0)).toMatchObject({ conserved: true, problems: [] });
  });

  it('a refund of another purchase pays it', () => {
    const state = openShard({ name: 'owed-refund-' });
    const acc = accountId(7, 5);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 500)], T0);
    const a = lostDispute(state, acc, 200);
    const id = body(one(state, cmd.issue(acc))) as { id: string; code: string };
    const p = (one(state, cmd.auth(id.id, id.code, 500, V2)) as { authId: string }).authId;
    one(state, cmd.capture(p, V2));
    spendAll(state, acc);
    expect(body(one(state, cmd.decide(a)))).toMatchObject({ owed: 200 });
    const r = state.applyBatch([cmd.refund(p, 150, V2)], T0);
    expect(body(r.outcomes[0])).toMatchObject({ status: 'refunded', refunded: 150 });
    expect(collections(r.events).map((e) => [e.authId, e.collected])).toEqual([[a, 150]]);
    expect(bal(state, acc)).toBe(0);
    expect(dispute(state, a)).toMatchObject({ reversed: 150, owed: 50 });
    expect(state.audit(0)).toMatchObject({ conserved: true, problems: [] });
  });

  it('re-collects the sales tax of what it collects, to the unit the whole reversal would have', () => {
    const state = openShard({ name: 'owed-tax-' });
    const acc = accountId(7, 6);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 1190)], T0);
    const a = lostDispute(state, acc, 1190, V1, ['DE', 1900]); // 190 of it tax, all given back by the credit
    spendAll(state, acc);
    expect(body(one(state, cmd.decide(a)))).toMatchObject({ reversed: 0, owed: 1190 });
    const before = usd(state);
    // Each collection re-collects floor(190 × what stays given back / 1190) less what it re-collected before.
    const rows: Array<[number, { tax: number; vpay: number }]> = [[119, { tax: 19, vpay: 100 }], [476, { tax: 95, vpay: 500 }], [1000, { tax: 190, vpay: 1000 }]];
    for (const [amount, want] of rows) {
      one(state, cmd.fund(acc, amount));
      const now = usd(state);
      expect({ tax: now.taxCollected - before.taxCollected, vpay: now.vendorPayable - before.vendorPayable }, `fund ${amount}`).toEqual(want);
      expect(state.audit(0), `fund ${amount}`).toMatchObject({ conserved: true, problems: [] });
    }
    expect(dispute(state, a)).toMatchObject({ reversed: 1190, owed: 0 });
    expect(bal(state, acc)).toBe(405); // 119 + 476 + 1000 − 1190
  });

  it('a transfer delivered from another shard pays it, once however often the item comes', () => {
    const sender = openShard({ name: 'owed-xa-', shardId: 0 });
    const receiver = openShard({ name: 'owed-xb-', shardId: 1 });
    const from = accountId(8, 1);
    const acc = accountId(9, 1);
    sender.applyBatch([cmd.open(from), cmd.fund(from, 1000)], T0);
    receiver.applyBatch([cmd.open(acc), cmd.fund(acc, 300)], T0);
    const a = lostDispute(receiver, acc, 300);
    spendAll(receiver, acc);
    expect(body(one(receiver, cmd.decide(a)))).toMatchObject({ owed: 300 });
    const sent = sender.applyBatch([cmd.transfer(from, acc, 1, 400)], T0);
    const item = (sent.events.find((e) => e.k === 'outbox') as { items: OutboxItem[] }).items[0];
    const r = receiver.applyBatch([[Op.deliver, 0, 0, Format.http, null, item]], T0);
    expect(collections(r.events).map((e) => [e.authId, e.collected, e.owed])).toEqual([[a, 300, 0]]);
    expect(bal(receiver, acc)).toBe(100);
    // The same item again (a lost acknowledgement): already applied, nothing more moves.
    const again = receiver.applyBatch([[Op.deliver, 0, 0, Format.http, null, item]], T0);
    expect(collections(again.events)).toEqual([]);
    expect(bal(receiver, acc)).toBe(100);
    expect(dispute(receiver, a)).toMatchObject({ reversed: 300, owed: 0 });
    expect(receiver.audit(0)).toMatchObject({ conserved: true, problems: [] });
    expect(usd(receiver)).toMatchObject({ disputeOwed: 0 });
  });

  it('a store from before collection existed gets its owed index once, at open, and collects from then on', () => {
    const path = tempShardPath('owed-backfill-');
    let state = openShard({ path });
    const acc = accountId(7, 9);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 200)], T0);
    const a = lostDispute(state, acc, 200);
    spendAll(state, acc);
    expect(body(one(state, cmd.decide(a)))).toMatchObject({ status: 'won_vendor', owed: 200 });
    // Make it look like an older store: no index entry, no count on the account, no backfill mark.
    const raw = state as unknown as { env: any; meta: any; accounts: any };
    raw.env.transactionSync(() => {
      for (const { key } of raw.meta.getRange({ start: ['owd'], end: ['owd', '\uffff'] })) raw.meta.removeSync(key);
      const { ow: _ow, ...rest } = raw.accounts.get(acc);
      raw.accounts.putSync(acc, rest);
      raw.meta.removeSync('owedIndexed');
    });
    expect(state.audit(0).problems.join()).toMatch(/not in its wallet's owed index/);
    state.close();
    state = openShard({ path });
    expect(state.audit(0)).toMatchObject({ conserved: true, problems: [] });
    const r = state.applyBatch([cmd.fund(acc, 250, 'after-backfill')], T0);
    expect(collections(r.events).map((e) => e.collected)).toEqual([200]);
    expect(dispute(state, a)).toMatchObject({ reversed: 200, owed: 0 });
    expect(state.audit(0)).toMatchObject({ conserved: true, problems: [] });
    state.close();
  });
});
