// History and statements in the shard (issue 5, item 10): table tests of the history filters and
// of the cursor under filters, the statement's reconciliation, the vendor's history index, and a
// fast-check property: for random sequences of fund / authorize / capture / void / refund / payment /
// transfer, the statement of any period reconciles (opening + Σ entries = closing) and consecutive
// periods concatenate to the whole.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openShard, accountId, V1, V2 } from './shard-test-support.ts';
import { ShardState, type Outcome } from './shard-state.ts';
import { Op, Format, type Command, type HistoryFilter } from './contract.ts';

const openState = () => openShard({ name: 'shard-stmt-', holdTtlMs: 7 * 24 * 3_600_000 });

const T0 = Date.parse('2026-01-01T00:00:00Z');
const H = 3_600_000;

let tag = 1;
const all: HistoryFilter = { fromMs: null, toMs: null, kinds: null, currency: null };
const cmd = {
  open: (acc: string): Command => [Op.openAccount, 0, tag++, Format.http, null, acc, 'USD'],
  fund: (acc: string, amount: number): Command => [Op.fund, 0, tag++, Format.http, null, acc, amount, 'USD', `f${tag}`],
  issue: (acc: string): Command => [Op.issueIds, 0, tag++, Format.http, null, acc, 86_400, null, null, `i${tag}`, null, null, null],
  auth: (id: string, code: string, amount: number, vid = V1): Command => [Op.authorize, 0, tag++, Format.http, null, vid, id, code, amount, 'USD', `a${tag}`],
  capture: (authId: string, amount: number | null = null, vid = V1): Command => [Op.capture, 0, tag++, Format.http, null, vid, authId, amount, `c${tag}`],
  void: (authId: string, vid = V1): Command => [Op.void, 0, tag++, Format.http, null, vid, authId, null, `v${tag}`],
  refund: (authId: string, amount: number | null = null, vid = V1): Command => [Op.refund, 0, tag++, Format.http, null, vid, authId, amount, `r${tag}`],
  pay: (acc: string, vid: string, amount: number): Command => [Op.payVendor, 0, tag++, Format.http, null, acc, vid, amount, 'USD', `p${tag}`, '=HYPERLINK("x")'],
  transfer: (from: string, to: string, amount: number): Command => [Op.transfer, 0, tag++, Format.http, null, from, to, 0, amount, 'USD', `t${tag}`, null],
  history: (acc: string, before: number | null, limit: number, filter: Partial<HistoryFilter> = {}): Command =>
    [Op.history, 0, tag++, Format.http, null, acc, before, limit, { ...all, ...filter }],
  vendorHistory: (vid: string, before: number | null, limit: number, filter: Partial<HistoryFilter> = {}): Command =>
    [Op.vendorHistory, 0, tag++, Format.http, null, vid, before, limit, { ...all, ...filter }],
  statement: (acc: string, fromMs: number, toMs: number): Command => [Op.statement, 0, tag++, Format.http, null, acc, fromMs, toMs],
  vendorStatement: (vid: string, fromMs: number, toMs: number): Command => [Op.vendorStatement, 0, tag++, Format.http, null, vid, fromMs, toMs],
  account: (acc: string): Command => [Op.getAccount, 0, tag++, Format.http, null, acc],
};

/** Apply a batch; deliver same-shard transfers at once (the shard is its own receiver here). */
function run(state: ShardState, cmds: Command[], now: number): Outcome[] {
  const r = state.applyBatch(cmds, now);
  const deliveries: Command[] = [];
  for (const e of r.events) if (e.k === 'outbox') for (const item of e.items) deliveries.push([Op.deliver, 0, 0, Format.http, null, item]);
  if (deliveries.length > 0) state.applyBatch(deliveries, now);
  return r.outcomes;
}
function body(o: Outcome): any {
  expect(o.kind).toBe('reply');
  return (o as { body: unknown }).body;
}
function one(state: ShardState, c: Command, now: number): any {
  return body(run(state, [c], now)[0]);
}
function authorize(state: ShardState, acc: string, amount: number, now: number, vid = V1): string {
  const id = one(state, cmd.issue(acc), now) as { id: string; code: string };
  const out = run(state, [cmd.auth(id.id, id.code, amount, vid)], now)[0];
  expect(out.kind).toBe('approval');
  return (out as { authId: string }).authId;
}
/** Every page of a history under one filter, following the cursor. */
function allPages(state: ShardState, make: (before: number | null) => Command, now: number): { entries: any[]; pages: number } {
  const entries: any[] = [];
  let before: number | null = null;
  let pages = 0;
  for (;;) {
    const b = one(state, make(before), now);
    pages++;
    entries.push(...b.entries);
    if (b.next === null) return { entries, pages };
    before = Number(b.next);
    expect(pages).toBeLessThan(1000);
  }
}

/** A small day on one account: fund, a purchase captured in part and refunded in part, a void,
 * a direct payment, a transfer out and back. Hour by hour from T0. */
function aDay(state: ShardState) {
  const a = accountId(5, 1);
  const b = accountId(5, 2);
  run(state, [cmd.open(a), cmd.open(b)], T0);
  run(state, [cmd.fund(a, 10_000)], T0 + 1 * H);
  const au1 = authorize(state, a, 3_000, T0 + 2 * H);
  run(state, [cmd.capture(au1, 2_500)], T0 + 3 * H); // capture 2500, release 500
  run(state, [cmd.refund(au1, 1_000)], T0 + 4 * H);
  const au2 = authorize(state, a, 700, T0 + 5 * H, V2);
  run(state, [cmd.void(au2, V2)], T0 + 6 * H);
  run(state, [cmd.pay(a, V2, 400)], T0 + 7 * H);
  run(state, [cmd.transfer(a, b, 600)], T0 + 8 * H);
  run(state, [cmd.fund(b, 50), cmd.transfer(b, a, 100)], T0 + 9 * H);
  return { a, b, au1, au2 };
}

describe('history filters (table)', () => {
  it('filters by time, kind and currency, newest first', () => {
    const state = openState();
    const { a } = aDay(state);
    const now = T0 + 10 * H;
    const kinds = (f: Partial<HistoryFilter>) => (one(state, cmd.history(a, null, 200, f), now).entries as Array<{ kind: string }>).map((e) => e.kind);
    const rows: Array<[string, Partial<HistoryFilter>, string[]]> = [
      ['everything', {}, ['transfer-in', 'transfer-out', 'payment', 'release', 'hold', 'refund', 'release', 'capture', 'hold', 'fund']],
      ['from 3h (inclusive)', { fromMs: T0 + 3 * H }, ['transfer-in', 'transfer-out', 'payment', 'release', 'hold', 'refund', 'release', 'capture']],
      ['to 3h (exclusive)', { toMs: T0 + 3 * H }, ['hold', 'fund']],
      ['3h to 5h', { fromMs: T0 + 3 * H, toMs: T0 + 5 * H }, ['refund', 'release', 'capture']],
      ['between two entries', { fromMs: T0 + 3 * H + 1, toMs: T0 + 4 * H }, []],
      ['kind hold', { kinds: ['hold'] }, ['hold', 'hold']],
      ['kinds capture and refund', { kinds: ['capture', 'refund'] }, ['refund', 'capture']],
      ['kind and period', { kinds: ['release'], fromMs: T0 + 4 * H }, ['release']],
      ['currency USD', { currency: 'USD' }, ['transfer-in', 'transfer-out', 'payment', 'release', 'hold', 'refund', 'release', 'capture', 'hold', 'fund']],
      ['currency EUR', { currency: 'EUR' }, []],
      ['in the future', { fromMs: T0 + 100 * H }, []],
    ];
    for (const [name, f, expected] of rows) expect(kinds(f), name).toEqual(expected);
  });

  it('keeps the cursor exact under filters: pages of every size concatenate to the filtered whole', () => {
    const state = openState();
    const { a } = aDay(state);
    const now = T0 + 10 * H;
    const filters: Array<Partial<HistoryFilter>> = [{}, { kinds: ['hold', 'release'] }, { fromMs: T0 + 2 * H, toMs: T0 + 8 * H }, { kinds: ['fund'] }];
    for (const f of filters) {
      const whole = one(state, cmd.history(a, null, 200, f), now).entries;
      for (const limit of [1, 2, 3, 7]) {
        const paged = allPages(state, (before) => cmd.history(a, before, limit, f), now);
        expect(paged.entries, JSON.stringify({ f, limit })).toEqual(whole);
      }
    }
  });

  it('a cursor stays exact while new entries arrive at the top', () => {
    const state = openState();
    const { a } = aDay(state);
    const first = one(state, cmd.history(a, null, 3, { kinds: ['hold', 'release', 'fund'] }), T0 + 10 * H);
    run(state, [cmd.fund(a, 5)], T0 + 11 * H); // newer than every cursor
    const rest = allPages(state, (before) => cmd.history(a, before ?? Number(first.next), 3, { kinds: ['hold', 'release', 'fund'] }), T0 + 11 * H);
    expect([...first.entries, ...rest.entries].map((e: { kind: string }) => e.kind)).toEqual(['release', 'hold', 'release', 'hold', 'fund']);
  });
});

describe('statements (table)', () => {
  it('reconcile to the unit, period by period, with signed amounts and totals per kind', () => {
    const state = openState();
    const { a, au1 } = aDay(state);
    const now = T0 + 10 * H;
    const s = one(state, cmd.statement(a, T0 + 2 * H, T0 + 5 * H), now);
    expect(s.opening).toEqual({ balance: 10_000, held: 0 });
    expect(s.entries.map((e: any) => [e.kind, e.amount, e.held, e.reference])).toEqual([
      ['hold', 0, 3_000, au1], ['capture', -2_500, -2_500, au1], ['release', 0, -500, au1], ['refund', 1_000, 0, au1],
    ]);
    expect(s.closing).toEqual({ balance: 8_500, held: 0 });
    expect(s.totals).toEqual({
      hold: { count: 1, amount: 0, held: 3_000 }, capture: { count: 1, amount: -2_500, held: -2_500 },
      release: { count: 1, amount: 0, held: -500 }, refund: { count: 1, amount: 1_000, held: 0 },
    });
    const rows: Array<[string, number, number, { balance: number; held: number }, { balance: number; held: number }, number]> = [
      ['before the account', T0 - 10 * H, T0, { balance: 0, held: 0 }, { balance: 0, held: 0 }, 0],
      ['the first funding', T0, T0 + 2 * H, { balance: 0, held: 0 }, { balance: 10_000, held: 0 }, 1],
      ['a hold open at the end', T0 + 5 * H, T0 + 6 * H, { balance: 8_500, held: 0 }, { balance: 8_500, held: 700 }, 1],
      ['the whole day', T0, T0 + 10 * H, { balance: 0, held: 0 }, { balance: 7_600, held: 0 }, 10],
      ['after everything', T0 + 10 * H, T0 + 20 * H, { balance: 7_600, held: 0 }, { balance: 7_600, held: 0 }, 0],
    ];
    for (const [name, from, to, opening, closing, n] of rows) {
      const st = one(state, cmd.statement(a, from, to), now);
      expect([st.opening, st.closing, st.entries.length], name).toEqual([opening, closing, n]);
    }
    expect(one(state, cmd.account(a), now)).toMatchObject({ balance: 7_600, held: 0 });
  });

  it('answers PERIOD_TOO_LONG beyond the entries one statement holds, ACCOUNT_UNKNOWN for no account', () => {
    const state = openState();
    const a = accountId(6, 1);
    run(state, [cmd.open(a)], T0);
    // 10,001 fundings in a few batches (each one journal leg).
    for (let k = 0; k < 11; k++) run(state, Array.from({ length: k === 10 ? 1 : 1000 }, () => cmd.fund(a, 1)), T0 + k);
    expect(one(state, cmd.statement(a, T0, T0 + 100), T0 + 100)).toMatchObject({ status: 'error', code: 'PERIOD_TOO_LONG' });
    expect(one(state, cmd.statement(a, T0, T0 + 10), T0 + 100).entries).toHaveLength(10_000);
    expect(one(state, cmd.statement(accountId(6, 2), T0, T0 + 10), T0)).toMatchObject({ code: 'ACCOUNT_UNKNOWN' });
  });

  it('also reconciles in the transaction that changes the account (its own legs are not yet in history)', () => {
    const state = openState();
    const a = accountId(7, 1);
    run(state, [cmd.open(a), cmd.fund(a, 100)], T0);
    const [, s] = run(state, [cmd.fund(a, 50), cmd.statement(a, T0, T0 + H)], T0 + 1).map(body);
    expect([s.opening, s.closing]).toEqual([{ balance: 0, held: 0 }, { balance: 100, held: 0 }]);
  });
});

describe('history written before statements', () => {
  it('records without running balances: the balances are walked back from the account, and still reconcile', () => {
    const state = openState();
    const { a } = aDay(state);
    const now = T0 + 10 * H;
    const cuts = [T0, T0 + 2 * H, T0 + 4 * H + 1, T0 + 7 * H, T0 + 20 * H];
    const statements = () => cuts.slice(1).map((to, k) => one(state, cmd.statement(a, cuts[k], to), now));
    const before = statements();
    // Strip the balances from every record, as an older version wrote them.
    const hist = state.env.openDB<unknown[], [string, number, number]>('hist', { encoding: 'msgpack' });
    state.env.transactionSync(() => {
      for (const { key, value } of hist.getRange({ start: [a, 0], end: [a, Number.MAX_SAFE_INTEGER] })) hist.putSync(key, value.slice(0, 6));
    });
    expect(statements()).toEqual(before);
    // A record of each kind mixed: newer records carry balances again.
    run(state, [cmd.fund(a, 11)], now);
    const after = one(state, cmd.statement(a, T0, now + 1), now + 1);
    expect(after.closing).toEqual({ balance: 7_611, held: 0 });
    expect(after.opening).toEqual({ balance: 0, held: 0 });
  });
});

describe('vendor history (table)', () => {
  it('records captures, refunds and payments (not holds, voids or releases), naming no account or payment', () => {
    const state = openState();
    const { a, au1 } = aDay(state);
    const now = T0 + 10 * H;
    const v1 = one(state, cmd.vendorHistory(V1, null, 200), now).entries;
    expect(v1.map((e: any) => [e.kind, e.amount, e.authId])).toEqual([['refund', -1_000, au1], ['capture', 2_500, au1]]);
    const v2 = one(state, cmd.vendorHistory(V2, null, 200), now).entries;
    expect(v2.map((e: any) => [e.kind, e.amount, e.authId])).toEqual([['payment', 400, undefined]]);
    const text = JSON.stringify([v1, v2]);
    expect(text).not.toContain(a);
    expect(text).not.toContain('pm_');
    expect(text).not.toContain('HYPERLINK');
    // Filters and the cursor, as for users.
    expect(one(state, cmd.vendorHistory(V1, null, 200, { kinds: ['capture'] }), now).entries).toHaveLength(1);
    expect(one(state, cmd.vendorHistory(V1, null, 200, { fromMs: T0 + 4 * H }), now).entries).toHaveLength(1);
    const paged = allPages(state, (before) => cmd.vendorHistory(V1, before, 1), now);
    expect(paged.entries).toEqual(v1);
    const st = one(state, cmd.vendorStatement(V1, T0, T0 + 24 * H), now);
    expect(st.entries.map((e: any) => e.kind)).toEqual(['capture', 'refund']);
  });
});

describe('statement properties', () => {
  it('any period reconciles, and consecutive periods concatenate to the whole', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('fund' as const), who: fc.nat(1), amount: fc.integer({ min: 1, max: 5_000 }) }),
      fc.record({ k: fc.constant('auth' as const), who: fc.nat(1), amount: fc.integer({ min: 1, max: 3_000 }) }),
      fc.record({ k: fc.constant('capture' as const), pick: fc.nat(), part: fc.boolean() }),
      fc.record({ k: fc.constant('void' as const), pick: fc.nat() }),
      fc.record({ k: fc.constant('refund' as const), pick: fc.nat(), amount: fc.integer({ min: 1, max: 3_000 }) }),
      fc.record({ k: fc.constant('pay' as const), who: fc.nat(1), amount: fc.integer({ min: 1, max: 2_000 }) }),
      fc.record({ k: fc.constant('transfer' as const), who: fc.nat(1), amount: fc.integer({ min: 1, max: 2_000 }) }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.record({ op, gap: fc.constantFrom(0, 0, 1, 7, 60_000) }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: -10, max: 2_500_000 }), { minLength: 3, maxLength: 3 }),
        (steps, cutsRaw) => {
          const state = openState();
          const accs = [accountId(9, 1), accountId(9, 2)];
          run(state, accs.map(cmd.open), T0);
          const auths: string[] = [];
          let now = T0;
          for (const { op: o, gap } of steps) {
            now += gap;
            const acc = 'who' in o ? accs[o.who] : accs[0];
            const pick = 'pick' in o && auths.length > 0 ? auths[o.pick % auths.length] : null;
            let c: Command | null = null;
            if (o.k === 'fund') c = cmd.fund(acc, o.amount);
            else if (o.k === 'pay') c = cmd.pay(acc, V2, o.amount);
            else if (o.k === 'transfer') c = cmd.transfer(acc, accs[1 - o.who], o.amount);
            else if (o.k === 'capture' && pick) c = cmd.capture(pick, o.part ? 1 : null);
            else if (o.k === 'void' && pick) c = cmd.void(pick);
            else if (o.k === 'refund' && pick) c = cmd.refund(pick, o.amount);
            if (o.k === 'auth') {
              const id = one(state, cmd.issue(acc), now) as { id: string; code: string };
              const out = run(state, [cmd.auth(id.id, id.code, o.amount)], now)[0];
              if (out.kind === 'approval') auths.push(out.authId);
            } else if (c) run(state, [c], now);
          }
          const end = now + 1;
          const [t0, t1, t2] = cutsRaw.map((x) => T0 + x).sort((x, y) => x - y);
          for (const acc of accs) {
            const whole = one(state, cmd.statement(acc, T0 - 1, end), end);
            const account = one(state, cmd.account(acc), end);
            // The whole life: from an empty account to the account as it is.
            expect(whole.opening).toEqual({ balance: 0, held: 0 });
            expect(whole.closing).toEqual({ balance: account.balance, held: account.held });
            if (t0 === t1 || t1 === t2) continue;
            const s01 = one(state, cmd.statement(acc, t0, t1), end);
            const s12 = one(state, cmd.statement(acc, t1, t2), end);
            const s02 = one(state, cmd.statement(acc, t0, t2), end);
            for (const s of [s01, s12, s02]) {
              const sum = s.entries.reduce((x: number, e: { amount: number }) => x + e.amount, 0);
              const held = s.entries.reduce((x: number, e: { held: number }) => x + e.held, 0);
              expect(s.opening.balance + sum).toBe(s.closing.balance);
              expect(s.opening.held + held).toBe(s.closing.held);
              const byKind = Object.values(s.totals as Record<string, { amount: number }>).reduce((x, t) => x + t.amount, 0);
              expect(byKind).toBe(sum);
            }
            expect(s01.closing).toEqual(s12.opening);
            expect(s01.opening).toEqual(s02.opening);
            expect(s12.closing).toEqual(s02.closing);
            expect([...s01.entries, ...s12.entries]).toEqual(s02.entries);
          }
          // The vendor side: consecutive periods concatenate too, and net = Σ captures + payments − refunds.
          if (t0 < t1 && t1 < t2) {
            for (const vid of [V1, V2]) {
              const p = (from: number, to: number) => one(state, cmd.vendorStatement(vid, from, to), end).entries;
              expect([...p(t0, t1), ...p(t1, t2)]).toEqual(p(t0, t2));
            }
          }
          state.close();
        },
      ),
      { numRuns: 100 },
    );
  });
});
