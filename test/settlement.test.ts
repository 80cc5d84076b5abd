// Vendor settlement against a real switch on 127.0.0.1 (seed 003 claims 16, 30), with the scheduler
// checking every 200 ms: a vendor over its threshold is paid out, one past its period is paid out,
// an operator settles one now; the records carry the period's figures; the backlog gauge falls; a
// dispute after a payout leaves the vendor owing (the shard does not fail) and the next settlement
// carries it; authorizations keep being approved while settlements run; bad input and the wrong
// principals are refused; the audit conserves money throughout.

import { afterAll, describe, expect, it } from 'vitest';
import {
  startSwitchProcess, http, setupVendorAndUser, issueId, type SwitchProcess, type Fixture,
} from './support/switch-process.ts';

let s: SwitchProcess | undefined;
afterAll(async () => {
  await s?.kill('SIGKILL');
});

let n = 0;
async function charge(sw: SwitchProcess, f: Fixture, amount: number, refund = 0): Promise<string> {
  const id = await issueId(sw, f.token);
  const a = await http(sw, 'POST', '/v1/authorize', { id: id.id, code: id.code, amount, currency: 'USD', idem: `au-${n++}` }, f.apiKey);
  expect(a.body.status).toBe('approved');
  const c = await http(sw, 'POST', '/v1/capture', { authId: a.body.authId, idem: `cap-${n++}` }, f.apiKey);
  expect(c.body.status).toBe('captured');
  if (refund > 0) expect((await http(sw, 'POST', '/v1/refund', { authId: a.body.authId, amount: refund, idem: `ref-${n++}` }, f.apiKey)).body.status).toBe('refunded');
  return a.body.authId;
}

async function conserved(sw: SwitchProcess) {
  const a = await http(sw, 'GET', '/v1/admin/audit', undefined, sw.adminToken);
  expect(a.body.conserved, JSON.stringify(a.body)).toBe(true);
  return a.body as { currencies: Record<string, { paidOut: number; vendorPayable: number; vendorOwed: number }> };
}

const settlements = async (sw: SwitchProcess, f: Fixture) => (await http(sw, 'GET', '/v1/vendor/settlements', undefined, f.apiKey)).body.settlements as
  Array<{ settlementId: string; trigger: string; from: string | null; to: string; currencies: Record<string, Record<string, number>> }>;

async function backlog(sw: SwitchProcess): Promise<number> {
  const text = await (await fetch(sw.url + '/metrics')).text();
  const m = /oncepay_settlement_backlog_minor_units\{currency="USD"\} (-?\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('vendor settlement', () => {
  it('refuses bad input and the wrong principals', async () => {
    s = await startSwitchProcess({ env: { ONCEPAY_SETTLEMENT_CHECK_MS: '200' } });
    const f = await setupVendorAndUser(s, 100_000);
    for (const bad of [{}, { thresholdMinor: 0, periodHours: 1 }, { thresholdMinor: 1.5, periodHours: 1 }, { thresholdMinor: 100, periodHours: 0 },
      { thresholdMinor: 100, periodHours: 9000 }, { thresholdMinor: 100, periodHours: '1' }, { thresholdMinor: 100, periodHours: 1, extra: 1 }]) {
      const r = await http(s, 'PUT', '/v1/vendor/settlement-settings', bad, f.apiKey);
      expect({ bad, status: r.status, code: r.body.code }).toEqual({ bad, status: 400, code: 'BAD_REQUEST' });
    }
    expect((await http(s, 'PUT', '/v1/vendor/settlement-settings', { thresholdMinor: 100, periodHours: 1 }, f.token)).status).toBe(401);
    expect((await http(s, 'GET', '/v1/vendor/settlements', undefined, f.token)).status).toBe(401);
    expect((await http(s, 'GET', '/v1/vendor/settlements?limit=0', undefined, f.apiKey)).status).toBe(400);
    expect((await http(s, 'GET', '/v1/vendor/settlements?vendorId=x', undefined, f.apiKey)).status).toBe(400);
    expect((await http(s, 'POST', `/v1/admin/vendors/${f.vendorId}/settle`, {}, f.apiKey)).status).toBe(401);
    expect((await http(s, 'GET', '/v1/admin/settlements', undefined, f.apiKey)).status).toBe(401);
    expect((await http(s, 'POST', '/v1/admin/vendors/vd_0000nosuchvendor/settle', {}, s.adminToken)).status).toBe(404);
    expect((await http(s, 'POST', `/v1/admin/vendors/${f.vendorId}/settle`, { now: true }, s.adminToken)).status).toBe(400);
    expect((await http(s, 'GET', '/v1/admin/settlements?vendorId=nope', undefined, s.adminToken)).status).toBe(400);
    expect((await http(s, 'GET', '/v1/admin/settlements?limit=1000', undefined, s.adminToken)).status).toBe(400);
    // Defaults until the vendor sets its own.
    expect((await http(s, 'GET', '/v1/vendor/settlements', undefined, f.apiKey)).body).toMatchObject({ settings: { thresholdMinor: 10_000, periodHours: 24 }, settlements: [] });
  });

  it('threshold, operator and period triggers; records, gauge, dispute after payout, authorizations during settlement', async () => {
    const sw = s!;
    const a = await setupVendorAndUser(sw, 100_000);
    const b = await setupVendorAndUser(sw, 100_000);
    expect((await http(sw, 'PUT', '/v1/vendor/settlement-settings', { thresholdMinor: 1000, periodHours: 24 }, a.apiKey)).body)
      .toMatchObject({ thresholdMinor: 1000, periodHours: 24 });

    // Threshold: 600 is below it and waits; 600 + 500 crosses it and is paid out by the scheduler.
    const first = await charge(sw, a, 600);
    await new Promise((r) => setTimeout(r, 700));
    expect(await settlements(sw, a)).toEqual([]);
    expect(await backlog(sw)).toBeGreaterThanOrEqual(600);
    await charge(sw, a, 500);
    await expect.poll(() => settlements(sw, a), { timeout: 10_000 }).toHaveLength(1);
    const [t] = await settlements(sw, a);
    expect(t.trigger).toBe('threshold');
    expect(t.currencies.USD).toEqual({
      opening: 0, captured: 1100, payments: 0, refunded: 0, disputeCredits: 0, disputeReversals: 0, fees: 0, taxWithheld: 0, payout: 1100, carried: 0, tokensRedeemed: 0, tokenProceeds: 0,
    });
    expect(Date.parse(t.to)).toBeGreaterThanOrEqual(Date.parse(t.from!));
    expect((await conserved(sw)).currencies.USD.paidOut).toBe(1100);
    await expect.poll(() => backlog(sw), { timeout: 5000 }).toBe(0);

    // Operator: 300 captured, 100 refunded, settled now, while 40 authorizations are in flight.
    await charge(sw, a, 300, 100);
    const ids = await Promise.all(Array.from({ length: 40 }, () => issueId(sw, b.token)));
    const [settled, ...auths] = await Promise.all([
      http(sw, 'POST', `/v1/admin/vendors/${a.vendorId}/settle`, {}, sw.adminToken),
      ...ids.map((id) => http(sw, 'POST', '/v1/authorize', { id: id.id, code: id.code, amount: 10, currency: 'USD', idem: `flow-${n++}` }, b.apiKey)),
    ]);
    expect(auths.map((r) => r.body.status)).toEqual(auths.map(() => 'approved'));
    expect(settled.status).toBe(200);
    expect(settled.body).toMatchObject({ vendorId: a.vendorId, trigger: 'operator', currencies: { USD: { captured: 300, refunded: 100, payout: 200, carried: 0 } } });
    expect(settled.body.from).toBe(t.to);
    // A settlement with nothing pending is answered, with nothing in it.
    const empty = await http(sw, 'POST', `/v1/admin/vendors/${a.vendorId}/settle`, {}, sw.adminToken);
    expect(empty.body.currencies).toEqual({});

    // A dispute after the payout: the vendor's payable goes below zero, the shard stays up, the audit
    // conserves money and reports the debt; the next settlement pays nothing and carries it.
    const d = await http(sw, 'POST', '/v1/disputes', { authId: first, reason: 'never arrived', idem: 'd-after' }, a.token);
    expect(d.body).toMatchObject({ status: 'opened', amount: 600 });
    const audit = await conserved(sw);
    expect(audit.currencies.USD.vendorOwed).toBe(600);
    expect(sw.output()).not.toMatch(/exited|AssertionError/);
    const owed = await http(sw, 'POST', `/v1/admin/vendors/${a.vendorId}/settle`, {}, sw.adminToken);
    expect(owed.body.currencies.USD).toMatchObject({ disputeCredits: 600, payout: 0, carried: -600 });
    // The next captures pay the debt back first.
    await charge(sw, a, 700);
    const back = await http(sw, 'POST', `/v1/admin/vendors/${a.vendorId}/settle`, {}, sw.adminToken);
    expect(back.body.currencies.USD).toMatchObject({ opening: -600, captured: 700, payout: 100, carried: 0 });
    expect((await conserved(sw)).currencies.USD.vendorOwed).toBe(0);

    // Period: vendor B (its 400 of authorizations captured) with a 2-second period and a high threshold.
    expect((await http(sw, 'PUT', '/v1/vendor/settlement-settings', { thresholdMinor: 1_000_000, periodHours: 2 / 3600 }, b.apiKey)).status).toBe(200);
    await charge(sw, b, 250);
    await expect.poll(() => settlements(sw, b), { timeout: 10_000 }).toHaveLength(1);
    expect((await settlements(sw, b))[0]).toMatchObject({ trigger: 'period', currencies: { USD: { captured: 250, payout: 250 } } });

    // Records: each vendor sees its own; operators see all, or one vendor's.
    const mine = await settlements(sw, a);
    expect(mine.map((r) => r.trigger)).toEqual(['operator', 'operator', 'operator', 'threshold']);
    expect(JSON.stringify(mine)).not.toContain(b.vendorId);
    const all = (await http(sw, 'GET', '/v1/admin/settlements', undefined, sw.adminToken)).body.settlements as Array<{ vendorId: string; vendorName: string }>;
    expect(new Set(all.map((r) => r.vendorId))).toEqual(new Set([a.vendorId, b.vendorId]));
    const onlyB = (await http(sw, 'GET', `/v1/admin/settlements?vendorId=${b.vendorId}`, undefined, sw.adminToken)).body.settlements;
    expect(onlyB).toHaveLength(1);
    // The vendor statement shows the payouts in their own column, and still reconciles.
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 3600_000).toISOString();
    const st = await http(sw, 'GET', `/v1/vendor/statement?from=${from}&to=${to}`, undefined, a.apiKey);
    expect(st.body.currencies.USD).toMatchObject({ captured: 2100, refunded: 100, disputes: -600, payouts: 1400, net: 0 }) // all of it paid out;
    await conserved(sw);
    expect(sw.output()).not.toMatch(/settlement check failed/);
  });
});
