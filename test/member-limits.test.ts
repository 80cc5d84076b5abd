// Family accounts, per-member limits (issue 5 item 11), against a real switch on 127.0.0.1: the
// holder limits a member; the member's ID purchases above the limit decline in the shard, under it
// approve; the member cannot lift it; the holder's own purchases are untouched; a member's payment to
// a vendor counts too; bad input at the new endpoint changes nothing. The audit conserves money.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess, type Fixture,
} from './support/switch-process.ts';

let s: SwitchProcess;
let f: Fixture;
let vendor: VendorClient;
let member: { userId: string; token: string };
let n = 0;
const idem = () => `ml-${n++}`;
const limitsOf = (userId: string) => `/v1/accounts/me/members/${userId}/limits`;

beforeAll(async () => {
  s = await startSwitchProcess();
  f = await setupVendorAndUser(s, 100_000);
  vendor = await VendorClient.connect(s, f.apiKey);
  const r = await http(s, 'POST', '/v1/accounts/me/members', { email: `kid${Date.now()}@example.com`, password: 'the kid\'s own password' }, f.token);
  expect(r.status).toBe(201);
  member = r.body;
});

afterAll(async () => {
  vendor?.close();
  await s?.kill();
});

async function buy(token: string, amount: number): Promise<any> {
  const id = await issueId(s, token);
  return vendor.request({ op: 'authorize', id: id.id, code: id.code, amount, currency: 'USD', idem: idem() });
}

describe('per-member limits', () => {
  it('the holder limits a member: the member\'s ID purchases over it decline, under it approve', async () => {
    const set = await http(s, 'PUT', limitsOf(member.userId), { perTxn: 2_000, day: 3_000 }, f.token);
    expect(set).toMatchObject({ status: 200, body: { userId: member.userId, limits: { perTxn: 2_000, day: 3_000, week: null, month: null } } });
    const listed = (await http(s, 'GET', '/v1/accounts/me/members', undefined, member.token)).body.members;
    expect(listed).toEqual(expect.arrayContaining([
      expect.objectContaining({ userId: f.userId, holder: true, limits: null }),
      expect.objectContaining({ userId: member.userId, holder: false, limits: { perTxn: 2_000, day: 3_000, week: null, month: null } }),
    ]));

    expect(await buy(member.token, 2_001)).toMatchObject({ status: 'declined', code: 'MEMBER_LIMIT_PER_TXN' });
    expect(await buy(member.token, 2_000)).toMatchObject({ status: 'approved' });
    expect(await buy(member.token, 1_001)).toMatchObject({ status: 'declined', code: 'MEMBER_LIMIT_DAY' });
    // The holder's purchases are not the member's: no limits of their own here.
    expect(await buy(f.token, 10_000)).toMatchObject({ status: 'approved' });
    // A member's payment to a vendor counts in the same day.
    expect((await http(s, 'POST', '/v1/payments', { vendorId: f.vendorId, amount: 1_001, currency: 'USD', idem: idem() }, member.token)).body)
      .toEqual({ status: 'declined', code: 'MEMBER_LIMIT_DAY' });
    expect((await http(s, 'POST', '/v1/payments', { vendorId: f.vendorId, amount: 1_000, currency: 'USD', idem: idem() }, member.token)).body)
      .toMatchObject({ status: 'paid' });
    expect(await buy(member.token, 1)).toMatchObject({ status: 'declined', code: 'MEMBER_LIMIT_DAY' });
  });

  it('the member cannot lift their own limit, nor set the holder\'s', async () => {
    for (const target of [member.userId, f.userId]) {
      const r = await http(s, 'PUT', limitsOf(target), {}, member.token);
      expect(r).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    }
    expect(await buy(member.token, 2_001)).toMatchObject({ status: 'declined', code: 'MEMBER_LIMIT_PER_TXN' });
  });

  it('bad input is refused and changes nothing', async () => {
    const other = await setupVendorAndUser(s, 0);
    const cases: Array<[string, unknown, number]> = [
      [member.userId, { perTxn: 0 }, 400],
      [member.userId, { day: -5 }, 400],
      [member.userId, { week: 1.5 }, 400],
      [member.userId, { month: '100' }, 400],
      [member.userId, { perTxn: 1e18 }, 400],
      [member.userId, { hourly: 100 }, 400],
      [member.userId, '[1]', 400],
      [f.userId, { perTxn: 100 }, 400],        // the holder has no member limits
      [other.userId, { perTxn: 100 }, 404],    // someone else's user
      ['us_nobody', { perTxn: 100 }, 404],
    ];
    for (const [target, body, status] of cases) {
      const r = await http(s, 'PUT', limitsOf(target), body, f.token);
      expect(r.status, JSON.stringify([target, body, r.body])).toBe(status);
    }
    expect((await http(s, 'PUT', limitsOf(member.userId), { perTxn: 100 }, undefined)).status).toBe(401);
    const listed = (await http(s, 'GET', '/v1/accounts/me/members', undefined, f.token)).body.members;
    expect(listed.find((m: { userId: string }) => m.userId === member.userId).limits).toEqual({ perTxn: 2_000, day: 3_000, week: null, month: null });
  });

  it('the holder clears the limits: the member buys freely again; the audit conserves money', async () => {
    const r = await http(s, 'PUT', limitsOf(member.userId), { perTxn: null, day: null }, f.token);
    expect(r.body).toEqual({ userId: member.userId, limits: { perTxn: null, day: null, week: null, month: null } });
    expect(await buy(member.token, 5_000)).toMatchObject({ status: 'approved' });
    const listed = (await http(s, 'GET', '/v1/accounts/me/members', undefined, f.token)).body.members;
    expect(listed.every((m: { limits: unknown }) => m.limits === null)).toBe(true);
    expect((await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body.conserved).toBe(true);
  });
});
