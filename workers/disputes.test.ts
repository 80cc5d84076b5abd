// Disputes in the shard state machine against a real LMDB environment: a table of every transition
// and refusal (one row per step, with the money after it), and a fast-check property: random mixes
// of capture / refund / dispute / respond / decide / fund keep the audit conserved, never give back
// more than was captured, and agree with a small model of the money.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard, accountId, V1, V2 } from './shard-test-support.ts';
import { ShardState, type Outcome } from './shard-state.ts';
import { Op, Format, type Command, type DisputeFilter } from './contract.ts';
import { disputeWindowMs } from './limits.ts';

const openState = () => openShard({ name: 'disputes-', holdTtlMs: 3_600_000 });


let tag = 1;
const cmd = {
  open: (acc: string): Command => [Op.openAccount, 0, tag++, Format.http, null, acc, 'USD'],
  fund: (acc: string, amount: number, idem = `f${tag}`): Command => [Op.fund, 0, tag++, Format.http, null, acc, amount, 'USD', idem],
  issue: (acc: string): Command => [Op.issueIds, 0, tag++, Format.http, null, acc, 600, null, null, `i${tag}`, null, null, null],
  auth: (id: string, code: string, amount: number, vid = V1): Command => [Op.authorize, 1, tag++, Format.wsMsgpack, tag, vid, id, code, amount, 'USD', `a${tag}`],
  capture: (authId: string, amount: number | null = null): Command => [Op.capture, 1, tag++, Format.wsMsgpack, tag, V1, authId, amount, `c${tag}`],
  refund: (authId: string, amount: number | null = null, vid = V1, idem = `r${tag}`): Command =>
    [Op.refund, 1, tag++, Format.wsMsgpack, tag, vid, authId, amount, idem],
  dispute: (acc: string, authId: string, amount: number | null = null, idem = `d${tag}`, reason = 'not what I ordered'): Command =>
    [Op.openDispute, 0, tag++, Format.http, null, acc, authId, amount, reason, idem],
  respond: (authId: string, decision: 'accept' | 'contest', vid = V1, idem = `p${tag}`): Command =>
    [Op.disputeRespond, 0, tag++, Format.http, null, vid, authId, decision, decision === 'contest' ? 'signed delivery note' : null,
      decision === 'contest' ? 'https://shop.example/pod/1' : null, idem],
  decide: (authId: string, winner: 'user' | 'vendor', idem = `o${tag}`): Command =>
    [Op.disputeDecide, 0, tag++, Format.http, null, authId, winner, 'looked at the evidence', idem],
  list: (filter: DisputeFilter, limit = 50): Command => [Op.listDisputes, 0, tag++, Format.http, null, filter, limit],
  account: (acc: string): Command => [Op.getAccount, 0, tag++, Format.http, null, acc],
  setCredit: (acc: string, limit: number): Command => [Op.setCredit, 0, tag++, Format.http, null, acc, limit, 'active'],
};

function word(o: Outcome): string {
  if (o.kind === 'approval') return 'approved';
  const b = o.body as { status: string; code?: string };
  return b.code ? `${b.status}:${b.code}` : b.status ?? 'ok';
}
const one = (state: ShardState, c: Command, now: number): Outcome => state.applyBatch([c], now).outcomes[0];
const body = (o: Outcome) => (o as { body: Record<string, any> }).body;

function balance(state: ShardState, acc: string, now: number): number {
  return body(one(state, cmd.account(acc), now)).balance;
}

function vendorPayable(state: ShardState): number {
  return state.audit(0).currencies.USD.vendorPayable;
}

/** An approved authorization of `amount` on acc's account, by vendor V1 (or vid). */
function approved(state: ShardState, acc: string, amount: number, now: number, vid = V1): string {
  const id = body(one(state, cmd.issue(acc), now)) as { id: string; code: string };
  const out = one(state, cmd.auth(id.id, id.code, amount, vid), now);
  expect(out.kind).toBe('approval');
  return (out as { authId: string }).authId;
}

const T0 = Date.parse('2026-01-01T00:00:00Z');

describe('dispute table', () => {
  it('walks every transition and refusal, one row per step, with the money after it', () => {
    const state = openState();
    const acc = accountId(3, 1);
    const other = accountId(3, 2);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 1000), cmd.open(other), cmd.fund(other, 1000)], T0);
    const a = approved(state, acc, 600, T0); // dispute, vendor accepts
    const b = approved(state, acc, 100, T0); // dispute, contested, user wins
    const c = approved(state, acc, 100, T0); // dispute, contested, vendor wins (the user has the money)
    const h = approved(state, acc, 50, T0);  // never captured
    const d = approved(state, acc, 100, T0, V2); // dispute; operator decides while the vendor is silent
    // balance 1000, held 950
    type Row = [string, () => Command, string, { bal: number; vpay: number }];
    const rows: Row[] = [
      ['dispute a held charge', () => cmd.dispute(acc, h), 'declined:AUTH_NOT_CAPTURED', { bal: 1000, vpay: 0 }],
      ['capture a', () => cmd.capture(a), 'captured', { bal: 400, vpay: 600 }],
      ['capture b, c, d', () => cmd.capture(b), 'captured', { bal: 300, vpay: 700 }],
      ['', () => cmd.capture(c), 'captured', { bal: 200, vpay: 800 }],
      ['', () => [Op.capture, 1, tag++, Format.wsMsgpack, tag, V2, d, null, `c${tag}`], 'captured', { bal: 100, vpay: 900 }],
      ['another user disputes a', () => cmd.dispute(other, a), 'declined:AUTH_UNKNOWN', { bal: 100, vpay: 900 }],
      ['refund part of a', () => cmd.refund(a, 100), 'refunded', { bal: 200, vpay: 800 }],
      ['dispute more than is left', () => cmd.dispute(acc, a, 501), 'declined:AMOUNT_OVER_LIMIT', { bal: 200, vpay: 800 }],
      ['dispute part of a', () => cmd.dispute(acc, a, 300, 'da'), 'opened', { bal: 500, vpay: 500 }],
      ['replay of the dispute', () => cmd.dispute(acc, a, 300, 'da'), 'opened', { bal: 500, vpay: 500 }],
      ['same key, other amount', () => cmd.dispute(acc, a, 200, 'da'), 'error:IDEMPOTENCY_CONFLICT', { bal: 500, vpay: 500 }],
      ['a second dispute while open', () => cmd.dispute(acc, a, 1), 'declined:DISPUTE_OPEN', { bal: 500, vpay: 500 }],
      ['refund beyond capture - refunded - disputed', () => cmd.refund(a, 201), 'declined:AMOUNT_OVER_LIMIT', { bal: 500, vpay: 500 }],
      ['refund what is left', () => cmd.refund(a), 'refunded', { bal: 700, vpay: 300 }],
      ['nothing left to refund', () => cmd.refund(a, 1), 'declined:AMOUNT_OVER_LIMIT', { bal: 700, vpay: 300 }],
      ['another vendor responds', () => cmd.respond(a, 'accept', V2), 'declined:AUTH_UNKNOWN', { bal: 700, vpay: 300 }],
      ['the vendor accepts', () => cmd.respond(a, 'accept'), 'accepted', { bal: 700, vpay: 300 }],
      ['the vendor contests after accepting', () => cmd.respond(a, 'contest'), 'declined:DISPUTE_DECIDED', { bal: 700, vpay: 300 }],
      ['the operator decides an accepted one', () => cmd.decide(a, 'vendor'), 'declined:DISPUTE_DECIDED', { bal: 700, vpay: 300 }],
      ['a second dispute after the first ended', () => cmd.dispute(acc, a, 1), 'declined:DISPUTE_NOT_ALLOWED', { bal: 700, vpay: 300 }],
      ['respond with no dispute', () => cmd.respond(b, 'accept'), 'declined:DISPUTE_UNKNOWN', { bal: 700, vpay: 300 }],
      ['decide with no dispute', () => cmd.decide(b, 'user'), 'declined:DISPUTE_UNKNOWN', { bal: 700, vpay: 300 }],
      ['dispute all of b', () => cmd.dispute(acc, b), 'opened', { bal: 800, vpay: 200 }],
      ['refund b now', () => cmd.refund(b, 1), 'declined:AMOUNT_OVER_LIMIT', { bal: 800, vpay: 200 }],
      ['the vendor contests b', () => cmd.respond(b, 'contest'), 'contested', { bal: 800, vpay: 200 }],
      ['contests again', () => cmd.respond(b, 'contest'), 'declined:DISPUTE_DECIDED', { bal: 800, vpay: 200 }],
      ['a dispute of b while contested', () => cmd.dispute(acc, b, 1), 'declined:DISPUTE_OPEN', { bal: 800, vpay: 200 }],
      ['the operator decides b for the user', () => cmd.decide(b, 'user', 'ob'), 'won_user', { bal: 800, vpay: 200 }],
      ['replay of the decision', () => cmd.decide(b, 'user', 'ob'), 'won_user', { bal: 800, vpay: 200 }],
      ['decided again', () => cmd.decide(b, 'vendor'), 'declined:DISPUTE_DECIDED', { bal: 800, vpay: 200 }],
      ['dispute 60 of c', () => cmd.dispute(acc, c, 60), 'opened', { bal: 860, vpay: 140 }],
      ['the vendor contests c', () => cmd.respond(c, 'contest'), 'contested', { bal: 860, vpay: 140 }],
      ['the operator decides c for the vendor', () => cmd.decide(c, 'vendor'), 'won_vendor', { bal: 800, vpay: 200 }],
      ['the reversal put all of c back with the vendor, who may refund it all', () => cmd.refund(c), 'refunded', { bal: 900, vpay: 100 }],
      ['dispute d', () => cmd.dispute(acc, d, 100), 'opened', { bal: 1000, vpay: 0 }],
      ['the operator decides d with the vendor silent', () => cmd.decide(d, 'user'), 'won_user', { bal: 1000, vpay: 0 }],
      ['the operator on an unknown authorization', () => cmd.decide('au_0003' + 'zzzzzzzzzz', 'user'), 'declined:AUTH_UNKNOWN', { bal: 1000, vpay: 0 }],
    ];
    let now = T0 + 1;
    for (const [name, make, expected, money] of rows) {
      const out = one(state, make(), now++);
      expect(word(out), name).toBe(expected);
      expect(balance(state, acc, now), name).toBe(money.bal);
      expect(vendorPayable(state), name).toBe(money.vpay);
      expect(state.audit(0), name).toMatchObject({ conserved: true, problems: [] });
    }
    // Every step is in the dispute's own history, and the listing filters by who and where.
    const mine = body(one(state, cmd.list({ accountId: acc }), now)).disputes as Array<Record<string, any>>;
    expect(mine.map((x) => [x.authId, x.disputeStatus])).toEqual([[d, 'won_user'], [c, 'won_vendor'], [b, 'won_user'], [a, 'accepted']]);
    expect(mine.find((x) => x.authId === b)!.history.map((s: { by: string; status: string }) => `${s.by}:${s.status}`))
      .toEqual(['user:open', 'vendor:contested', 'operator:won_user']);
    expect(mine.find((x) => x.authId === c)).toMatchObject({ amount: 60, reversed: 60, owed: 0, evidence: 'signed delivery note', note: 'looked at the evidence' });
    expect(body(one(state, cmd.list({ vendorId: V2 }), now)).disputes.map((x: { authId: string }) => x.authId)).toEqual([d]);
    expect(body(one(state, cmd.list({ status: 'accepted' }), now)).disputes.map((x: { authId: string }) => x.authId)).toEqual([a]);
    expect(body(one(state, cmd.list({ accountId: other }), now)).disputes).toEqual([]);
    expect(state.audit(0).currencies.USD).toMatchObject({ disputeCredited: 0, disputeOwed: 0 });
  });

  it('reverses only what the user has available (credit line included) and records the rest as owed', () => {
    const state = openState();
    const acc = accountId(4, 1);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 500), cmd.setCredit(acc, 100)], T0);
    const a = approved(state, acc, 500, T0);
    one(state, cmd.capture(a), T0);
    expect(word(one(state, cmd.dispute(acc, a), T0))).toBe('opened');
    expect(balance(state, acc, T0)).toBe(500);
    expect(state.audit(0).currencies.USD).toMatchObject({ disputeCredited: 500 });
    // The user spends most of the credit elsewhere (another vendor), and holds some more.
    const spent = approved(state, acc, 350, T0, V2);
    one(state, [Op.capture, 1, tag++, Format.wsMsgpack, tag, V2, spent, null, `c${tag}`] as Command, T0);
    approved(state, acc, 100, T0, V2); // held: 100; balance 150, line 100, available 150
    expect(word(one(state, cmd.respond(a, 'contest'), T0))).toBe('contested');
    const decided = one(state, cmd.decide(a, 'vendor'), T0 + 1);
    expect(body(decided)).toMatchObject({ status: 'won_vendor', reversed: 150, owed: 350 });
    const account = body(one(state, cmd.account(acc), T0 + 1));
    expect(account).toMatchObject({ balance: 0, held: 100, available: 0 });
    const audit = state.audit(0);
    expect(audit).toMatchObject({ conserved: true, problems: [] });
    expect(audit.currencies.USD).toMatchObject({ disputeCredited: 0, disputeOwed: 350, vendorPayable: 150 + 350 });
    // The owed part stays with the user: it cannot be refunded to them a second time; the reversed
    // part is the vendor's again and may be.
    expect(word(one(state, cmd.refund(a, 151), T0 + 1))).toBe('declined:AMOUNT_OVER_LIMIT');
    expect(word(one(state, cmd.refund(a, 150), T0 + 1))).toBe('refunded');
    expect(state.audit(0)).toMatchObject({ conserved: true, problems: [] });
  });

  it('refuses disputes past the window and on charges never captured', () => {
    const state = openState();
    const acc = accountId(5, 1);
    state.applyBatch([cmd.open(acc), cmd.fund(acc, 500)], T0);
    const a = approved(state, acc, 100, T0);
    one(state, cmd.capture(a), T0);
    expect(word(one(state, cmd.dispute(acc, a), T0 + disputeWindowMs + 1))).toBe('declined:DISPUTE_NOT_ALLOWED');
    const v = approved(state, acc, 100, T0);
    one(state, [Op.void, 1, tag++, Format.wsMsgpack, tag, V1, v, null, `v${tag}`] as Command, T0);
    expect(word(one(state, cmd.dispute(acc, v), T0))).toBe('declined:AUTH_NOT_CAPTURED');
    expect(word(one(state, cmd.dispute(acc, 'au_0005zzzzzzzzzz'), T0))).toBe('declined:AUTH_UNKNOWN');
    expect(state.audit(0).conserved).toBe(true);
  });
});

type Step =
  | { k: 'capture'; auth: number; amount: number | null }
  | { k: 'refund'; auth: number; amount: number | null }
  | { k: 'dispute'; auth: number; amount: number | null }
  | { k: 'respond'; auth: number; decision: 'accept' | 'contest' }
  | { k: 'decide'; auth: number; winner: 'user' | 'vendor' }
  | { k: 'spend'; amount: number }
  | { k: 'fund'; amount: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('capture' as const), auth: fc.nat(7), amount: fc.option(fc.integer({ min: 1, max: 400 })) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('refund' as const), auth: fc.nat(7), amount: fc.option(fc.integer({ min: 1, max: 400 })) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('dispute' as const), auth: fc.nat(7), amount: fc.option(fc.integer({ min: 1, max: 400 })) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('respond' as const), auth: fc.nat(7), decision: fc.constantFrom('accept' as const, 'contest' as const) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('decide' as const), auth: fc.nat(7), winner: fc.constantFrom('user' as const, 'vendor' as const) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('spend' as const), amount: fc.integer({ min: 1, max: 1500 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('fund' as const), amount: fc.integer({ min: 1, max: 500 }) }) },
);

describe('dispute properties', () => {
  it('random mixes keep the audit conserved and never give back more than was captured', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 10, maxLength: 80 }), (steps) => {
        const state = openState();
        const acc = accountId(6, 1);
        state.applyBatch([cmd.open(acc), cmd.fund(acc, 3000), cmd.setCredit(acc, 200)], T0);
        const auths = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => approved(state, acc, 100 + 37 * i, T0));
        let now = T0 + 1;
        for (const s of steps) {
          const a = 'auth' in s ? auths[s.auth] : '';
          let c: Command;
          if (s.k === 'capture') c = cmd.capture(a, s.amount);
          else if (s.k === 'refund') c = cmd.refund(a, s.amount);
          else if (s.k === 'dispute') c = cmd.dispute(acc, a, s.amount);
          else if (s.k === 'respond') c = cmd.respond(a, s.decision);
          else if (s.k === 'decide') c = cmd.decide(a, s.winner);
          else if (s.k === 'fund') c = cmd.fund(acc, s.amount);
          else {
            // The user spends elsewhere, so reversals meet accounts that no longer have the money.
            const id = body(one(state, cmd.issue(acc), now)) as { id: string; code: string };
            c = cmd.auth(id.id, id.code, s.amount, V2);
          }
          const out = one(state, c, now++);
          expect(word(out)).not.toMatch(/^error:(?!BALANCE_LIMIT)/);
        }
        const audit = state.audit(0);
        expect(audit.problems).toEqual([]);
        // Per authorization: refunded + credited back ≤ captured, and the reversed + owed split is exact.
        for (const d of body(one(state, cmd.list({ accountId: acc }), now)).disputes as Array<Record<string, number | string>>) {
          expect((d.refunded as number) + (d.amount as number) - (d.reversed as number)).toBeLessThanOrEqual(d.captured as number);
          if (d.disputeStatus === 'won_vendor') expect((d.reversed as number) + (d.owed as number)).toBe(d.amount);
          else expect([d.reversed, d.owed]).toEqual([0, 0]);
        }
      }),
      { numRuns: 60 },
    );
  });
});
