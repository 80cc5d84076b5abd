// The shard state machine against a real LMDB environment: table tests of the lifecycle, the
// in-batch race, replays across a reopen, and fast-check properties over random interleavings of
// issue / authorize / capture / void / refund / expire, checked against a small reference model.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard, tempShardPath, idKey, accountId, V1, V2 } from './shard-test-support.ts';
import { ShardState, type Outcome } from './shard-state.ts';
import { Op, Format, type Command, type FormatCode, type OutboxItem } from './contract.ts';

function openState(holdTtlMs = 60_000, path?: string, confirmTimeoutMs?: number): { state: ShardState; path: string } {
  const p = path ?? tempShardPath('shard-state-');
  return { state: openShard({ path: p, holdTtlMs, confirmTimeoutMs }), path: p };
}


let tag = 1;
const cmd = {
  open: (acc: string): Command => [Op.openAccount, 0, tag++, Format.http, null, acc, 'USD'],
  fund: (acc: string, amount: number, idem = `f${tag}`): Command => [Op.fund, 0, tag++, Format.http, null, acc, amount, 'USD', idem],
  issue: (acc: string, o: { ttl?: number; max?: number | null; vid?: string | null; count?: number | null; mode?: 'confirm' | 'card' | null } = {}): Command =>
    [Op.issueIds, 0, tag++, Format.http, null, acc, o.ttl ?? 600, o.max ?? null, o.vid ?? null, `i${tag}`, o.count ?? null, o.mode ?? null, null],
  auth: (id: string, code: string, amount: number, vid = V1, idem = `a${tag}`, currency = 'USD'): Command =>
    [Op.authorize, 1, tag++, Format.wsMsgpack, tag, vid, id, code, amount, currency, idem],
  capture: (authId: string, amount: number | null = null, vid = V1, idem = `c${tag}`): Command =>
    [Op.capture, 1, tag++, Format.wsMsgpack, tag, vid, authId, amount, idem],
  void: (authId: string, vid = V1, idem = `v${tag}`): Command => [Op.void, 1, tag++, Format.wsMsgpack, tag, vid, authId, null, idem],
  refund: (authId: string, amount: number | null = null, vid = V1, idem = `r${tag}`): Command =>
    [Op.refund, 1, tag++, Format.wsMsgpack, tag, vid, authId, amount, idem],
  account: (acc: string): Command => [Op.getAccount, 0, tag++, Format.http, null, acc],
};

/** A decision in one word: "approved", "declined:CODE", "captured", "error:CODE", ... */
function word(o: Outcome): string {
  if (o.kind === 'approval') return 'approved';
  const b = o.body as { status: string; code?: string };
  return b.code ? `${b.status}:${b.code}` : b.status;
}

function run(state: ShardState, cmds: Command[], now: number): Outcome[] {
  return state.applyBatch(cmds, now).outcomes;
}

function one(state: ShardState, c: Command, now: number): Outcome {
  return run(state, [c], now)[0];
}

function issueOne(state: ShardState, acc: string, now: number, o: Parameters<typeof cmd.issue>[1] = {}) {
  const out = one(state, cmd.issue(acc, o), now);
  expect(out.kind).toBe('reply');
  return (out as unknown as { body: { id: string; code: string } }).body;
}

function balances(state: ShardState, acc: string, now: number) {
  return (one(state, cmd.account(acc), now) as unknown as { body: { balance: number; held: number; available: number } }).body;
}

const T0 = Date.parse('2026-01-01T00:00:00Z');

describe('lifecycle table', () => {
  it('walks issue -> held -> captured -> refunded, one row per step', () => {
    const { state } = openState();
    const acc = accountId(1, 1);
    run(state, [cmd.open(acc), cmd.fund(acc, 1000)], T0);
    const id = issueOne(state, acc, T0, { max: 800 });
    let authId = '';
    const rows: Array<[string, () => Command, string, { balance: number; held: number }]> = [
      ['over the ID limit', () => cmd.auth(id.id, id.code, 801), 'declined:AMOUNT_OVER_LIMIT', { balance: 1000, held: 0 }],
      ['wrong currency', () => cmd.auth(id.id, id.code, 10, V1, 'x1', 'EUR'), 'declined:CURRENCY_MISMATCH', { balance: 1000, held: 0 }],
      ['approve', () => cmd.auth(id.id, id.code, 700), 'approved', { balance: 1000, held: 700 }],
      ['second use', () => cmd.auth(id.id, id.code, 10), 'declined:ID_USED', { balance: 1000, held: 700 }],
      ['refund before capture', () => cmd.refund(authId), 'declined:AUTH_NOT_CAPTURED', { balance: 1000, held: 700 }],
      ['capture above hold', () => cmd.capture(authId, 701), 'declined:AMOUNT_OVER_LIMIT', { balance: 1000, held: 700 }],
      ['other vendor captures', () => cmd.capture(authId, null, V2), 'declined:AUTH_UNKNOWN', { balance: 1000, held: 700 }],
      ['capture part', () => cmd.capture(authId, 500), 'captured', { balance: 500, held: 0 }],
      ['capture again', () => cmd.capture(authId, 1), 'declined:AUTH_CAPTURED', { balance: 500, held: 0 }],
      ['void after capture', () => cmd.void(authId), 'declined:AUTH_CAPTURED', { balance: 500, held: 0 }],
      ['refund part', () => cmd.refund(authId, 200), 'refunded', { balance: 700, held: 0 }],
      ['refund too much', () => cmd.refund(authId, 301), 'declined:AMOUNT_OVER_LIMIT', { balance: 700, held: 0 }],
      ['refund the rest', () => cmd.refund(authId), 'refunded', { balance: 1000, held: 0 }],
      ['refund beyond', () => cmd.refund(authId, 1), 'declined:AMOUNT_OVER_LIMIT', { balance: 1000, held: 0 }],
    ];
    for (const [name, make, expected, money] of rows) {
      const out = one(state, make(), T0 + 1);
      expect(word(out), name).toBe(expected);
      if (out.kind === 'approval') authId = out.authId;
      expect(balances(state, acc, T0 + 1), name).toMatchObject(money);
    }
    expect(state.audit(0)).toMatchObject({ conserved: true, problems: [] });
  });

  it('expires IDs and holds, by the clock and by the sweeper', () => {
    const { state } = openState(10_000);
    const acc = accountId(2, 1);
    run(state, [cmd.open(acc), cmd.fund(acc, 1000)], T0);
    const shortLived = issueOne(state, acc, T0, { ttl: 5 });
    expect(word(one(state, cmd.auth(shortLived.id, shortLived.code, 1), T0 + 5000))).toBe('declined:ID_EXPIRED');

    const id = issueOne(state, acc, T0);
    const held = one(state, cmd.auth(id.id, id.code, 300), T0);
    expect(held.kind).toBe('approval');
    const authId = (held as { authId: string }).authId;
    // Past the hold TTL, capture finds the hold expired even before the sweeper ran.
    expect(word(one(state, cmd.capture(authId), T0 + 10_000))).toBe('declined:AUTH_EXPIRED');
    expect(balances(state, acc, T0 + 10_000)).toMatchObject({ balance: 1000, held: 0 });

    const id2 = issueOne(state, acc, T0);
    const h2 = one(state, cmd.auth(id2.id, id2.code, 400), T0) as { authId: string };
    expect(state.sweep(T0 + 9_999).holdsExpired).toBe(0);
    expect(state.sweep(T0 + 10_000).holdsExpired).toBe(1);
    expect(balances(state, acc, T0 + 10_001)).toMatchObject({ balance: 1000, held: 0 });
    expect(word(one(state, cmd.void(h2.authId), T0 + 10_001))).toBe('declined:AUTH_EXPIRED');
    expect(state.audit(0).conserved).toBe(true);
  });
});

describe('single use under races', () => {
  it('approves one of many uses of an ID inside one batch', () => {
    const { state } = openState();
    const acc = accountId(3, 1);
    run(state, [cmd.open(acc), cmd.fund(acc, 10_000)], T0);
    const id = issueOne(state, acc, T0);
    const outs = run(state, Array.from({ length: 20 }, (_, i) => cmd.auth(id.id, id.code, 10, i % 2 ? V1 : V2, `race${i}`)), T0);
    expect(outs.map(word).filter((w) => w === 'approved')).toHaveLength(1);
    expect(outs.map(word).filter((w) => w === 'declined:ID_USED')).toHaveLength(19);
    expect(balances(state, acc, T0).held).toBe(10);
  });
});

describe('idempotency and restart', () => {
  it('replays an approval after the environment is reopened, with the same round and index', () => {
    const { state, path } = openState();
    const acc = accountId(4, 1);
    run(state, [cmd.open(acc), cmd.fund(acc, 10_000)], T0);
    const id = issueOne(state, acc, T0);
    const first = one(state, cmd.auth(id.id, id.code, 55, V1, 'same'), T0) as { authId: string; auth: { rd: number; ix: number } };
    const round = state.closeRound();
    const leaves = state.roundLeaves(round.round);
    state.close();
    const reopened = openState(60_000, path).state;
    expect(reopened.openRound).toBe(round.round + 1);
    const again = one(reopened, cmd.auth(id.id, id.code, 55, V1, 'same'), T0 + 1000) as typeof first;
    expect(again.authId).toBe(first.authId);
    expect(again.auth).toEqual(first.auth);
    expect(reopened.roundLeaves(round.round)).toEqual(leaves);
    expect(word(one(reopened, cmd.auth(id.id, id.code, 56, V1, 'same'), T0))).toBe('error:IDEMPOTENCY_CONFLICT');
    reopened.close();
  });

  it('an aborted transaction leaves no trace', () => {
    const { state } = openState();
    const acc = accountId(5, 1);
    run(state, [cmd.open(acc), cmd.fund(acc, 1000)], T0);
    const id = issueOne(state, acc, T0);
    const before = balances(state, acc, T0);
    // An unknown op is our bug: it throws inside the transaction after a hold was placed.
    expect(() => run(state, [cmd.auth(id.id, id.code, 100), [99, 0, 0, 0, null] as unknown as Command], T0)).toThrow();
    expect(balances(state, acc, T0)).toEqual(before);
    expect(word(one(state, cmd.auth(id.id, id.code, 100), T0))).toBe('approved');
    expect(state.audit(0).conserved).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: random interleavings against a reference model.

type Step =
  | { k: 'issue'; acc: number; max: number | null; ttlS: number }
  | { k: 'auth'; id: number; amount: number; wrongCode: boolean; vendor: number; replay: boolean }
  | { k: 'capture'; auth: number; amount: number | null }
  | { k: 'void'; auth: number }
  | { k: 'refund'; auth: number; amount: number | null }
  | { k: 'fund'; acc: number; amount: number }
  | { k: 'tick'; ms: number }
  | { k: 'sweep' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('issue' as const), acc: fc.nat(2), max: fc.option(fc.integer({ min: 1, max: 500 })), ttlS: fc.integer({ min: 1, max: 30 }) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('auth' as const), id: fc.nat(40), amount: fc.integer({ min: 1, max: 900 }), wrongCode: fc.integer({ min: 0, max: 6 }).map((n) => n === 0), vendor: fc.nat(1), replay: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('capture' as const), auth: fc.nat(40), amount: fc.option(fc.integer({ min: 1, max: 600 })) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('void' as const), auth: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('refund' as const), auth: fc.nat(40), amount: fc.option(fc.integer({ min: 1, max: 600 })) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('fund' as const), acc: fc.nat(2), amount: fc.integer({ min: 1, max: 2000 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 20_000 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('sweep' as const) }) },
);

describe('properties', () => {
  it('random interleavings conserve money, approve each ID at most once, and agree with the model', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 30, maxLength: 200, size: 'max' }), fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 30 }), (steps, batchSizes) => {
        const holdTtlMs = 40_000;
        const { state } = openState(holdTtlMs);
        let now = T0;
        const accs = [accountId(10, 1), accountId(11, 2), accountId(12, 3)];
        run(state, accs.flatMap((a) => [cmd.open(a), cmd.fund(a, 1000)]), now);
        // Reference model.
        const bal = [1000, 1000, 1000];
        const held = [0, 0, 0];
        const ids: Array<{ id: string; code: string; acc: number; max: number | null; exp: number; used: boolean; bad: number }> = [];
        const auths: Array<{ authId: string; acc: number; amt: number; st: string; cap: number; ref: number; hx: number; vendor: number }> = [];
        const approvedIds = new Set<string>();
        const vendors = [V1, V2];
        const lastAuthIdem = new Map<number, { idem: string; amount: number; vendor: number; code: string; result: string }>();

        const expire = (a: (typeof auths)[number]) => {
          if (a.st === 'held' && now >= a.hx) {
            a.st = 'expired';
            held[a.acc] -= a.amt;
          }
        };

        // Steps are applied in batches; the model walks the same order inside a batch.
        let i = 0;
        let b = 0;
        while (i < steps.length) {
          const size = batchSizes[b++ % batchSizes.length];
          const batch = steps.slice(i, i + size);
          i += size;
          const cmds: Command[] = [];
          const expect_: Array<string | null> = [];
          const after: Array<(o: Outcome) => void> = [];
          for (const st of batch) {
            if (st.k === 'tick' || st.k === 'sweep') continue;
            if (st.k === 'issue') {
              // Issue is applied on its own (the model needs the ID before later steps use it).
              continue;
            }
            if (st.k === 'fund') {
              cmds.push(cmd.fund(accs[st.acc], st.amount));
              bal[st.acc] += st.amount;
              expect_.push('200');
              after.push(() => {});
              continue;
            }
            if (st.k === 'auth') {
              if (ids.length === 0) continue;
              const idIndex = st.id % ids.length;
              const rec = ids[idIndex];
              const prev = lastAuthIdem.get(idIndex);
              const replay = st.replay && prev !== undefined;
              const idem = replay ? prev.idem : `p${tag}`;
              const amount = replay ? prev.amount : st.amount;
              const vendor = replay ? prev.vendor : st.vendor;
              const code = replay ? prev.code : st.wrongCode ? String((Number(rec.code) + 1) % 1000).padStart(3, '0') : rec.code;
              let result: string;
              if (replay) result = prev.result;
              else if (code !== rec.code || rec.bad >= 5) {
                if (code !== rec.code && rec.bad < 5) rec.bad++;
                result = 'declined:ID_UNKNOWN';
              } else if (now >= rec.exp) result = 'declined:ID_EXPIRED';
              else if (rec.used) result = 'declined:ID_USED';
              else if (rec.max !== null && amount > rec.max) result = 'declined:AMOUNT_OVER_LIMIT';
              else if (amount > bal[rec.acc] - held[rec.acc]) result = 'declined:INSUFFICIENT_FUNDS';
              else {
                result = 'approved';
                rec.used = true;
                held[rec.acc] += amount;
                auths.push({ authId: '', acc: rec.acc, amt: amount, st: 'held', cap: 0, ref: 0, hx: now + holdTtlMs, vendor });
                const a = auths[auths.length - 1];
                after.push((o) => {
                  if (o.kind === 'approval') {
                    a.authId = o.authId;
                    expect(approvedIds.has(o.authId)).toBe(false);
                    approvedIds.add(o.authId);
                  }
                });
                cmds.push(cmd.auth(rec.id, code, amount, vendors[vendor], idem));
                expect_.push(result);
                if (!replay) lastAuthIdem.set(idIndex, { idem, amount, vendor, code, result });
                continue;
              }
              if (!replay) lastAuthIdem.set(idIndex, { idem, amount, vendor, code, result });
              cmds.push(cmd.auth(rec.id, code, amount, vendors[vendor], idem));
              expect_.push(result);
              after.push(() => {});
              continue;
            }
            // capture / void / refund on an authorization known from an earlier batch.
            const known = auths.filter((a) => a.authId !== '');
            if (known.length === 0) continue;
            const a = known[st.auth % known.length];
            expire(a);
            let result: string;
            if (st.k === 'capture') {
              const amount = st.amount ?? a.amt;
              if (a.st !== 'held') result = `declined:${a.st === 'expired' ? 'AUTH_EXPIRED' : a.st === 'voided' ? 'AUTH_VOIDED' : 'AUTH_CAPTURED'}`;
              else if (amount > a.amt) result = 'declined:AMOUNT_OVER_LIMIT';
              else {
                result = 'captured';
                held[a.acc] -= a.amt;
                bal[a.acc] -= amount;
                a.st = 'captured';
                a.cap = amount;
              }
              cmds.push(cmd.capture(a.authId, st.amount, vendors[a.vendor]));
            } else if (st.k === 'void') {
              if (a.st !== 'held') result = `declined:${a.st === 'expired' ? 'AUTH_EXPIRED' : a.st === 'voided' ? 'AUTH_VOIDED' : 'AUTH_CAPTURED'}`;
              else {
                result = 'voided';
                held[a.acc] -= a.amt;
                a.st = 'voided';
              }
              cmds.push(cmd.void(a.authId, vendors[a.vendor]));
            } else {
              const amount = st.amount ?? a.cap - a.ref;
              if (a.st === 'expired') result = 'declined:AUTH_EXPIRED';
              else if (a.st === 'voided') result = 'declined:AUTH_VOIDED';
              else if (a.st === 'held') result = 'declined:AUTH_NOT_CAPTURED';
              else if (amount > a.cap - a.ref || amount <= 0) result = 'declined:AMOUNT_OVER_LIMIT';
              else {
                result = 'refunded';
                bal[a.acc] += amount;
                a.ref += amount;
                if (a.ref === a.cap) a.st = 'refunded';
              }
              cmds.push(cmd.refund(a.authId, st.amount, vendors[a.vendor]));
            }
            expect_.push(result);
            after.push(() => {});
          }
          const outs = run(state, cmds, now);
          outs.forEach((o, n) => {
            if (expect_[n] === '200') expect(o.kind === 'reply' && o.status).toBe(200);
            else expect(word(o)).toBe(expect_[n]);
            after[n](o);
          });
          // Issues, ticks and sweeps of this batch happen after it, in order.
          for (const st of batch) {
            if (st.k === 'issue') {
              const body = issueOne(state, accs[st.acc], now, { max: st.max, ttl: st.ttlS });
              ids.push({ id: body.id, code: body.code, acc: st.acc, max: st.max, exp: now + st.ttlS * 1000, used: false, bad: 0 });
            } else if (st.k === 'tick') now += st.ms;
            else if (st.k === 'sweep') {
              state.sweep(now);
              for (const a of auths) expire(a);
            }
          }
          for (let n = 0; n < 3; n++) {
            expect(balances(state, accs[n], now)).toMatchObject({ balance: bal[n], held: held[n] });
          }
          const audit = state.audit(0);
          expect(audit.problems).toEqual([]);
          expect(audit.conserved).toBe(true);
        }
        state.close();
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Users in the loop: random mixes of confirmation-mode authorizations, user decisions racing the
// clock, credit lines, spending limits, pauses and captures. No full model here: the invariants are
// that the audit stays green after every batch (it checks held against every open hold, pending
// ones included, and replays the journal), that every pending authorization ends exactly once
// (one "resolved" event, later decisions refused), and that no balance goes below its credit line.

type UserStep =
  | { k: 'auth'; acc: number; amount: number; mode: 'confirm' | 'card' | null }
  | { k: 'decide'; auth: number; decision: 'approve' | 'decline' | 'fraud' }
  | { k: 'capture'; auth: number }
  | { k: 'void'; auth: number }
  | { k: 'credit'; acc: number; limit: number }
  | { k: 'limits'; acc: number; day: number | null; perTxn: number | null }
  | { k: 'pause'; acc: number; paused: boolean }
  | { k: 'tick'; ms: number }
  | { k: 'sweep' };

const userStepArb: fc.Arbitrary<UserStep> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('auth' as const), acc: fc.nat(1), amount: fc.integer({ min: 1, max: 900 }), mode: fc.constantFrom('confirm' as const, 'card' as const, null) }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('decide' as const), auth: fc.nat(40), decision: fc.constantFrom('approve' as const, 'decline' as const, 'fraud' as const) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('capture' as const), auth: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('void' as const), auth: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('credit' as const), acc: fc.nat(1), limit: fc.integer({ min: 0, max: 3000 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('limits' as const), acc: fc.nat(1), day: fc.option(fc.integer({ min: 1, max: 3000 })), perTxn: fc.option(fc.integer({ min: 1, max: 900 })) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('pause' as const), acc: fc.nat(1), paused: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 40_000 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('sweep' as const) }) },
);

describe('properties with users in the loop', () => {
  it('pending authorizations end exactly once, limits and credit lines hold, and money is conserved', () => {
    // What the runs exercised, so the property cannot pass by never reaching the interesting paths.
    const seen = { approvedByUser: 0, declinedByUser: 0, timedOut: 0, drawnOnCredit: 0 };
    fc.assert(
      fc.property(fc.array(userStepArb, { minLength: 20, maxLength: 150 }), fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 20 }), (steps, batchSizes) => {
        const { state } = openState(60_000, undefined, 30_000);
        let now = T0;
        const accs = [accountId(20, 7), accountId(21, 8)];
        run(state, accs.flatMap((a) => [cmd.open(a), cmd.fund(a, 400)]), now);
        const authIds: string[] = [];
        const resolvedCount = new Map<string, number>();
        const decidedOnce = new Set<string>();
        const count = (events: Array<{ k: string; authId?: string | null }>) => {
          for (const e of events) if (e.k === 'resolved') resolvedCount.set(e.authId!, (resolvedCount.get(e.authId!) ?? 0) + 1);
        };
        let i = 0;
        let b = 0;
        while (i < steps.length) {
          const size = batchSizes[b++ % batchSizes.length];
          const batch = steps.slice(i, i + size);
          i += size;
          const cmds: Command[] = [];
          for (const st of batch) {
            if (st.k === 'auth') {
              const body = issueOne(state, accs[st.acc], now, { ttl: 3600, mode: st.mode });
              cmds.push(cmd.auth(body.id, body.code, st.amount));
            } else if (st.k === 'decide' && authIds.length > 0) {
              const authId = authIds[st.auth % authIds.length];
              cmds.push([Op.decide, 0, tag++, Format.http, null, accs[Number(authId.slice(3, 7)) === 20 ? 0 : 1], authId, st.decision]);
            } else if (st.k === 'capture' && authIds.length > 0) cmds.push(cmd.capture(authIds[st.auth % authIds.length]));
            else if (st.k === 'void' && authIds.length > 0) cmds.push(cmd.void(authIds[st.auth % authIds.length]));
            else if (st.k === 'credit') cmds.push([Op.setCredit, 0, tag++, Format.http, null, accs[st.acc], st.limit, 'active']);
            else if (st.k === 'limits') cmds.push([Op.accountSettings, 0, tag++, Format.http, null, accs[st.acc], { limits: { day: st.day, perTxn: st.perTxn } }]);
            else if (st.k === 'pause') cmds.push([Op.accountSettings, 0, tag++, Format.http, null, accs[st.acc], { paused: st.paused }]);
          }
          const result = state.applyBatch(cmds, now);
          count(result.events);
          result.outcomes.forEach((o, n) => {
            const c = cmds[n];
            if (c[0] === Op.authorize) {
              const authId = o.kind === 'approval' ? o.authId : (o.body as { authId?: string }).authId;
              if (authId && !authIds.includes(authId)) authIds.push(authId);
            }
            if (c[0] === Op.decide && o.kind === 'reply') {
              const authId = c[6] as string;
              const b2 = o.body as { status: string; code?: string };
              if (b2.status === 'ok') {
                if ((o.body as { result: string }).result === 'approved') seen.approvedByUser++;
                else seen.declinedByUser++;
                // A decision is taken once: a second "ok" for the same authorization is a bug.
                expect(decidedOnce.has(authId)).toBe(false);
                decidedOnce.add(authId);
              } else expect(['ALREADY_DECIDED', 'NOT_FOUND']).toContain(b2.code);
            }
          });
          count(result.pushes.map((p) => ({ k: 'resolved', authId: p.authId })));
          for (const st of batch) {
            if (st.k === 'tick') now += st.ms;
            else if (st.k === 'sweep') {
              const swept = state.sweep(now);
              seen.timedOut += swept.pendingTimedOut;
              count(swept.events);
            }
          }
          for (const [authId, n] of resolvedCount) expect(n, authId).toBe(1);
          const audit = state.audit(0);
          expect(audit.problems).toEqual([]);
          expect(audit.conserved).toBe(true);
          for (const acc of accs) {
            const v = balances(state, acc, now) as unknown as { balance: number; held: number; creditLimit: number };
            expect(v.balance).toBeGreaterThanOrEqual(-v.creditLimit);
            if (v.balance < 0) seen.drawnOnCredit++;
            expect(v.held).toBeLessThanOrEqual(v.balance + v.creditLimit);
          }
        }
        state.close();
      }),
      { numRuns: 80 },
    );
    for (const [what, n] of Object.entries(seen)) expect(n, what).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Money between shards: two shards, transfers both ways, a channel that loses, repeats and reorders
// what it carries, and shards that restart from disk. Every transfer is applied exactly once, each
// shard stays conserved, and across shards funding = balances + in flight, with nothing left in
// flight once the outboxes drain.

describe('transfers between shards', () => {
  it('are applied exactly once whatever the channel does, and money is conserved across shards', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({
          from: fc.nat(3), to: fc.nat(3), amount: fc.integer({ min: 1, max: 400 }),
          // What the channel does with this transfer's item, and with the receiver's acknowledgement.
          channel: fc.constantFrom('deliver', 'drop', 'twice', 'late'), ackLost: fc.boolean(),
          restart: fc.integer({ min: 0, max: 9 }).map((n) => n === 0), replay: fc.boolean(),
        }), { minLength: 5, maxLength: 60 }),
        (steps) => {
          const paths = [tempShardPath('xfer-a-'), tempShardPath('xfer-b-')];
          const open = (i: number) => openShard({ path: paths[i], shardId: i });
          const shards = [open(0), open(1)];
          // Accounts 0 and 1 live on shard 0; 2 and 3 on shard 1.
          const accs = [accountId(30, 1), accountId(30, 2), accountId(31, 3), accountId(31, 4)];
          const shardOf = (a: number) => (a < 2 ? 0 : 1);
          for (let a = 0; a < 4; a++) run(shards[shardOf(a)], [cmd.open(accs[a]), cmd.fund(accs[a], 1000)], T0);
          const expected = [1000, 1000, 1000, 1000];
          const late: Array<[number, Command]> = [];
          const sentIds = new Set<string>();
          let last: Command | null = null;

          /** Apply a batch on shard `at` and carry its events: items to their receiver (as the
           * channel says), acknowledgements back to their sender (unless lost). */
          const apply = (at: number, cmds: Command[], channel = 'deliver', ackLost = false): Outcome[] => {
            const r = shards[at].applyBatch(cmds, T0);
            for (const e of r.events) {
              if (e.k === 'outbox') {
                for (const item of e.items) {
                  const c: Command = [Op.deliver, 0, 0, Format.http, null, item];
                  if (channel === 'drop') continue;
                  if (channel === 'late') late.push([e.dest, c]);
                  else for (let k = channel === 'twice' ? 2 : 1; k > 0; k--) apply(e.dest, [c], 'deliver', ackLost);
                }
              } else if (e.k === 'delivered' && !ackLost) {
                apply(e.src, [[Op.ackOutbox, 0, 0, Format.http, null, at, e.seqs]]);
              }
            }
            return r.outcomes;
          };

          for (const st of steps) {
            if (st.from === st.to) continue;
            const c: Command = st.replay && last ? last
              : [Op.transfer, 0, tag++, Format.http, null, accs[st.from], accs[st.to], shardOf(st.to), st.amount, 'USD', `x${tag}`, null];
            const fromIdx = accs.indexOf(c[5] as string);
            const out = apply(shardOf(fromIdx), [c], st.channel, st.ackLost)[0] as unknown as { body: { status: string; transferId?: string } };
            if (out.body.status === 'sent' && !sentIds.has(out.body.transferId!)) {
              // First time this transfer was sent (a replay answers the same transferId).
              sentIds.add(out.body.transferId!);
              expected[fromIdx] -= c[8] as number;
              expected[accs.indexOf(c[6] as string)] += c[8] as number;
            }
            last = c;
            if (st.restart) {
              const i = st.from % 2;
              shards[i].close();
              shards[i] = open(i);
            }
          }
          // Late items arrive now, in reverse order; then the senders resend until nothing is left.
          for (const [dest, c] of late.reverse()) apply(dest, [c]);
          for (let round = 0; round < 5; round++) {
            for (const i of [0, 1]) {
              for (const [dest, items] of shards[i].outboxItems(10_000)) {
                for (const item of items) apply(dest, [[Op.deliver, 0, 0, Format.http, null, item]]);
              }
            }
          }
          for (let a = 0; a < 4; a++) expect(balances(shards[shardOf(a)], accs[a], T0).balance, `account ${a}`).toBe(expected[a]);
          let funding = 0;
          let inAccounts = 0;
          let inFlight = 0;
          for (const sh of shards) {
            const audit = sh.audit(0);
            expect(audit.problems).toEqual([]);
            const u = audit.currencies.USD;
            funding += u.funding;
            inAccounts += u.available + u.held + u.vendorPayable;
            inFlight += u.sentOut - u.receivedIn;
            expect(u.outboxPending).toBe(0);
          }
          expect(inFlight).toBe(0);
          expect(funding).toBe(inAccounts);
          for (const sh of shards) sh.close();
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('resume', () => {
  it('subscribes the resuming session only while the authorization is pending (no trace for decided or unknown ones)', () => {
    const { state } = openState();
    const acc = accountId(1, 7);
    run(state, [cmd.open(acc), cmd.fund(acc, 1000)], T0);
    const id = issueOne(state, acc, T0, { mode: 'confirm' });
    const pending = one(state, cmd.auth(id.id, id.code, 300), T0) as unknown as { body: { status: string; authId: string } };
    expect(pending.body.status).toBe('pending');
    const authId = pending.body.authId;
    const resume = (a: string, session: number, format: FormatCode = Format.wsJson): Command => [Op.resume, session, tag++, format, session === 0 ? null : tag, V1, a];
    const watches = (c: Command, now: number) => state.applyBatch([c], now).events.filter((e) => e.k === 'watch');

    // Pending: the session that resumed (WebSocket) is told the decision later; HTTP (session 0) is not.
    expect(watches(resume(authId, 5), T0 + 1)).toEqual([{ k: 'watch', authId, vendorId: V1, session: 5, format: Format.wsJson }]);
    expect(watches(resume(authId, 0, Format.http), T0 + 1)).toEqual([]);
    // Unknown (a guess, or another vendor's): nothing to watch.
    expect(watches(resume('au_0001zzzzzzzzzz', 5), T0 + 1)).toEqual([]);
    expect(watches([Op.resume, 5, tag++, Format.wsJson, tag, V2, authId], T0 + 1)).toEqual([]);
    // Decided: answered at once, nothing to watch.
    expect(word(one(state, [Op.decide, 0, tag++, Format.http, null, acc, authId, 'decline'], T0 + 2))).toBe('ok');
    expect(watches(resume(authId, 5), T0 + 3)).toEqual([]);
  });
});

describe('prepaid cards in their home shard', () => {
  it('issues from funding, redeems once through the outbox, refuses unknown and mismatched cards', () => {
    const { state } = openState();
    state.shardId = 0;
    const acc = accountId(2, 9);
    run(state, [cmd.open(acc)], T0);
    const issue: Command = [Op.prepaidIssue, 0, tag++, Format.http, null, 'pb_1', [['pc_0002' + 'a'.repeat(32), 700], ['pc_0002' + 'b'.repeat(32), 300]], 'USD'];
    expect(word(one(state, issue, T0))).toBe('ok');
    expect(word(one(state, issue, T0))).toBe('ok'); // a retried batch adds nothing
    expect(state.audit(0).currencies.USD).toMatchObject({ funding: 1000, prepaidOutstanding: 1000 });
    const redeem = (card: string, value: number, idem: string): Command => [Op.prepaidRedeem, 0, tag++, Format.http, null, card, value, 'USD', acc, 0, idem];
    expect(word(one(state, redeem('pc_0002' + 'c'.repeat(32), 700, 'u1'), T0))).toBe('declined:PREPAID_UNKNOWN');
    expect(word(one(state, redeem('pc_0002' + 'a'.repeat(32), 701, 'u2'), T0))).toBe('declined:PREPAID_FORGED');
    const r = state.applyBatch([redeem('pc_0002' + 'a'.repeat(32), 700, 'u3')], T0);
    expect(word(r.outcomes[0])).toBe('redeemed');
    expect(r.events.filter((e) => e.k === 'outbox')).toHaveLength(1);
    expect(word(one(state, redeem('pc_0002' + 'a'.repeat(32), 700, 'u4'), T0))).toBe('declined:PREPAID_REDEEMED');
    const item = (r.events.find((e) => e.k === 'outbox') as { items: OutboxItem[] }).items[0];
    one(state, [Op.deliver, 0, 0, Format.http, null, item], T0);
    expect(balances(state, acc, T0).balance).toBe(700);
    const audit = state.audit(0);
    expect(audit.problems).toEqual([]);
    expect(audit.currencies.USD).toMatchObject({ funding: 1000, prepaidOutstanding: 300, available: 700 });
  });
});
