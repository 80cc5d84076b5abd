// Family accounts, per-member limits (issue 5 item 11): the holder limits a member; the member's IDs
// (which carry the member) and direct debits (the command's member slot) answer to those limits on
// top of the account's, counted in the member's own hourly buckets; voids, expiries and partial
// captures give back what they release; the holder, and members without limits, are untouched.

import { afterAll, describe, expect, it } from 'vitest';
import { openShard, removeShardPaths, V1 } from './shard-test-support.ts';
import type { ShardState, Outcome, ApprovalOutcome } from './shard-state.ts';
import { Op, Format, type Command, type MemberLimits } from './contract.ts';
import { partitionPrefix } from './partitions.ts';

const U1 = `ac_${partitionPrefix(7)}${(1).toString(16).padStart(16, '0')}`;
const KID = 'us_0007kid00000000000';   // a limited member
const TEEN = 'us_0007teen0000000000';  // a member without limits
const T0 = Date.parse('2026-01-01T00:00:00Z');
const hourMs = 3_600_000;
let tag = 1;
type Body = Record<string, any>;
const body = (o: Outcome): Body => (o as unknown as { body: Body }).body;

afterAll(removeShardPaths);

class Fixture {
  readonly s: ShardState;
  now = T0;
  constructor(funds = 1_000_000) {
    this.s = openShard({ name: 'members-', holdTtlMs: 60_000 });
    this.s.applyBatch([[Op.openAccount, 0, tag++, Format.http, null, U1, 'USD'], [Op.fund, 0, tag++, Format.http, null, U1, funds, 'USD', `f${tag}`]], T0);
  }
  run(c: Command): Outcome {
    return this.s.applyBatch([c], this.now).outcomes[0];
  }
  one(c: Command): Body {
    return body(this.run(c));
  }
  limit(member: string, limits: MemberLimits | null): Body {
    return this.one([Op.accountSettings, 0, tag++, Format.http, null, U1, { member: { userId: member, limits } }]);
  }
  /** An ID issued by `member` (null: the holder). */
  issue(member: string | null): { id: string; code: string } {
    return this.one([Op.issueIds, 0, tag++, Format.http, null, U1, 3600, null, null, `i${tag}`, null, null, null, member]) as any;
  }
  authorize(amount: number, member: string | null, id = this.issue(member)): Outcome {
    return this.run([Op.authorize, 1, tag++, Format.wsMsgpack, tag, V1, id.id, id.code, amount, 'USD', `a${tag}`, null, null, null] as unknown as Command);
  }
  code(o: Outcome): string | null {
    return o.kind === 'approval' ? null : body(o).code;
  }
  op(o: 2 | 3 | 4, authId: string, amount: number | null): Body {
    return this.one([o, 1, tag++, Format.wsMsgpack, tag, V1, authId, amount, `o${tag}`] as Command);
  }
  pay(amount: number, member: string | null): Body {
    return this.one([Op.payVendor, 0, tag++, Format.http, null, U1, V1, amount, 'USD', `p${tag}`, null, member]);
  }
  members(): Body {
    return this.one([Op.getAccount, 0, tag++, Format.http, null, U1, 1]).members;
  }
  audit(): void {
    expect(this.s.audit(0).problems).toEqual([]);
  }
}

describe('per-member limits in the shard', () => {
  it('a member over their per-transaction limit is declined; under it, approved', () => {
    const f = new Fixture();
    expect(f.limit(KID, { perTxn: 1_000 })).toEqual({ userId: KID, limits: { perTxn: 1_000, day: null, week: null, month: null } });
    expect(f.code(f.authorize(1_001, KID))).toBe('MEMBER_LIMIT_PER_TXN');
    expect(f.code(f.authorize(1_000, KID))).toBeNull();
    f.audit();
  });

  it('a member over their rolling day is declined until the window moves on', () => {
    const f = new Fixture();
    f.limit(KID, { day: 2_500 });
    expect(f.code(f.authorize(1_000, KID))).toBeNull();
    expect(f.code(f.authorize(1_000, KID))).toBeNull();
    expect(f.code(f.authorize(501, KID))).toBe('MEMBER_LIMIT_DAY');
    expect(f.code(f.authorize(500, KID))).toBeNull();
    f.now += 25 * hourMs;
    expect(f.code(f.authorize(2_500, KID))).toBeNull();
    f.audit();
  });

  it('week and month windows count the same buckets', () => {
    const f = new Fixture();
    f.limit(KID, { week: 3_000, month: 5_000 });
    expect(f.code(f.authorize(2_000, KID))).toBeNull();
    f.now += 2 * 24 * hourMs;
    expect(f.code(f.authorize(1_001, KID))).toBe('MEMBER_LIMIT_WEEK');
    f.now += 6 * 24 * hourMs;
    expect(f.code(f.authorize(3_000, KID))).toBeNull();
    expect(f.code(f.authorize(1, KID))).toBe('MEMBER_LIMIT_WEEK');
    f.now += 8 * 24 * hourMs;
    expect(f.code(f.authorize(1, KID))).toBe('MEMBER_LIMIT_MONTH'); // 2000 + 3000 within 30 days
  });

  it('the holder and a member without limits are unaffected; their IDs carry nothing', () => {
    const f = new Fixture();
    f.limit(KID, { perTxn: 10, day: 10 });
    expect(f.code(f.authorize(50_000, null))).toBeNull();
    expect(f.code(f.authorize(50_000, TEEN))).toBeNull();
    const a = f.authorize(50_000, null) as ApprovalOutcome;
    expect(a.auth.mb).toBeUndefined();
    f.audit();
  });

  it('the account\'s limits still apply to a member, and come first', () => {
    const f = new Fixture();
    f.one([Op.accountSettings, 0, tag++, Format.http, null, U1, { limits: { perTxn: 500 } }]);
    f.limit(KID, { perTxn: 100 });
    expect(f.code(f.authorize(600, KID))).toBe('LIMIT_PER_TXN');
    expect(f.code(f.authorize(200, KID))).toBe('MEMBER_LIMIT_PER_TXN');
  });

  it('limits set after an ID was issued apply to it (the ID carries its member)', () => {
    const f = new Fixture();
    const id = f.issue(KID);
    f.limit(KID, { perTxn: 100 });
    expect(f.code(f.authorize(101, KID, id))).toBe('MEMBER_LIMIT_PER_TXN');
  });

  it('a void, and a partial capture, give back what they release', () => {
    const f = new Fixture();
    f.limit(KID, { day: 1_000 });
    const a = f.authorize(1_000, KID) as ApprovalOutcome;
    expect(a.kind).toBe('approval');
    expect(a.auth.mb).toEqual([KID, Math.floor(T0 / hourMs), 1_000]);
    expect(f.code(f.authorize(1, KID))).toBe('MEMBER_LIMIT_DAY');
    expect(f.op(Op.void, a.authId, null)).toMatchObject({ status: 'voided' });
    const b = f.authorize(1_000, KID) as ApprovalOutcome;
    expect(b.kind).toBe('approval');
    f.op(Op.capture, b.authId, 600);                          // 400 released
    expect(f.code(f.authorize(401, KID))).toBe('MEMBER_LIMIT_DAY');
    expect(f.code(f.authorize(400, KID))).toBeNull();
    f.audit();
  });

  it('a member\'s direct debit (a payment to a vendor) checks and counts their limits; the holder\'s does not', () => {
    const f = new Fixture();
    f.limit(KID, { perTxn: 1_000, day: 1_500 });
    expect(f.pay(1_001, KID)).toMatchObject({ status: 'declined', code: 'MEMBER_LIMIT_PER_TXN' });
    expect(f.pay(1_000, KID)).toMatchObject({ status: 'paid' });
    expect(f.code(f.authorize(501, KID))).toBe('MEMBER_LIMIT_DAY'); // the payment counted
    expect(f.pay(600, KID)).toMatchObject({ status: 'declined', code: 'MEMBER_LIMIT_DAY' });
    expect(f.pay(5_000, null)).toMatchObject({ status: 'paid' });
    expect(f.pay(5_000, TEEN)).toMatchObject({ status: 'paid' });
    f.audit();
  });

  it('a member\'s token purchase counts too', () => {
    const f = new Fixture();
    f.limit(KID, { day: 1_000 });
    const buy = (count: number) => f.one([Op.tokenBuy, 0, tag++, Format.http, null, U1, count, 'USD', 10, `t${tag}`, 0, KID]);
    expect(buy(100)).not.toMatchObject({ status: 'declined' });
    expect(buy(1)).toMatchObject({ status: 'declined', code: 'MEMBER_LIMIT_DAY' });
    f.audit();
  });

  it('limits are listed, replaced and cleared (clearing forgets the buckets)', () => {
    const f = new Fixture();
    expect(f.members()).toEqual({});
    f.limit(KID, { perTxn: 100, day: 200 });
    f.limit(TEEN, { month: 9_000 });
    expect(f.members()).toEqual({
      [KID]: { perTxn: 100, day: 200, week: null, month: null },
      [TEEN]: { perTxn: null, day: null, week: null, month: 9_000 },
    });
    expect(f.code(f.authorize(200, KID))).toBe('MEMBER_LIMIT_PER_TXN');
    f.limit(KID, { day: 300 });                                 // replaced: no per-transaction limit now
    expect(f.code(f.authorize(200, KID))).toBeNull();
    expect(f.code(f.authorize(101, KID))).toBe('MEMBER_LIMIT_DAY');
    expect(f.limit(KID, null)).toEqual({ userId: KID, limits: { perTxn: null, day: null, week: null, month: null } });
    expect(f.code(f.authorize(5_000, KID))).toBeNull();
    expect(Object.keys(f.members())).toEqual([TEEN]);
    f.limit(TEEN, {});
    expect(f.members()).toEqual({});
    f.audit();
  });
});
