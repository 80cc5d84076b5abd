// The whole vendor flow against a real switch on 127.0.0.1: register, fund, issue, authorize over
// WebSocket (msgpack and JSON) and HTTP, capture, void, refund, idempotency, declines, the audit,
// and approvals verified with nothing but the public key and the rules of DESIGN.md.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import {
  startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess, type Fixture,
} from './support/switch-process.ts';
import { verifyApproval } from '../hsm-sim/verify-approval.ts';

let s: SwitchProcess;
let f: Fixture;
let vendor: VendorClient;
let keys: Array<{ kid: string; publicKey: string }>;
let idemSeq = 0;
const idem = () => `idem-${idemSeq++}`;

beforeAll(async () => {
  s = await startSwitchProcess();
  f = await setupVendorAndUser(s, 100_000);
  vendor = await VendorClient.connect(s, f.apiKey);
  keys = (await http(s, 'GET', '/v1/hsm/keys')).body.keys;
});

afterAll(async () => {
  vendor?.close();
  await s?.kill();
});

async function account(token = f.token) {
  const r = await http(s, 'GET', '/v1/accounts/me', undefined, token);
  expect(r.status).toBe(200);
  return r.body;
}

async function audit() {
  const r = await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken);
  expect(r.status).toBe(200);
  return r.body;
}

describe('start-up and control plane', () => {
  it('answers /healthz once shards and HSM are ready', async () => {
    const r = await http(s, 'GET', '/healthz');
    expect(r).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('publishes Ed25519 public keys', () => {
    expect(keys.length).toBeGreaterThan(0);
    expect(keys[0]).toMatchObject({ alg: 'Ed25519' });
    expect(Buffer.from(keys[0].publicKey, 'base64')).toHaveLength(32);
  });

  it('shows the funded account', async () => {
    expect(await account()).toMatchObject({ accountId: f.accountId, balance: 100_000, held: 0, available: 100_000, currency: 'USD' });
  });

  it('refuses a second user with the same email, case-insensitively', async () => {
    const email = `dup${Date.now()}@example.com`;
    expect((await http(s, 'POST', '/v1/users', { email, password: 'long enough pw' })).status).toBe(201);
    const again = await http(s, 'POST', '/v1/users', { email: email.toUpperCase(), password: 'long enough pw' });
    expect(again).toMatchObject({ status: 409, body: { code: 'EMAIL_TAKEN' } });
  });

  it('replays a fund with the same idem and refuses it with other parameters', async () => {
    const g = await setupVendorAndUser(s, 0);
    const body = { amount: 500, currency: 'USD', idem: 'fund-once' };
    const first = await http(s, 'POST', `/v1/admin/accounts/${g.accountId}/fund`, body, s.adminToken);
    const again = await http(s, 'POST', `/v1/admin/accounts/${g.accountId}/fund`, body, s.adminToken);
    expect(first).toEqual(again);
    expect((await account(g.token)).balance).toBe(500);
    const conflict = await http(s, 'POST', `/v1/admin/accounts/${g.accountId}/fund`, { ...body, amount: 501 }, s.adminToken);
    expect(conflict).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT' } });
  });

  it('issues card-shaped IDs: 19 digits, our prefix, Luhn-valid, 3-digit code', async () => {
    const id = await issueId(s, f.token);
    expect(id.id).toMatch(/^9870\d{15}$/);
    expect(id.code).toMatch(/^\d{3}$/);
    let sum = 0;
    for (let i = 0; i < 19; i++) {
      let d = Number(id.id[18 - i]);
      if (i % 2 === 1) {
        d *= 2;
        if (d > 9) d -= 9;
      }
      sum += d;
    }
    expect(sum % 10).toBe(0);
  });
});

describe('authorize over WebSocket', () => {
  it('approves, holds the amount, and the approval verifies offline', async () => {
    const before = await account();
    const id = await issueId(s, f.token);
    const r = await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 1250, currency: 'USD', idem: idem() });
    expect(r).toMatchObject({ status: 'approved', amount: 1250, currency: 'USD' });
    expect(r.authId).toMatch(/^au_\d{4}[0-9a-z]{10}$/);
    expect(r.approval).toMatchObject({ authId: r.authId, vendorId: f.vendorId, amount: 1250, currency: 'USD', idLast4: id.id.slice(-4) });
    expect(verifyApproval(r.approval, keys)).toEqual({ ok: true });
    expect(verifyApproval({ ...r.approval, amount: 1251 }, keys).ok).toBe(false);
    const after = await account();
    expect(after.held).toBe(before.held + 1250);
    expect(after.available).toBe(before.available - 1250);
  });

  it('speaks JSON text frames too', async () => {
    const json = await VendorClient.connect(s, f.apiKey, false);
    const id = await issueId(s, f.token);
    const r = await json.request({ op: 'authorize', id: id.id, code: id.code, amount: 10, currency: 'USD', idem: idem() });
    expect(r.status).toBe('approved');
    expect(verifyApproval(r.approval, keys)).toEqual({ ok: true });
    json.close();
  });

  it('declines in order of precedence with stable codes', async () => {
    const id = await issueId(s, f.token, { maxAmount: 500 });
    const ask = (o: Record<string, unknown>) => vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 100, currency: 'USD', idem: idem(), ...o });
    const wrongCode = String((Number(id.code) + 1) % 1000).padStart(3, '0');
    expect((await ask({ code: wrongCode })).code).toBe('ID_UNKNOWN');
    expect((await ask({ id: '9870000000000000000' })).code).toBe('ID_UNKNOWN');
    expect((await ask({ id: '4111111111111111' })).code).toBe('ID_UNKNOWN');
    expect((await ask({ currency: 'EUR' })).code).toBe('CURRENCY_MISMATCH');
    expect((await ask({ amount: 501 })).code).toBe('AMOUNT_OVER_LIMIT');
    const big = await issueId(s, f.token);
    expect((await vendor.request({ op: 'authorize', id: big.id, code: big.code, amount: 10_000_000, currency: 'USD', idem: idem() })).code).toBe('INSUFFICIENT_FUNDS');
    expect((await ask({})).status).toBe('approved');
    expect((await ask({})).code).toBe('ID_USED');
  });

  it('locks a vendor-bound ID to its vendor', async () => {
    const other = await setupVendorAndUser(s, 0);
    const id = await issueId(s, f.token, { vendorId: other.vendorId });
    const r = await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 5, currency: 'USD', idem: idem() });
    expect(r.code).toBe('VENDOR_MISMATCH');
  });

  it('declines an expired ID with ID_EXPIRED', async () => {
    const id = await issueId(s, f.token, { ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    const r = await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 5, currency: 'USD', idem: idem() });
    expect(r.code).toBe('ID_EXPIRED');
  });

  it('locks an ID after five wrong codes, even for the right code', async () => {
    const id = await issueId(s, f.token);
    const wrong = String((Number(id.code) + 7) % 1000).padStart(3, '0');
    for (let i = 0; i < 5; i++) {
      expect((await vendor.request({ op: 'authorize', id: id.id, code: wrong, amount: 5, currency: 'USD', idem: idem() })).code).toBe('ID_UNKNOWN');
    }
    expect((await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 5, currency: 'USD', idem: idem() })).code).toBe('ID_UNKNOWN');
  });

  it('replays an authorize byte for byte, and refuses the key with other parameters', async () => {
    const id = await issueId(s, f.token);
    const key = idem();
    const first = await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 77, currency: 'USD', idem: key, rid: 'x1' });
    const again = await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 77, currency: 'USD', idem: key, rid: 'x1' });
    expect(pack(again)).toEqual(pack(first));
    const conflict = await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 78, currency: 'USD', idem: key });
    expect(conflict).toMatchObject({ status: 'error', code: 'IDEMPOTENCY_CONFLICT' });
  });
});

describe('capture, void, refund', () => {
  async function approve(amount: number) {
    const id = await issueId(s, f.token);
    const r = await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount, currency: 'USD', idem: idem() });
    expect(r.status).toBe('approved');
    return r.authId as string;
  }

  it('captures part of a hold once and releases the rest', async () => {
    const before = await account();
    const authId = await approve(1000);
    const c = await vendor.request({ op: 'capture', authId, amount: 600, idem: idem() });
    expect(c).toMatchObject({ status: 'captured', authId, captured: 600, released: 400, currency: 'USD' });
    const after = await account();
    expect(after.balance).toBe(before.balance - 600);
    expect(after.held).toBe(before.held);
    expect((await vendor.request({ op: 'capture', authId, idem: idem() })).code).toBe('AUTH_CAPTURED');
    expect((await vendor.request({ op: 'void', authId, idem: idem() })).code).toBe('AUTH_CAPTURED');
  });

  it('refunds in parts up to the captured amount', async () => {
    const authId = await approve(1000);
    await vendor.request({ op: 'capture', authId, idem: idem() });
    const before = await account();
    expect(await vendor.request({ op: 'refund', authId, amount: 300, idem: idem() })).toMatchObject({ status: 'refunded', refunded: 300, refundedTotal: 300 });
    expect((await vendor.request({ op: 'refund', authId, amount: 701, idem: idem() })).code).toBe('AMOUNT_OVER_LIMIT');
    expect(await vendor.request({ op: 'refund', authId, amount: 700, idem: idem() })).toMatchObject({ status: 'refunded', refundedTotal: 1000 });
    expect((await vendor.request({ op: 'refund', authId, amount: 1, idem: idem() })).code).toBe('AMOUNT_OVER_LIMIT');
    expect((await account()).balance).toBe(before.balance + 1000);
  });

  it('voids a hold and refuses capture or refund afterwards', async () => {
    const before = await account();
    const authId = await approve(250);
    expect(await vendor.request({ op: 'void', authId, idem: idem() })).toMatchObject({ status: 'voided', released: 250 });
    expect(await account()).toEqual(before);
    expect((await vendor.request({ op: 'capture', authId, idem: idem() })).code).toBe('AUTH_VOIDED');
    expect((await vendor.request({ op: 'refund', authId, idem: idem() })).code).toBe('AUTH_VOIDED');
  });

  it('refuses refund before capture and capture above the hold', async () => {
    const authId = await approve(100);
    expect((await vendor.request({ op: 'refund', authId, idem: idem() })).code).toBe('AUTH_NOT_CAPTURED');
    expect((await vendor.request({ op: 'capture', authId, amount: 101, idem: idem() })).code).toBe('AMOUNT_OVER_LIMIT');
  });

  it("does not let a vendor touch another vendor's authorization", async () => {
    const authId = await approve(100);
    const other = await setupVendorAndUser(s, 0);
    const intruder = await VendorClient.connect(s, other.apiKey);
    for (const op of ['capture', 'void', 'refund']) {
      expect((await intruder.request({ op, authId, idem: idem() })).code).toBe('AUTH_UNKNOWN');
    }
    expect((await http(s, 'GET', `/v1/auths/${authId}`, undefined, other.apiKey)).status).toBe(404);
    expect((await http(s, 'GET', `/v1/auths/${authId}`, undefined, f.apiKey)).body).toMatchObject({ authId, status: 'held', amount: 100 });
    intruder.close();
  });
});

describe('the same calls over HTTP', () => {
  it('authorize, capture and refund with the vendor key', async () => {
    const id = await issueId(s, f.token);
    const a = await http(s, 'POST', '/v1/authorize', { id: id.id, code: id.code, amount: 300, currency: 'USD', idem: idem() }, f.apiKey);
    expect(a.status).toBe(200);
    expect(a.body.status).toBe('approved');
    expect(verifyApproval(a.body.approval, keys)).toEqual({ ok: true });
    const c = await http(s, 'POST', '/v1/capture', { authId: a.body.authId, idem: idem() }, f.apiKey);
    expect(c.body).toMatchObject({ status: 'captured', captured: 300 });
    const r = await http(s, 'POST', '/v1/refund', { authId: a.body.authId, amount: 100, idem: idem() }, f.apiKey);
    expect(r.body).toMatchObject({ status: 'refunded', refunded: 100 });
    const again = await http(s, 'POST', '/v1/authorize', { id: id.id, code: id.code, amount: 300, currency: 'USD', idem: idem() }, f.apiKey);
    expect(again.body).toEqual({ status: 'declined', code: 'ID_USED' });
  });

  it('refuses missing or wrong credentials with 401', async () => {
    expect((await http(s, 'POST', '/v1/authorize', { id: '1', code: '123', amount: 1, currency: 'USD', idem: 'x' })).status).toBe(401);
    expect((await http(s, 'POST', '/v1/authorize', {}, 'ovk_wrong')).status).toBe(401);
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, 'nope')).status).toBe(401);
    expect((await http(s, 'POST', '/v1/admin/vendors', { name: 'x' }, f.token)).status).toBe(401);
    expect((await http(s, 'GET', '/v1/admin/audit', undefined, f.apiKey)).status).toBe(401);
  });

  it('has no fault-injection routes unless started with ONCEPAY_FAULT_INJECTION', async () => {
    expect((await http(s, 'POST', '/v1/admin/faults/shards/0/crash', {}, s.adminToken)).status).toBe(404);
  });
});

describe('races', () => {
  it('approves one ID exactly once when 20 sessions send it in the same instant', async () => {
    const id = await issueId(s, f.token);
    const sessions = await Promise.all(Array.from({ length: 20 }, () => VendorClient.connect(s, f.apiKey)));
    const replies = await Promise.all(sessions.map((c, i) =>
      c.request({ op: 'authorize', id: id.id, code: id.code, amount: 10, currency: 'USD', idem: `race-${i}` })));
    expect(replies.filter((r) => r.status === 'approved')).toHaveLength(1);
    expect(replies.filter((r) => r.status === 'declined' && r.code === 'ID_USED')).toHaveLength(19);
    for (const c of sessions) c.close();
  });
});

describe('bad input changes nothing and keeps the session', () => {
  it('answers malformed frames with typed errors', async () => {
    const before = await account();
    const cases: Array<[Buffer | string, boolean]> = [
      [Buffer.from([0xc1, 0xff, 0x00]), true],
      ['{"op":"authorize",', false],
      ['[1,2,3]', false],
      ['{"rid":"a","op":"explode"}', false],
      ['{"rid":"a","op":"authorize","id":"1","code":"12","amount":1,"currency":"USD","idem":"k"}', false],
      ['{"rid":"a","op":"authorize","id":"9870","code":"123","amount":-5,"currency":"USD","idem":"k"}', false],
      ['{"rid":"a","op":"authorize","id":"9870","code":"123","amount":1.5,"currency":"USD","idem":"k"}', false],
      ['{"rid":"a","op":"authorize","id":"9870","code":"123","amount":1e300,"currency":"USD","idem":"k"}', false],
      ['{"rid":"a","op":"authorize","id":"9870","code":"123","amount":5,"currency":"XXX","idem":"k"}', false],
      ['{"rid":"a","op":"authorize","id":"9870","code":"123","amount":5,"currency":"USD","idem":"k","ammount":3}', false],
      ['{"rid":"a","op":"capture","authId":"au_x","idem":"k"}', false],
      ['{"rid":{"nested":true},"op":"authorize"}', false],
      [JSON.stringify({ rid: 'deep', op: 'authorize', id: JSON.parse('['.repeat(2000) + ']'.repeat(2000)) }), false],
      [pack({ rid: 1, op: 'authorize', id: '9870', code: '123', amount: 2n ** 60n, currency: 'USD', idem: 'k' }), true],
    ];
    for (const [data, binary] of cases) {
      const r = await vendor.sendRaw(data, binary);
      expect(r.status, String(data)).toBe('error');
      expect(r.code).toBe('BAD_REQUEST');
    }
    // The session still works and nothing moved.
    const id = await issueId(s, f.token);
    expect((await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 1, currency: 'USD', idem: idem() })).status).toBe('approved');
    expect((await account()).available).toBe(before.available - 1);
  });

  it('refuses oversized and malformed HTTP bodies', async () => {
    expect((await http(s, 'POST', '/v1/ids', 'x'.repeat(20_000), f.token)).status).toBe(413);
    expect((await http(s, 'POST', '/v1/ids', '{"idem":', f.token)).status).toBe(400);
    expect((await http(s, 'POST', '/v1/ids', { idem: 'k', ttlSeconds: 86_401 }, f.token)).status).toBe(400);
    expect((await http(s, 'POST', '/v1/ids', { idem: 'k', maxAmount: -1 }, f.token)).status).toBe(400);
    expect((await http(s, 'POST', '/v1/users', { email: 'not-an-email', password: 'long enough pw' })).status).toBe(400);
    expect((await http(s, 'GET', '/v1/nope')).status).toBe(404);
  });

  it('closes a session that sends a frame above the frame limit, and only that session', async () => {
    const big = await VendorClient.connect(s, f.apiKey);
    const closed = new Promise<number>((resolve) => big.ws.once('close', (code: number) => resolve(code)));
    big.ws.send(JSON.stringify({ rid: 'big', op: 'authorize', pad: 'x'.repeat(20_000) }));
    expect([1006, 1009]).toContain(await closed); // uWS drops the connection (1006) or closes with 1009
    const id = await issueId(s, f.token);
    expect((await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 1, currency: 'USD', idem: idem() })).status).toBe('approved');
  });

  it('closes an unauthenticated upgrade with 401 before any WebSocket exists', async () => {
    await expect(VendorClient.connect(s, 'ovk_not_a_key')).rejects.toThrow(/401/);
  });
});

describe('metrics', () => {
  it('serves Prometheus text with shard, decision, HSM, edge and Node series that moved', async () => {
    const res = await fetch(s.url + '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const value = (line: string) => {
      const m = new RegExp(`^${line.replace(/[{}"=]/g, (c) => '\\' + c)} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : NaN;
    };
    expect(value('oncepay_decisions_total{op="authorize",outcome="approved"}')).toBeGreaterThan(5);
    expect(value('oncepay_decisions_total{op="authorize",outcome="ID_USED"}')).toBeGreaterThan(0);
    expect(value('oncepay_decisions_total{op="capture",outcome="captured"}')).toBeGreaterThan(0);
    expect(value('oncepay_shard_commits_total{shard="0"}') + value('oncepay_shard_commits_total{shard="1"}')).toBeGreaterThan(0);
    expect(value('oncepay_hsm_operations_total')).toBeGreaterThan(0);
    expect(value('oncepay_bad_requests_total')).toBeGreaterThan(0);
    expect(value('oncepay_auth_failures_total{kind="http"}')).toBeGreaterThan(0);
    expect(text).toMatch(/^oncepay_shard_flush_seconds_bucket\{shard="0",le="0\.001"\} \d+$/m);
    expect(text).toMatch(/^oncepay_hsm_sign_seconds_count\{shard="\d"\} [1-9]\d*$/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    expect(value('oncepay_shard_lmdb_used_bytes{shard="0"}')).toBeGreaterThan(4096);
    expect(value('oncepay_shard_event_loop_lag_p99_seconds{shard="1"}')).toBeGreaterThanOrEqual(0);
    // Event-loop lag and GC of every thread, read from the shared memory each thread writes into.
    for (const thread of ['main', 'shard-0', 'shard-1', 'hsm']) {
      expect(value(`oncepay_thread_event_loop_lag_p99_seconds{thread="${thread}"}`), thread).toBeGreaterThanOrEqual(0);
      expect(value(`oncepay_thread_event_loop_lag_max_seconds{thread="${thread}"}`), thread).toBeGreaterThanOrEqual(0);
      expect(value(`oncepay_thread_gc_seconds_total{thread="${thread}"}`), thread).toBeGreaterThanOrEqual(0);
      expect(value(`oncepay_thread_gc_total{thread="${thread}"}`), thread).toBeGreaterThanOrEqual(0);
    }
    expect([...text.matchAll(/^oncepay_thread_gc_total\{thread="([^"]+)"\}/gm)].map((m) => m[1]).sort()).toEqual(['hsm', 'main', 'shard-0', 'shard-1']);
    expect([-1, 1]).toContain(value('oncepay_audit_conserved'));
    expect(value('oncepay_request_seconds_count{transport="ws"}')).toBeGreaterThan(10);
    expect(value('oncepay_request_seconds_count{transport="http"}')).toBeGreaterThan(10);
    expect(value('oncepay_operation_seconds_count{op="authorize"}')).toBeGreaterThan(10);
    expect(value('oncepay_operation_seconds_count{op="capture"}')).toBeGreaterThan(0);
    expect(value('oncepay_operation_seconds_count{op="refund"}')).toBeGreaterThan(0);
    // A WS request takes at least a commit: the mean is well above zero and below a second.
    const mean = value('oncepay_request_seconds_sum{transport="ws"}') / value('oncepay_request_seconds_count{transport="ws"}');
    expect(mean).toBeGreaterThan(0.00001);
    expect(mean).toBeLessThan(1);
    // Bounded labels only: no IDs, accounts, vendors or tokens in any series.
    expect(text).not.toMatch(/(9870\d{15}|ac_\d{4}|vd_\d{4}|au_\d{4}|ovk_|out_|oat_)/);
  });
});

describe('audit', () => {
  it('finds money conserved across all shards', async () => {
    const a = await audit();
    expect(a.conserved).toBe(true);
    for (const sh of a.shards) expect(sh.problems).toEqual([]);
    const usd = a.currencies.USD;
    expect(usd.funding).toBe(usd.available + usd.held + usd.vendorPayable + usd.paidOut + usd.inFlight + usd.prepaidOutstanding);
    expect(usd.funding).toBeGreaterThan(0);
  });
});
