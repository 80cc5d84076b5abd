// Vendor settlement in the shard state machine against a real LMDB environment: a table (one row per
// step, with the payable and the paid-out total after it): a settlement moves exactly the payable to
// the payout account, a replay moves nothing, a refund and a dispute after the payout take the payable
// below zero without failing the shard, and the next settlement recovers it first. Then a fast-check
// property: random captures, refunds, disputes, direct payments and settlements keep the audit
// conserved, and payouts + payable = captured + paid − refunded − dispute net, to the unit.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard, accountId, V1, V2 } from './shard-test-support.ts';
import { ShardState, type Outcome } from './shard-state.ts';
import { Op, Format, type Command, type SettlementPart } from './contract.ts';

const openState = () => openShard({ name: 'settlement-', holdTtlMs: 3_600_000 });


let tag = 1;
const cmd = {
  open: (acc: string): Command => [Op.openAccount, 0, tag++, Format.http, null, acc, 'USD'],
  fund: (acc: string, amount: number): Command => [Op.fund, 0, tag++, Format.http, null, acc, amount, 'USD', `f${tag}`],
  issue: (acc: string): Command => [Op.issueIds, 0, tag++, Format.http, null, acc, 600, null, null, `i${tag}`, null, null, null],
  auth: (id: string, code: string, amount: number, vid = V1): Command => [Op.authorize, 1, tag++, Format.wsMsgpack, tag, vid, id, code, amount, 'USD', `a${tag}`],
  capture: (authId: string, amount: number | null = null, vid = V1): Command => [Op.capture, 1, tag++, Format.wsMsgpack, tag, vid, authId, amount, `c${tag}`],
  refund: (authId: string, amount: number | null = null, vid = V1): Command => [Op.refund, 1, tag++, Format.wsMsgpack, tag, vid, authId, amount, `r${tag}`],
  dispute: (acc: string, authId: string, amount: number | null = null): Command =>
    [Op.openDispute, 0, tag++, Format.http, null, acc, authId, amount, 'not what I ordered', `d${tag}`],
  decide: (authId: string, winner: 'user' | 'vendor'): Command => [Op.disputeDecide, 0, tag++, Format.http, null, authId, winner, 'looked', `o${tag}`],
  pay: (acc: string, amount: number, vid = V1): Command => [Op.payVendor, 0, tag++, Format.http, null, acc, vid, amount, 'USD', `p${tag}`, null],
  settle: (sid: string, vid = V1): Command => [Op.settleVendor, 0, tag++, Format.http, null, vid, sid, 'operator'],
  list: (vid: string | null): Command => [Op.listSettlements, 0, tag++, Format.http, null, vid, 50],
  payables: (): Command => [Op.vendorPayables, 0, tag++, Format.http, null],
  vhist: (vid = V1): Command => [Op.vendorHistory, 0, tag++, Format.http, null, vid, null, 100, { fromMs: null, toMs: null, kinds: null, currency: null }],
};

const one = (state: ShardState, c: Command, now: number): Outcome => state.applyBatch([c], now).outcomes[0];
const body = (o: Outcome) => (o as { body: Record<string, any> }).body;
function word(o: Outcome): string {
  if (o.kind === 'approval') return 'approved';
  const b = o.body as { status: string; code?: string };
  return b.code ? `${b.status}:${b.code}` : b.status ?? 'ok';
}

function approved(state: ShardState, acc: string, amount: number, now: number, vid = V1): string {
  const id = body(one(state, cmd.issue(acc), now)) as { id: string; code: string };
  const out = one(state, cmd.auth(id.id, id.code, amount, vid), now);
  expect(out.kind).toBe('approval');
  return (out as { authId: string }).authId;
}

const T0 = Date.parse('2026-01-01T00:00:00Z');

describe('settlement table', () => {
  it('pays out exactly the payable, once per id; refunds and disputes after it carry a debt the next one recovers', () => {
    const state = openState();
    const acc = accountId(3, 1);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 5000)], T0);
    const a = approved(state, acc, 1000, T0);
    const b = approved(state, acc, 500, T0);
    const c = approved(state, acc, 300, T0, V2);
    let last: SettlementPart | null = null;
    type Row = [string, () => Command, string, { vpay: number; paidOut: number; owed: number }];
    const rows: Row[] = [
      ['capture a', () => cmd.capture(a), 'captured', { vpay: 1000, paidOut: 0, owed: 0 }],
      ['capture b', () => cmd.capture(b), 'captured', { vpay: 1500, paidOut: 0, owed: 0 }],
      ['capture c (other vendor)', () => cmd.capture(c, null, V2), 'captured', { vpay: 1800, paidOut: 0, owed: 0 }],
      ['refund 200 of a', () => cmd.refund(a, 200), 'refunded', { vpay: 1600, paidOut: 0, owed: 0 }],
      ['settle V1 (s1)', () => cmd.settle('st_1'), 'settled', { vpay: 300, paidOut: 1300, owed: 0 }],
      ['replay of s1 moves nothing', () => cmd.settle('st_1'), 'settled', { vpay: 300, paidOut: 1300, owed: 0 }],
      ['a direct payment to V1', () => cmd.pay(acc, 50), 'paid', { vpay: 350, paidOut: 1300, owed: 0 }],
      // V1: 50 − 100 = −50: the vendor owes 50 of money already paid out.
      ['refund 100 of b after its payout', () => cmd.refund(b, 100), 'refunded', { vpay: 250, paidOut: 1300, owed: 50 }],
      ['dispute all that is left of a (800)', () => cmd.dispute(acc, a), 'opened', { vpay: -550, paidOut: 1300, owed: 850 }],
      ['settle V1 (s2): nothing to pay, the debt is carried', () => cmd.settle('st_2'), 'settled', { vpay: -550, paidOut: 1300, owed: 850 }],
      ['the operator decides for the vendor: 800 reversed', () => cmd.decide(a, 'vendor'), 'won_vendor', { vpay: 250, paidOut: 1300, owed: 50 }],
      ['settle V1 (s3): still owes 50', () => cmd.settle('st_3'), 'settled', { vpay: 250, paidOut: 1300, owed: 50 }],
      ['a payment of 80 to V1', () => cmd.pay(acc, 80), 'paid', { vpay: 330, paidOut: 1300, owed: 0 }],
      ['settle V1 (s4): the payment less the debt', () => cmd.settle('st_4'), 'settled', { vpay: 300, paidOut: 1330, owed: 0 }],
      ['settle V2', () => cmd.settle('st_5', V2), 'settled', { vpay: 0, paidOut: 1630, owed: 0 }],
      ['settle V2 again (new id): nothing at all', () => cmd.settle('st_6', V2), 'settled', { vpay: 0, paidOut: 1630, owed: 0 }],
    ];
    for (const [name, make, expected, money] of rows) {
      const out = one(state, make(), T0 + 1000);
      expect(word(out), name).toBe(expected);
      if (expected === 'settled') last = body(out).part;
      const audit = state.audit(0);
      expect(audit.problems, name).toEqual([]);
      const usd = audit.currencies.USD;
      expect({ vpay: usd.vendorPayable, paidOut: usd.paidOut, owed: usd.vendorOwed }, name).toEqual(money);
    }
    expect(last?.currencies).toEqual({});
    const s1 = body(one(state, cmd.list(V1), T0 + 2000)).parts as SettlementPart[];
    expect(s1.map((p) => p.settlementId)).toEqual(['st_4', 'st_3', 'st_2', 'st_1']);
    expect(s1[3].currencies.USD).toEqual({
      opening: 0, captured: 1500, payments: 0, refunded: 200, disputeCredits: 0, disputeReversals: 0, fees: 0, taxWithheld: 0, payout: 1300, carried: 0, tokensRedeemed: 0, tokenProceeds: 0,
    });
    expect(s1[2].currencies.USD).toMatchObject({ opening: 0, payments: 50, refunded: 100, disputeCredits: 800, payout: 0, carried: -850 });
    expect(s1[1].currencies.USD).toMatchObject({ opening: -850, disputeReversals: 800, payout: 0, carried: -50 });
    expect(s1[0].currencies.USD).toMatchObject({ opening: -50, payments: 80, payout: 30, carried: 0 });
    for (const p of s1) {
      const f = p.currencies.USD;
      expect(f.opening + f.captured + f.payments - f.refunded - f.disputeCredits + f.disputeReversals).toBe(f.payout + f.carried);
    }
    // Position ranges follow one another.
    for (let i = 0; i < s1.length - 1; i++) expect(s1[i].fromPos).toBe(s1[i + 1].toPos);
    // Every vendor's (operators): V2's too (st_6 had nothing and left no record).
    expect((body(one(state, cmd.list(null), T0 + 2000)).parts as SettlementPart[]).map((p) => p.settlementId)).toEqual(['st_5', 'st_4', 'st_3', 'st_2', 'st_1']);
    // The payout is a vendor history entry, signed out of the vendor.
    const hist = body(one(state, cmd.vhist(), T0 + 2000)).entries as Array<{ kind: string; amount: number }>;
    expect(hist.filter((e) => e.kind === 'payout').map((e) => e.amount)).toEqual([-30, -1300]);
    expect(body(one(state, cmd.payables(), T0 + 2000)).payables).toEqual({ [V1]: { USD: 0 }, [V2]: { USD: 0 } });
  });

  it('a settlement in the same batch as captures counts them in its own period, not the next', () => {
    const state = openState();
    const acc = accountId(5, 1);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 1000)], T0);
    const a = approved(state, acc, 400, T0);
    const b = approved(state, acc, 300, T0);
    const r = state.applyBatch([cmd.capture(a), cmd.settle('st_a'), cmd.capture(b), cmd.settle('st_b')], T0 + 1);
    expect(r.outcomes.map(word)).toEqual(['captured', 'settled', 'captured', 'settled']);
    expect(body(r.outcomes[1]).part.currencies.USD).toMatchObject({ captured: 400, payout: 400 });
    expect(body(r.outcomes[3]).part.currencies.USD).toMatchObject({ captured: 300, payout: 300, opening: 0 });
    one(state, cmd.refund(a, 100), T0 + 2);
    const c = body(one(state, cmd.settle('st_c'), T0 + 3)).part.currencies.USD;
    expect(c).toMatchObject({ opening: 0, captured: 0, refunded: 100, payout: 0, carried: -100 });
    expect(state.audit(0).problems).toEqual([]);
  });
});

type Step =
  | { k: 'capture'; auth: number; amount: number | null }
  | { k: 'refund'; auth: number; amount: number | null }
  | { k: 'dispute'; auth: number; amount: number | null }
  | { k: 'decide'; auth: number; winner: 'user' | 'vendor' }
  | { k: 'pay'; amount: number }
  | { k: 'settle'; replay: boolean };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('capture' as const), auth: fc.nat(5), amount: fc.option(fc.integer({ min: 1, max: 300 })) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('refund' as const), auth: fc.nat(5), amount: fc.option(fc.integer({ min: 1, max: 300 })) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('dispute' as const), auth: fc.nat(5), amount: fc.option(fc.integer({ min: 1, max: 300 })) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('decide' as const), auth: fc.nat(5), winner: fc.constantFrom('user' as const, 'vendor' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('pay' as const), amount: fc.integer({ min: 1, max: 200 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('settle' as const), replay: fc.boolean() }) },
);

describe('settlement property', () => {
  it('random captures, refunds, disputes, payments and settlements conserve money; payouts + payable = captured + paid − refunded − dispute net', () => {
    fc.assert(fc.property(fc.array(fc.array(stepArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 25 }), (batches) => {
      const state = openState();
      const acc = accountId(7, 1);
      state.applyBatch([cmd.open(acc), cmd.fund(acc, 10_000)], T0);
      const auths = [0, 1, 2, 3, 4, 5].map(() => approved(state, acc, 400, T0));
      let sid = 0;
      let captured = 0;
      let refunded = 0;
      let paid = 0;
      let disputeNet = 0;
      let payouts = 0;
      for (const batch of batches) {
        const cmds = batch.map((s): Command => {
          switch (s.k) {
            case 'capture': return cmd.capture(auths[s.auth], s.amount);
            case 'refund': return cmd.refund(auths[s.auth], s.amount);
            case 'dispute': return cmd.dispute(acc, auths[s.auth], s.amount);
            case 'decide': return cmd.decide(auths[s.auth], s.winner);
            case 'pay': return cmd.pay(acc, s.amount);
            case 'settle': return cmd.settle(`st_${s.replay && sid > 0 ? sid : ++sid}`);
          }
        });
        const r = state.applyBatch(cmds, T0 + 1000);
        r.outcomes.forEach((o, i) => {
          const b = body(o);
          if (b.status === 'captured') captured += b.captured;
          else if (b.status === 'refunded') refunded += b.refunded;
          else if (b.status === 'paid') paid += b.amount;
          else if (b.status === 'opened') disputeNet += b.amount;
          else if (b.status === 'won_vendor' && batch[i].k === 'decide') disputeNet -= b.reversed;
        });
      }
      const audit = state.audit(0);
      expect(audit.problems).toEqual([]);
      const parts = body(one(state, cmd.list(V1), T0 + 2000)).parts as SettlementPart[];
      for (const p of parts) payouts += p.currencies.USD?.payout ?? 0;
      const usd = audit.currencies.USD;
      expect(usd.paidOut).toBe(payouts);
      expect(payouts + usd.vendorPayable).toBe(captured + paid - refunded - disputeNet);
    }), { numRuns: 60 });
  });
});
