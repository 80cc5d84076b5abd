// Disputes against a real switch on 127.0.0.1 (seed 003 claim 14): the user disputes a captured
// charge and is credited at once; the vendor accepts, or contests with evidence (over HTTP and over
// its WebSocket) and an operator decides each way; every step reaches the user's sessions and the
// vendor's; bad input at every new endpoint; other users and other vendors are refused; the audit
// conserves money after all of it.

import { afterAll, describe, expect, it } from 'vitest';
import {
  startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess, type Fixture,
} from './support/switch-process.ts';
import { UserClient } from './support/user-client.ts';

let s: SwitchProcess | undefined;
afterAll(async () => {
  await s?.kill('SIGKILL');
});

let n = 0;
/** A captured charge of `amount` on f's account, by f's vendor. */
async function charge(sw: SwitchProcess, f: Fixture, amount: number): Promise<string> {
  const id = await issueId(sw, f.token);
  const a = await http(sw, 'POST', '/v1/authorize', { id: id.id, code: id.code, amount, currency: 'USD', idem: `au-${n++}` }, f.apiKey);
  expect(a.body.status).toBe('approved');
  const c = await http(sw, 'POST', '/v1/capture', { authId: a.body.authId, idem: `cap-${n++}` }, f.apiKey);
  expect(c.body.status).toBe('captured');
  return a.body.authId;
}

const balance = async (sw: SwitchProcess, token: string) => (await http(sw, 'GET', '/v1/accounts/me', undefined, token)).body.balance;

async function conserved(sw: SwitchProcess) {
  const a = await http(sw, 'GET', '/v1/admin/audit', undefined, sw.adminToken);
  expect(a.body.conserved, JSON.stringify(a.body)).toBe(true);
  return a.body;
}

describe('disputes', () => {
  it('user opens, vendor accepts; vendor contests and the operator decides each way; everyone is told', async () => {
    s = await startSwitchProcess();
    const f = await setupVendorAndUser(s, 10_000);
    const user = await UserClient.connect(s, f.token);
    const vendorWs = await VendorClient.connect(s, f.apiKey, false);

    // 1. Opened and accepted: the credit stands.
    const a = await charge(s, f, 1000);
    expect(await balance(s, f.token)).toBe(9000);
    const opened = await http(s, 'POST', '/v1/disputes', { authId: a, amount: 400, reason: 'arrived broken', idem: 'd1' }, f.token);
    expect(opened.status).toBe(200);
    expect(opened.body).toMatchObject({ status: 'opened', authId: a, disputeStatus: 'open', amount: 400, captured: 1000, reason: 'arrived broken' });
    expect(await balance(s, f.token)).toBe(9400);
    expect(await user.nextEvent((e) => e.event === 'dispute' && e.authId === a && e.status === 'open')).toMatchObject({ amount: 400, by: 'user', vendorName: 'Test Shop' });
    // The vendor's session hears of it, without the account.
    await expect.poll(() => vendorWs.unsolicited.find((e) => e.event === 'dispute' && e.authId === a)).toMatchObject({ status: 'open', amount: 400 });
    expect(JSON.stringify(vendorWs.unsolicited)).not.toContain(f.accountId);
    // A replay answers the same, and moves nothing.
    expect((await http(s, 'POST', '/v1/disputes', { authId: a, amount: 400, reason: 'arrived broken', idem: 'd1' }, f.token)).body).toEqual(opened.body);
    expect(await balance(s, f.token)).toBe(9400);
    const vendorList = await http(s, 'GET', '/v1/vendor/disputes?status=open', undefined, f.apiKey);
    expect(vendorList.body.disputes.map((d: { authId: string }) => d.authId)).toEqual([a]);
    expect(vendorList.body.disputes[0].accountId).toBeUndefined();
    const accepted = await http(s, 'POST', `/v1/disputes/${a}/respond`, { decision: 'accept', idem: 'r1' }, f.apiKey);
    expect(accepted.body).toMatchObject({ status: 'accepted', disputeStatus: 'accepted' });
    expect(accepted.body.accountId).toBeUndefined(); // the vendor's answer does not name the account either
    expect(await user.nextEvent((e) => e.event === 'dispute' && e.authId === a && e.status === 'accepted')).toMatchObject({ by: 'vendor' });
    // The refund left for the vendor is what the dispute did not give back.
    expect((await http(s, 'POST', '/v1/refund', { authId: a, amount: 601, idem: 'rf1' }, f.apiKey)).body.code).toBe('AMOUNT_OVER_LIMIT');
    expect((await http(s, 'POST', '/v1/refund', { authId: a, amount: 600, idem: 'rf2' }, f.apiKey)).body.status).toBe('refunded');
    expect(await balance(s, f.token)).toBe(10_000);

    // 2. Contested over the WebSocket, decided for the user: the credit stands.
    const b = await charge(s, f, 700);
    expect((await http(s, 'POST', '/v1/disputes', { authId: b, reason: 'never arrived', idem: 'd2' }, f.token)).body.amount).toBe(700);
    const contested = await vendorWs.request({ op: 'dispute', authId: b, decision: 'contest', evidence: 'tracking says delivered', evidenceUrl: 'https://shop.example/pod/7', idem: 'r2' });
    expect(contested).toMatchObject({ status: 'contested', evidence: 'tracking says delivered', evidenceUrl: 'https://shop.example/pod/7' });
    expect(JSON.stringify(contested)).not.toContain(f.accountId);
    const queue = await http(s, 'GET', '/v1/admin/disputes?status=contested', undefined, s.adminToken);
    expect(queue.body.disputes.map((d: { authId: string }) => d.authId)).toEqual([b]);
    expect(queue.body.disputes[0]).toMatchObject({ accountId: f.accountId, vendorName: 'Test Shop' });
    const forUser = await http(s, 'POST', `/v1/admin/disputes/${b}/decide`, { winner: 'user', note: 'no signature on the proof', idem: 'o1' }, s.adminToken);
    expect(forUser.body).toMatchObject({ status: 'won_user', note: 'no signature on the proof', reversed: 0, owed: 0 });
    expect(await balance(s, f.token)).toBe(10_000);
    expect(await user.nextEvent((e) => e.event === 'dispute' && e.authId === b && e.status === 'won_user')).toMatchObject({ by: 'operator' });

    // 3. Contested, decided for the vendor: the credit is reversed.
    const c = await charge(s, f, 300);
    await http(s, 'POST', '/v1/disputes', { authId: c, reason: 'wrong size', idem: 'd3' }, f.token);
    expect(await balance(s, f.token)).toBe(10_000);
    await http(s, 'POST', `/v1/disputes/${c}/respond`, { decision: 'contest', evidence: 'the size ordered', idem: 'r3' }, f.apiKey);
    const forVendor = await http(s, 'POST', `/v1/admin/disputes/${c}/decide`, { winner: 'vendor', note: 'as ordered', idem: 'o2' }, s.adminToken);
    expect(forVendor.body).toMatchObject({ status: 'won_vendor', reversed: 300, owed: 0 });
    expect(await balance(s, f.token)).toBe(9700);
    const decidedAgain = await http(s, 'POST', `/v1/admin/disputes/${c}/decide`, { winner: 'user', note: 'changed my mind', idem: 'o3' }, s.adminToken);
    expect(decidedAgain.body).toEqual({ status: 'declined', code: 'DISPUTE_DECIDED' });

    // The user's list, newest first, with every step.
    const mine = await http(s, 'GET', '/v1/disputes', undefined, f.token);
    expect(mine.body.disputes.map((d: { authId: string }) => d.authId)).toEqual([c, b, a]);
    expect(mine.body.disputes[0].history.map((h: { by: string; status: string }) => `${h.by}:${h.status}`)).toEqual(['user:open', 'vendor:contested', 'operator:won_vendor']);
    const audit = await conserved(s);
    expect(audit.shards.some((sh: { currencies: { USD?: { disputeOwed: number } } }) => sh.currencies.USD !== undefined)).toBe(true);
    // Statements show the dispute legs and still reconcile, for the user and for the vendor.
    const period = `from=${encodeURIComponent(new Date(Date.now() - 3600_000).toISOString())}&to=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`;
    const mineStmt = (await http(s, 'GET', `/v1/accounts/me/statement?${period}`, undefined, f.token)).body;
    const kinds = mineStmt.entries.map((e: { kind: string }) => e.kind);
    expect(kinds).toContain('dispute-credit');
    expect(kinds).toContain('dispute-reversal');
    expect(mineStmt.closing.balance).toBe(await balance(s, f.token));
    const theirs = (await http(s, 'GET', `/v1/vendor/statement?${period}`, undefined, f.apiKey)).body;
    expect(theirs.currencies.USD.disputes).toBeLessThan(0);
    const t = theirs.currencies.USD;
    expect(t.net).toBe(t.captured - t.refunded + t.payments + t.disputes);
    user.close();
    vendorWs.close();
  });

  it('collects what a lost dispute left owed from the next fund; both sides are told', async () => {
    s ??= await startSwitchProcess();
    const f = await setupVendorAndUser(s, 1000);
    const user = await UserClient.connect(s, f.token);
    const vendorWs = await VendorClient.connect(s, f.apiKey, false);
    const a = await charge(s, f, 300);
    await http(s, 'POST', '/v1/disputes', { authId: a, reason: 'never arrived', idem: 'od1' }, f.token);
    await charge(s, f, 1000); // the user spends everything, the dispute's credit included
    const ruled = await http(s, 'POST', `/v1/admin/disputes/${a}/decide`, { winner: 'vendor', note: 'delivered', idem: 'oo1' }, s.adminToken);
    expect(ruled.body).toMatchObject({ status: 'won_vendor', reversed: 0, owed: 300 });
    // 200 arrives: all of it pays the debt.
    const funded = await http(s, 'POST', `/v1/admin/accounts/${f.accountId}/fund`, { amount: 200, currency: 'USD', idem: 'of1' }, s.adminToken);
    expect(funded.body.balance).toBe(0);
    expect(await user.nextEvent((e) => e.event === 'dispute' && e.authId === a && e.collected === 200))
      .toMatchObject({ status: 'won_vendor', reversed: 200, owed: 100, by: 'operator' });
    await expect.poll(() => vendorWs.unsolicited.find((e) => e.event === 'dispute' && e.authId === a && e.collected === 200)).toMatchObject({ owed: 100 });
    // 500 more: the last 100 is paid, 400 stays.
    await http(s, 'POST', `/v1/admin/accounts/${f.accountId}/fund`, { amount: 500, currency: 'USD', idem: 'of2' }, s.adminToken);
    expect(await balance(s, f.token)).toBe(400);
    const mine = await http(s, 'GET', '/v1/disputes', undefined, f.token);
    expect(mine.body.disputes.find((d: { authId: string }) => d.authId === a)).toMatchObject({ reversed: 300, owed: 0 });
    const audit = await conserved(s);
    expect(audit.problems ?? []).toEqual([]);
    user.close();
    vendorWs.close();
  });

  it('refuses other users and other vendors, and bad input at every endpoint', async () => {
    s ??= await startSwitchProcess();
    const f = await setupVendorAndUser(s, 10_000);
    const g = await setupVendorAndUser(s, 10_000); // another user and another vendor
    const a = await charge(s, f, 500);
    // Another user: as if the authorization did not exist.
    expect((await http(s, 'POST', '/v1/disputes', { authId: a, reason: 'not mine', idem: 'x1' }, g.token)).body).toEqual({ status: 'declined', code: 'AUTH_UNKNOWN' });
    await http(s, 'POST', '/v1/disputes', { authId: a, reason: 'mine', idem: 'x2' }, f.token);
    // Another vendor: the same.
    expect((await http(s, 'POST', `/v1/disputes/${a}/respond`, { decision: 'accept', idem: 'x3' }, g.apiKey)).body).toEqual({ status: 'declined', code: 'AUTH_UNKNOWN' });
    expect((await http(s, 'GET', '/v1/vendor/disputes', undefined, g.apiKey)).body.disputes).toEqual([]);
    expect((await http(s, 'GET', '/v1/disputes', undefined, g.token)).body.disputes).toEqual([]);
    // Wrong principals altogether.
    expect((await http(s, 'POST', '/v1/disputes', { authId: a, reason: 'x', idem: 'x4' }, f.apiKey)).status).toBe(401);
    expect((await http(s, 'POST', `/v1/disputes/${a}/respond`, { decision: 'accept', idem: 'x5' }, f.token)).status).toBe(401);
    expect((await http(s, 'GET', '/v1/admin/disputes', undefined, f.token)).status).toBe(401);
    expect((await http(s, 'POST', `/v1/admin/disputes/${a}/decide`, { winner: 'user', note: 'x', idem: 'x6' }, f.apiKey)).status).toBe(401);
    expect((await http(s, 'GET', '/v1/vendor/disputes', undefined, f.token)).status).toBe(401);
    // Bad input, one row per mistake.
    const long = 'x'.repeat(2001);
    const bad: Array<[string, string, unknown, string]> = [
      ['POST', '/v1/disputes', { authId: 'au_nope', reason: 'r', idem: 'b1' }, f.token],
      ['POST', '/v1/disputes', { authId: a, reason: '', idem: 'b2' }, f.token],
      ['POST', '/v1/disputes', { authId: a, reason: 'r\u202e', idem: 'b3' }, f.token],
      ['POST', '/v1/disputes', { authId: a, reason: 'r', amount: -1, idem: 'b4' }, f.token],
      ['POST', '/v1/disputes', { authId: a, reason: 'r', amount: 1.5, idem: 'b5' }, f.token],
      ['POST', '/v1/disputes', { authId: a, reason: 'r' }, f.token],
      ['POST', '/v1/disputes', { authId: a, reason: 'r', idem: 'b6', extra: 1 }, f.token],
      ['GET', '/v1/disputes?status=closed', undefined, f.token],
      ['GET', '/v1/disputes?limit=0', undefined, f.token],
      ['POST', `/v1/disputes/${a}/respond`, { decision: 'maybe', idem: 'b7' }, f.apiKey],
      ['POST', `/v1/disputes/${a}/respond`, { decision: 'contest', idem: 'b8' }, f.apiKey],
      ['POST', `/v1/disputes/${a}/respond`, { decision: 'contest', evidence: long, idem: 'b9' }, f.apiKey],
      ['POST', `/v1/disputes/${a}/respond`, { decision: 'contest', evidence: 'e', evidenceUrl: 'javascript:alert(1)', idem: 'b10' }, f.apiKey],
      ['POST', `/v1/disputes/${a}/respond`, { decision: 'accept', evidence: 'e', idem: 'b11' }, f.apiKey],
      ['POST', '/v1/disputes/au_zz/respond', { decision: 'accept', idem: 'b12' }, f.apiKey],
      ['GET', '/v1/vendor/disputes?limit=1000', undefined, f.apiKey],
      ['GET', '/v1/admin/disputes?status=nope', undefined, s.adminToken],
      ['POST', `/v1/admin/disputes/${a}/decide`, { winner: 'nobody', note: 'n', idem: 'b13' }, s.adminToken],
      ['POST', `/v1/admin/disputes/${a}/decide`, { winner: 'user', idem: 'b14' }, s.adminToken],
      ['POST', `/v1/admin/disputes/${a}/decide`, { winner: 'user', note: 'n' }, s.adminToken],
      ['POST', '/v1/admin/disputes/au_zz/decide', { winner: 'user', note: 'n', idem: 'b15' }, s.adminToken],
    ];
    for (const [method, path, body, token] of bad) {
      const r = await http(s, method, path, body, token);
      expect([r.status, r.body.code], `${method} ${path} ${JSON.stringify(body)}`).toEqual([400, 'BAD_REQUEST']);
    }
    // Over the vendor WebSocket too.
    const ws = await VendorClient.connect(s, f.apiKey, false);
    expect(await ws.request({ op: 'dispute', authId: a, decision: 'contest', idem: 'w1' })).toMatchObject({ status: 'error', code: 'BAD_REQUEST' });
    expect(await ws.request({ op: 'dispute', authId: 'au_x', decision: 'accept', idem: 'w2' })).toMatchObject({ status: 'error', code: 'BAD_REQUEST' });
    ws.close();
    // Nothing moved for any of it: the dispute is still open and the money where it was.
    expect(await balance(s, f.token)).toBe(10_000);
    expect((await http(s, 'GET', '/v1/disputes', undefined, f.token)).body.disputes[0]).toMatchObject({ authId: a, disputeStatus: 'open' });
    await conserved(s);
  });
});
