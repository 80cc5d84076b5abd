// Settlement fees, settlement CSV, and the sales-tax gaps (dispute credits and reversals, remittance)
// against a real switch on 127.0.0.1 with two shards and the scheduler checking every 200 ms: an
// operator sets a vendor's fees; a threshold settlement over both shards deducts a percentage of each
// part and the fixed fee once; the CSV listing carries the figures; a dispute credit gives back its
// tax share and a reversal re-collects it; a remittance pays every shard's part of a country's tax
// under one id, a retry answers the same, a refund after it leaves the authority owing and the gauge
// shows it; bad input on every new endpoint; the audit conserves money throughout.

import { afterAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, issueId, type SwitchProcess, type Fixture } from './support/switch-process.ts';
import { partitionOfKeyedId, shardOfPartition } from '../workers/partitions.ts';
import { settlementsCsv, type SettlementRecord } from '../switch/settlement-tasks.ts';

let s: SwitchProcess | undefined;
afterAll(async () => {
  await s?.kill('SIGKILL');
});

let n = 0;
async function charge(sw: SwitchProcess, token: string, apiKey: string, amount: number, country?: string): Promise<string> {
  const id = await issueId(sw, token);
  const a = await http(sw, 'POST', '/v1/authorize', { id: id.id, code: id.code, amount, currency: 'USD', idem: `au-${n++}`, ...(country ? { country } : {}) }, apiKey);
  expect(a.body.status).toBe('approved');
  expect((await http(sw, 'POST', '/v1/capture', { authId: a.body.authId, idem: `cap-${n++}` }, apiKey)).body.status).toBe('captured');
  return a.body.authId;
}

async function conserved(sw: SwitchProcess) {
  const a = await http(sw, 'GET', '/v1/admin/audit', undefined, sw.adminToken);
  expect(a.body.conserved, JSON.stringify(a.body)).toBe(true);
  return a.body as { currencies: Record<string, { paidOut: number; fees: number; taxCollected: number; taxRemitted: number }> };
}

async function gauge(sw: SwitchProcess, name: string): Promise<number | null> {
  const text = await (await fetch(sw.url + '/metrics')).text();
  const m = new RegExp(`${name}\\{currency="USD"\\} (-?\\d+)`).exec(text);
  return m ? Number(m[1]) : null;
}

/** A user (of the fixture's vendor) whose account lives in the given shard of two. */
async function userInShard(sw: SwitchProcess, shard: number): Promise<{ token: string; accountId: string }> {
  for (let i = 0; i < 40; i++) {
    const u = await http(sw, 'POST', '/v1/users', { email: `fees${process.pid}.${n++}@example.com`, password: 'correct horse battery', currency: 'USD' });
    expect(u.status).toBe(201);
    if (shardOfPartition(partitionOfKeyedId(u.body.accountId), 2) !== shard) continue;
    expect((await http(sw, 'POST', `/v1/admin/accounts/${u.body.accountId}/fund`, { amount: 100_000, currency: 'USD', idem: `fund-${n++}` }, sw.adminToken)).status).toBe(200);
    return { token: u.body.token, accountId: u.body.accountId };
  }
  throw new Error('no account landed in shard ' + shard);
}

describe('settlement CSV', () => {
  it('renders one row per settlement and currency, with the statements\' formula-injection protection', () => {
    const rec: SettlementRecord = {
      settlementId: 'st_1', vendorId: '=HYPERLINK("http://evil")', trigger: 'operator', from: null, to: '2026-01-01T00:00:00.000Z', shards: [],
      currencies: { USD: { opening: -5, captured: 100, payments: 0, refunded: 0, disputeCredits: 0, disputeReversals: 0, fees: 3, taxWithheld: 0, payout: 92, carried: 0 } },
    };
    const csv = settlementsCsv({ records: [rec] });
    expect(csv.split('\r\n')[1]).toBe(`st_1,"'=HYPERLINK(""http://evil"")",operator,,2026-01-01T00:00:00.000Z,USD,-5,100,0,0,0,0,3,0,92,0,0,0`);
  });
});

describe('settlement fees and the sales-tax gaps', () => {
  let f: Fixture;

  it('refuses bad input and the wrong principals on every new endpoint', async () => {
    s = await startSwitchProcess({ env: { ONCEPAY_SETTLEMENT_CHECK_MS: '200' } });
    f = await setupVendorAndUser(s, 100_000);
    const feesPath = `/v1/admin/vendors/${f.vendorId}/fees`;
    for (const bad of [{}, { fees: [] }, { fees: 1 }, { fees: { usd: { basisPoints: 1, fixedMinor: 0 } } }, { fees: { USD: { basisPoints: 1 } } },
      { fees: { USD: { basisPoints: -1, fixedMinor: 0 } } }, { fees: { USD: { basisPoints: 10_001, fixedMinor: 0 } } }, { fees: { USD: { basisPoints: 1.5, fixedMinor: 0 } } },
      { fees: { USD: { basisPoints: 1, fixedMinor: -1 } } }, { fees: { USD: { basisPoints: 1, fixedMinor: 1_000_000_001 } } }, { fees: { USD: { basisPoints: 1, fixedMinor: '1' } } },
      { fees: { USD: { basisPoints: 1, fixedMinor: 0, extra: 1 } } }, { fees: {}, extra: 1 }, { fees: { USD: null } },
      { fees: Object.fromEntries(Array.from({ length: 33 }, (_, i) => ['A' + String.fromCharCode(65 + (i % 26)) + String.fromCharCode(65 + Math.floor(i / 26)), { basisPoints: 1, fixedMinor: 0 }])) }]) {
      const r = await http(s, 'PUT', feesPath, bad, s.adminToken);
      expect({ bad, status: r.status, code: r.body.code }).toEqual({ bad, status: 400, code: 'BAD_REQUEST' });
    }
    expect((await http(s, 'PUT', '/v1/admin/vendors/vd_0000nosuchvendor/fees', { fees: {} }, s.adminToken)).status).toBe(404);
    expect((await http(s, 'GET', '/v1/admin/vendors/vd_0000nosuchvendor/fees', undefined, s.adminToken)).status).toBe(404);
    for (const bad of [{}, { country: 'SE' }, { idem: 'x' }, { country: 'se', idem: 'x' }, { country: 'SE', idem: '' }, { country: 'SE', idem: 'a b' },
      { country: 'SE', idem: 'x', extra: 1 }, { country: 'SE', idem: 'x'.repeat(200) }, { country: 'SE', idem: 'x', to: 1 },
      { country: 'SE', idem: 'x', to: 'soon' }, { country: 'SE', idem: 'x', to: '2026-01-01T00:30:00Z' }, { country: 'SE', idem: 'x', to: '2999-01-01T00:00:00Z' }]) {
      const r = await http(s, 'POST', '/v1/admin/tax/remit', bad, s.adminToken);
      expect({ bad, status: r.status, code: r.body.code }).toEqual({ bad, status: 400, code: 'BAD_REQUEST' });
    }
    for (const q of ['?country=se', '?limit=0', '?limit=101', '?limit=x', '?other=1']) {
      expect((await http(s, 'GET', '/v1/admin/tax/remittances' + q, undefined, s.adminToken)).status, q).toBe(400);
    }
    for (const q of ['?format=xml', '?format=', '?format=csv&limit=0']) {
      expect((await http(s, 'GET', '/v1/vendor/settlements' + q, undefined, f.apiKey)).status, q).toBe(400);
      expect((await http(s, 'GET', '/v1/admin/settlements' + q, undefined, s.adminToken)).status, q).toBe(400);
    }
    for (const token of [f.apiKey, f.token, undefined]) {
      expect((await http(s, 'PUT', feesPath, { fees: {} }, token)).status).toBe(401);
      expect((await http(s, 'GET', feesPath, undefined, token)).status).toBe(401);
      expect((await http(s, 'POST', '/v1/admin/tax/remit', { country: 'SE', idem: 'x' }, token)).status).toBe(401);
      expect((await http(s, 'GET', '/v1/admin/tax/remittances', undefined, token)).status).toBe(401);
    }
    // Nothing was set: no fees, no remittances.
    expect((await http(s, 'GET', feesPath, undefined, s.adminToken)).body).toEqual({ vendorId: f.vendorId, fees: {} });
    expect((await http(s, 'GET', '/v1/admin/tax/remittances', undefined, s.adminToken)).body).toEqual({ remittances: [] });
    await conserved(s);
  });

  it('a threshold settlement over two shards deducts each part\'s percentage and the fixed fee once', async () => {
    const sw = s!;
    expect((await http(sw, 'PUT', `/v1/admin/vendors/${f.vendorId}/fees`, { fees: { USD: { basisPoints: 250, fixedMinor: 30 } } }, sw.adminToken)).body)
      .toEqual({ vendorId: f.vendorId, fees: { USD: { basisPoints: 250, fixedMinor: 30 } } });
    expect((await http(sw, 'PUT', '/v1/vendor/settlement-settings', { thresholdMinor: 1000, periodHours: 24 }, f.apiKey)).status).toBe(200);
    expect((await http(sw, 'GET', '/v1/vendor/settlements', undefined, f.apiKey)).body.settings.fees).toEqual({ USD: { basisPoints: 250, fixedMinor: 30 } });
    const u0 = await userInShard(sw, 0);
    const u1 = await userInShard(sw, 1);
    await charge(sw, u0.token, f.apiKey, 599);
    await charge(sw, u1.token, f.apiKey, 601);
    const list = async () => (await http(sw, 'GET', '/v1/vendor/settlements', undefined, f.apiKey)).body.settlements as SettlementRecord[];
    await expect.poll(list, { timeout: 10_000 }).toHaveLength(1);
    const [rec] = await list();
    expect(rec.trigger).toBe('threshold');
    expect(rec.shards.map((p) => p.shard)).toEqual([0, 1]);
    // floor(599 × 2.5 %) = 14 and floor(601 × 2.5 %) = 15, + 30 once (shard 1 holds the larger payable).
    expect(rec.currencies.USD).toEqual({
      opening: 0, captured: 1200, payments: 0, refunded: 0, disputeCredits: 0, disputeReversals: 0, fees: 59, taxWithheld: 0, payout: 1141, carried: 0, tokensRedeemed: 0, tokenProceeds: 0,
    });
    const audit = await conserved(sw);
    expect(audit.currencies.USD).toMatchObject({ paidOut: 1141, fees: 59 });
    await expect.poll(() => gauge(sw, 'oncepay_settlement_fees_minor_units'), { timeout: 5000 }).toBe(59);
    // The CSV listing: a header and the record's row.
    const csv = await fetch(sw.url + '/v1/vendor/settlements?format=csv', { headers: { authorization: `Bearer ${f.apiKey}` } });
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await csv.text()).trimEnd().split('\r\n');
    expect(lines[0]).toBe('settlementId,vendorId,trigger,from,to,currency,opening,captured,payments,refunded,disputeCredits,disputeReversals,fees,taxWithheld,payout,carried,tokensRedeemed,tokenProceeds');
    expect(lines[1]).toBe(`${rec.settlementId},${f.vendorId},threshold,${rec.from},${rec.to},USD,0,1200,0,0,0,0,59,0,1141,0,0,0`);
    // The fee is in the vendor's statement, in its own column.
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 3600_000).toISOString();
    expect((await http(sw, 'GET', `/v1/vendor/statement?from=${from}&to=${to}`, undefined, f.apiKey)).body.currencies.USD)
      .toMatchObject({ captured: 1200, payouts: 1141, fees: 59, net: 0 });
  });

  it('dispute credits give back their tax share, reversals re-collect it; remittance pays every shard\'s part once', async () => {
    const sw = s!;
    // No more fees or threshold settlements in the way of the tax figures.
    expect((await http(sw, 'PUT', `/v1/admin/vendors/${f.vendorId}/fees`, { fees: {} }, sw.adminToken)).status).toBe(200);
    expect((await http(sw, 'PUT', '/v1/vendor/settlement-settings', { thresholdMinor: 1_000_000, periodHours: 24 }, f.apiKey)).status).toBe(200);
    expect((await http(sw, 'PUT', '/v1/admin/tax-rates', { country: 'DE', basisPoints: 1900 }, sw.adminToken)).status).toBe(200);
    const u0 = await userInShard(sw, 0);
    const u1 = await userInShard(sw, 1);
    const a = await charge(sw, u0.token, f.apiKey, 1190, 'DE'); // 190 tax, shard 0
    await charge(sw, u1.token, f.apiKey, 595, 'DE');            // 95 tax, shard 1
    expect((await conserved(sw)).currencies.USD.taxCollected).toBe(285);

    // The user disputes half of a: 95 of tax comes back from tax:DE with the credit.
    const d = await http(sw, 'POST', '/v1/disputes', { authId: a, amount: 595, reason: 'half of it broken', idem: 'd-tax' }, u0.token);
    expect(d.body).toMatchObject({ status: 'opened', amount: 595 });
    expect((await http(sw, 'GET', `/v1/auths/${a}`, undefined, f.apiKey)).body.tax).toMatchObject({ collected: 190, refunded: 95 });
    expect((await conserved(sw)).currencies.USD.taxCollected).toBe(190);
    // The operator decides for the vendor: the reversal re-collects the 95.
    const dec = await http(sw, 'POST', `/v1/admin/disputes/${a}/decide`, { winner: 'vendor', note: 'delivered', idem: 'dec-tax' }, sw.adminToken);
    expect(dec.body).toMatchObject({ status: 'won_vendor', reversed: 595 });
    expect((await http(sw, 'GET', `/v1/auths/${a}`, undefined, f.apiKey)).body.tax).toMatchObject({ collected: 190, refunded: 0 });
    expect((await conserved(sw)).currencies.USD.taxCollected).toBe(285);
    await expect.poll(() => gauge(sw, 'oncepay_tax_outstanding_minor_units'), { timeout: 5000 }).toBe(285);

    // Remittance: both shards pay their part under one id; a retry is the same remittance.
    const r1 = await http(sw, 'POST', '/v1/admin/tax/remit', { country: 'DE', idem: 'de-q1' }, sw.adminToken);
    expect(r1.status).toBe(200);
    expect(r1.body).toMatchObject({ country: 'DE', from: null, currencies: { USD: { remitted: 285, left: 0 } } });
    expect(r1.body.remittanceId).toMatch(/^tr_[0-9a-f]{24}$/);
    expect((await http(sw, 'POST', '/v1/admin/tax/remit', { country: 'DE', idem: 'de-q1' }, sw.adminToken)).body).toEqual(r1.body);
    expect((await conserved(sw)).currencies.USD).toMatchObject({ taxCollected: 0, taxRemitted: 285 });
    await expect.poll(() => gauge(sw, 'oncepay_tax_outstanding_minor_units'), { timeout: 5000 }).toBe(0);

    // A refund after the remittance gives back tax already paid: the authority owes it, the gauge
    // goes below zero, and the next remittance pays nothing and reports what is owed.
    expect((await http(sw, 'POST', '/v1/refund', { authId: a, amount: 119, idem: 'ref-after' }, f.apiKey)).body).toMatchObject({ status: 'refunded', tax: { amount: 19 } });
    await expect.poll(() => gauge(sw, 'oncepay_tax_outstanding_minor_units'), { timeout: 5000 }).toBe(-19);
    const r2 = await http(sw, 'POST', '/v1/admin/tax/remit', { country: 'DE', idem: 'de-q2' }, sw.adminToken);
    expect(r2.body).toMatchObject({ currencies: { USD: { remitted: 0, left: -19 } } });
    expect(r2.body.from).not.toBeNull();
    expect(r2.body.remittanceId).not.toBe(r1.body.remittanceId);
    // A period that ended before any of this: nothing more to pay; its idem with another period conflicts.
    const r3 = await http(sw, 'POST', '/v1/admin/tax/remit', { country: 'DE', idem: 'de-2020', to: '2020-01-01T00:00:00Z' }, sw.adminToken);
    expect(r3.body).toMatchObject({ to: '2020-01-01T00:00:00.000Z', currencies: { USD: { remitted: 0, left: -19 } } });
    const clash = await http(sw, 'POST', '/v1/admin/tax/remit', { country: 'DE', idem: 'de-2020', to: '2021-01-01T00:00:00Z' }, sw.adminToken);
    expect([clash.status, clash.body.code]).toEqual([409, 'IDEMPOTENCY_CONFLICT']);
    const listed = (await http(sw, 'GET', '/v1/admin/tax/remittances?country=DE', undefined, sw.adminToken)).body.remittances as Array<{ remittanceId: string }>;
    expect(listed.map((r) => r.remittanceId)).toEqual([r3.body.remittanceId, r2.body.remittanceId, r1.body.remittanceId]);

    // The report of this hour: collected (with the re-collection), given back, remitted.
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const rows = (await http(sw, 'GET', `/v1/admin/tax/report?from=${new Date(hour - 3_600_000).toISOString()}&to=${new Date(hour + 3_600_000).toISOString()}`,
      undefined, sw.adminToken)).body.rows;
    expect(rows).toContainEqual({ country: 'DE', currency: 'USD', sales: 1785, collected: 285 + 95, refunded: 95 + 19, net: 266, remitted: 285 });
    await conserved(sw);
    expect(sw.output()).not.toMatch(/settlement check failed|AssertionError|exited/);
  });
});
